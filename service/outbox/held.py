"""Held rows and their carriers: how a person's emails of one day become one email.

What waits and when it goes is decided in :mod:`service.bundles`; this module only
moves rows: release one as it is, bundle several into an "attention" carrier, or let a
digest carry them. A bundled row shares its carrier's outcome (:func:`settle_carried`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, aliased

from service.db import in_ids
from service.models import Delivery
from service.outbox.enqueue import OutboxMessage, enqueue

ATTENTION = "attention"  # the kind of a carrier that bundles a day's emails (not a digest)


@dataclass(frozen=True)
class HeldRow:
    id: int
    person_id: int
    kind: str
    subject: str
    created_at: datetime


def held_rows(session: Session) -> dict[int, list[HeldRow]]:
    """Every held row, by person, oldest first."""
    by_person: dict[int, list[HeldRow]] = defaultdict(list)
    for row in session.execute(
        select(Delivery.id, Delivery.person_id, Delivery.kind, Delivery.subject, Delivery.created_at)
        .where(Delivery.status == "held").order_by(Delivery.person_id, Delivery.id)
    ):
        by_person[row.person_id].append(HeldRow(*row))
    return dict(by_person)


def mailed_on(session: Session, person_ids: list[int], days: dict[int, date]) -> set[int]:
    """The people (of ``person_ids``) who already have their email of their own ``days[person]``
    (one that failed or was skipped does not count)."""
    if not person_ids:
        return set()
    rows = session.execute(
        select(Delivery.person_id, Delivery.mail_day)
        .where(in_ids(session, Delivery.person_id, person_ids), Delivery.mail_day.in_(set(days.values())),
               Delivery.status.not_in(("failed", "skipped")))
    )
    return {person for person, day in rows if days.get(person) == day}


def release(session: Session, ids: list[int], day: date, now: datetime) -> int:
    """Held rows that go out as they are, each its person's email of ``day``."""
    return session.execute(
        update(Delivery).where(in_ids(session, Delivery.id, ids), Delivery.status == "held")
        .values(status="pending", mail_day=day, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount


def bundle(session: Session, person_id: int, rows: list[HeldRow], day: date, now: datetime) -> int | None:
    """One "attention" email for the person's ``day`` carrying ``rows``; None if it exists already."""
    queued = enqueue(session, [OutboxMessage(
        ATTENTION, day.isoformat(), now, person_id=person_id, mail_day=day,
        subject="For your attention: " + "; ".join(r.subject for r in rows),
        payload={"day": day.isoformat()},
    )])
    if not queued:
        return None
    carrier = queued[0].delivery_id
    _attach(session, [r.id for r in rows], carrier)
    return carrier


def carry(session: Session, carriers: dict[int, int]) -> int:
    """Each person's held rows ride in their carrier (``carriers``: person -> delivery id, a digest
    queued in this transaction, so no dispatcher has claimed it yet)."""
    if not carriers:
        return 0
    moves = [{"held_id": held_id, "carrier": carriers[person]} for held_id, person in session.execute(
        select(Delivery.id, Delivery.person_id).where(Delivery.status == "held")) if person in carriers]
    if moves:
        table = Delivery.__table__
        session.execute(update(table).where(table.c.id == bindparam("held_id"), table.c.status == "held")
                        .values(status="bundled", bundle_id=bindparam("carrier")), moves)
    return len(moves)


def _attach(session: Session, ids: list[int], carrier: int) -> int:
    if not ids:
        return 0
    return session.execute(
        update(Delivery).where(in_ids(session, Delivery.id, ids), Delivery.status == "held")
        .values(status="bundled", bundle_id=carrier)
        .execution_options(synchronize_session=False)
    ).rowcount


def settle_carried(session: Session, carrier_ids: list[int]) -> None:
    """Rows bundled into these carriers take their outcome once it is final: sent or failed."""
    if not carrier_ids:
        return
    carrier = aliased(Delivery)

    def of_carrier(column: str):
        return select(getattr(carrier, column)).where(carrier.id == Delivery.bundle_id).scalar_subquery()

    finished = select(carrier.id).where(in_ids(session, carrier.id, carrier_ids),
                                        carrier.status.in_(("sent", "failed")))
    session.execute(
        update(Delivery).where(Delivery.bundle_id.in_(finished), Delivery.status == "bundled")
        .values(**{column: of_carrier(column)
                   for column in ("status", "sent_at", "provider_message_id", "last_error")})
        .execution_options(synchronize_session=False)
    )
