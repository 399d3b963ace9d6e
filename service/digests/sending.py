"""Rendering claimed digests in bulk: the lean path the dispatcher takes for most of its rows.

Plain rows instead of ORM objects, and tips from a cache kept between batches, so a
Monday morning's hundred thousand digests cost one skeleton fill each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service.channels import Message, Result
from service.db import in_ids
from service.models import Delivery, DeliveryItem, Person, Question, Tip
from service.rendering import DigestRenderer, LetterRenderer


@dataclass(frozen=True)
class Recipient:
    """Who a digest goes to: all the renderer needs of a person."""

    email: str
    name: str


Row = TypeVar("Row", Tip, Question)


class ContentCache(Generic[Row]):
    """Tips or questions (with their policy) kept between batches; one small query per batch spots
    edited ones."""

    def __init__(self, model: type[Row]) -> None:
        self.model = model
        self._rows: dict[int, Row] = {}

    def refresh(self, session: Session, ids: set[int]) -> None:
        if not ids:
            return
        model = self.model
        stamps = dict(session.execute(select(model.id, model.updated_at).where(model.id.in_(ids))).tuples().all())
        missing = [i for i in ids if i not in self._rows or self._rows[i].updated_at != stamps.get(i)]
        if missing:
            for row in session.scalars(select(model).where(model.id.in_(missing)).options(selectinload(model.policy))):
                session.expunge(row)
                self._rows[row.id] = row

    def get(self, ids: list[int]) -> list[Row]:
        return [self._rows[i] for i in ids]


class DigestBatch:
    """Renders claimed digest rows (a batch renderer for the dispatcher's email route)."""

    def __init__(self, renderer: DigestRenderer, letters: LetterRenderer):
        self.renderer = renderer
        self.letters = letters  # renders the held emails a digest carries
        self.tips = ContentCache(Tip)
        self.questions = ContentCache(Question)

    def render(self, session: Session, ids: list[int]) -> dict[int, Message | Result]:
        heads = session.execute(
            select(Delivery.id, Delivery.subject, Delivery.payload, Person.email, Person.name)
            .join(Person, Person.id == Delivery.person_id)
            .where(in_ids(session, Delivery.id, ids)).order_by(Delivery.id)
        ).all()
        tips_of: dict[int, list[int]] = {}
        question_of: dict[int, int] = {}
        for delivery_id, tip_id, question_id in session.execute(
            select(DeliveryItem.delivery_id, DeliveryItem.tip_id, DeliveryItem.question_id)
            .where(in_ids(session, DeliveryItem.delivery_id, ids), DeliveryItem.notice_id.is_(None))
            .order_by(DeliveryItem.delivery_id, DeliveryItem.position)
        ):
            if tip_id is not None:
                tips_of.setdefault(delivery_id, []).append(tip_id)
            else:
                question_of[delivery_id] = question_id
        self.tips.refresh(session, {t for tips in tips_of.values() for t in tips})
        self.questions.refresh(session, set(question_of.values()))
        carried = self._carried(session, ids)
        rendered: dict[int, Message | Result] = {i: Result.failed("cannot render: a digest without tips or reader")
                                                 for i in ids}
        for head in heads:
            if head.id in tips_of:
                try:
                    rendered[head.id] = self.renderer.message(head.id, Recipient(head.email, head.name),
                                                              self.tips.get(tips_of[head.id]), head.subject,
                                                              head.payload["week"],
                                                              [self.letters.part(d) for d in carried.get(head.id, [])],
                                                              self._question(question_of.get(head.id)))
                except Exception as exc:  # noqa: BLE001 - one digest that cannot render fails alone
                    rendered[head.id] = Result.failed(f"cannot render ({exc.__class__.__name__})")
        return rendered

    def _question(self, question_id: int | None) -> Question | None:
        return None if question_id is None else self.questions.get([question_id])[0]

    @staticmethod
    def _carried(session: Session, ids: list[int]) -> dict[int, list[Delivery]]:
        """The held emails each digest carries (most carry none)."""
        carried: dict[int, list[Delivery]] = {}
        for held in session.scalars(
            select(Delivery).where(in_ids(session, Delivery.bundle_id, ids)).order_by(Delivery.id)
            .options(selectinload(Delivery.person), selectinload(Delivery.items).selectinload(DeliveryItem.tip),
                     selectinload(Delivery.items).selectinload(DeliveryItem.notice))
        ):
            carried.setdefault(held.bundle_id, []).append(held)
        return carried
