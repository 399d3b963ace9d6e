"""One way into the outbox: typed messages in, new rows out, duplicates ignored by the database."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import groupby
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import text
from sqlalchemy.orm import Session

from service.db import BULK_ROWS, copy_rows, insert_ignore, is_postgres, refresh_statistics
from service.models import Delivery, DeliveryItem

COPY_ABOVE = 1000  # on PostgreSQL, larger writes go through COPY (a tenth of the time)
DELIVERY_COLUMNS = ("person_id", "recipient", "kind", "period_key", "channel", "status", "subject", "payload",
                    "attempts", "next_attempt_at", "created_at", "mail_day")
# a person's email of these kinds waits ("held") for their one email of the day (service.bundles)
HELD_KINDS = frozenset({"notice", "reminder", "nudge", "escalation", "summary"})


@dataclass(frozen=True)
class TipRef:
    """A tip the message carries."""

    tip_id: int


@dataclass(frozen=True)
class NoticeRef:
    """A policy-update notice the message is about."""

    notice_id: int


@dataclass(frozen=True)
class QuestionRef:
    """A knowledge-check question the message asks."""

    question_id: int


ItemRef = TipRef | NoticeRef | QuestionRef
SUBJECT_LIMIT = 300  # deliveries.subject


@dataclass(frozen=True)
class OutboxMessage:
    """One thing to send, to a person or to a recipient outside the roster ("course:101", "admin:a@b.org").

    The key (person or recipient, kind, period, channel) is unique: a message queued twice is one row.
    """

    kind: str
    period_key: str
    at: datetime  # when it was queued; the first attempt is not made earlier
    person_id: int | None = None
    recipient: str | None = None
    channel: str = "email"
    subject: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    items: tuple[ItemRef, ...] = ()
    mail_day: date | None = None  # the person's email of that day (a digest, an attention email)

    def __post_init__(self) -> None:
        if (self.person_id is None) == (self.recipient is None):
            raise ValueError("an outbox message goes to a person or to a recipient, not both or neither")
        if not all(isinstance(item, ItemRef) for item in self.items):
            raise TypeError("outbox items are TipRef, NoticeRef or QuestionRef values")
        if len(self.subject) > SUBJECT_LIMIT:  # the column's size; a cut subject says so
            object.__setattr__(self, "subject", self.subject[:SUBJECT_LIMIT - 1] + "…")

    @property
    def key(self) -> tuple[object, str, str, str]:
        return (self.person_id if self.person_id is not None else self.recipient, self.kind, self.period_key,
                self.channel)

    @property
    def held(self) -> bool:
        return self.kind in HELD_KINDS and self.person_id is not None and self.channel == "email"

    def row(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "recipient": self.recipient, "kind": self.kind,
                "period_key": self.period_key, "channel": self.channel,
                "status": "held" if self.held else "pending", "subject": self.subject,
                "payload": dict(self.payload), "attempts": 0, "next_attempt_at": self.at, "created_at": self.at,
                "mail_day": self.mail_day}


@dataclass(frozen=True)
class Queued:
    message: OutboxMessage
    delivery_id: int


def enqueue(session: Session, messages: Iterable[OutboxMessage]) -> list[Queued]:
    """Write the messages whose key is new, with their items; return those, in the order given
    (their ids follow that order, so the dispatcher sends them in it).

    Rerunning is harmless and two writers may race: the unique keys decide, not memory.
    The caller owns the transaction.
    """
    first_of_key: dict[tuple[object, str, str, str], OutboxMessage] = {}
    for message in messages:
        first_of_key.setdefault(message.key, message)
    unique = list(first_of_key.values())
    ids: dict[tuple[object, str, str, str], int] = {}
    # runs of messages to people / to other recipients, in the order given: ids follow it
    for to_person, run in groupby(unique, key=lambda m: m.person_id is not None):
        ids |= _insert_deliveries(session, list(run), "person_id" if to_person else "recipient")
    queued = [Queued(m, ids[m.key]) for m in unique if m.key in ids]
    _insert_items(session, queued)
    if len(queued) >= BULK_ROWS:
        refresh_statistics(session, "deliveries", "delivery_items")
    return queued


def _insert_deliveries(session: Session, messages: list[OutboxMessage], to: str) -> dict[tuple, int]:
    conflict = f"({to}, kind, period_key, channel)"
    if is_postgres(session) and len(messages) > COPY_ABOVE:
        session.execute(text("CREATE TEMP TABLE IF NOT EXISTS staged_deliveries "
                             "(LIKE deliveries INCLUDING DEFAULTS) ON COMMIT DROP"))
        session.execute(text("TRUNCATE staged_deliveries"))
        copy_rows(session, "staged_deliveries", DELIVERY_COLUMNS,
                  [tuple(Json(v) if c == "payload" else v for c, v in m.row().items()) for m in messages])
        columns = ", ".join(DELIVERY_COLUMNS)
        inserted = session.execute(text(
            f"INSERT INTO deliveries ({columns}) SELECT {columns} FROM staged_deliveries ORDER BY {to} "
            f"ON CONFLICT {conflict} DO NOTHING RETURNING id, {to}, kind, period_key, channel")).all()
    else:
        inserted = insert_ignore(session, Delivery, [m.row() for m in messages],
                                 [to, "kind", "period_key", "channel"],
                                 returning=(Delivery.id, getattr(Delivery, to), Delivery.kind, Delivery.period_key,
                                            Delivery.channel))
    return {(who, kind, period, channel): delivery_id for delivery_id, who, kind, period, channel in inserted}


def _insert_items(session: Session, queued: list[Queued]) -> None:
    """Items grouped by the column they fill, so every statement has one shape."""
    for column, ref in (("tip_id", TipRef), ("notice_id", NoticeRef), ("question_id", QuestionRef)):
        rows = [(q.delivery_id, position, getattr(item, column))
                for q in queued for position, item in enumerate(q.message.items) if isinstance(item, ref)]
        if not rows:
            continue
        if is_postgres(session) and len(rows) > COPY_ABOVE:
            copy_rows(session, "delivery_items", ("delivery_id", "position", column), rows)
        else:
            session.execute(DeliveryItem.__table__.insert(),
                            [{"delivery_id": d, "position": p, column: ref_id} for d, p, ref_id in rows])
