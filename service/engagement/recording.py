"""Recording what readers did (clicks, acknowledgements) and the retention prune."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.db import insert_ignore, month_of, upsert_adding
from service.models import (
    Acknowledgement,
    Delivery,
    EngagementArchive,
    EngagementEvent,
    Person,
)
from service.engagement.aggregates import refresh
from service.engagement.rules import Rules, classify
from service.engagement.weekly import recount
from service.outbox import OutboxMessage, enqueue


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signal:
    """One request as seen by the tracking endpoints."""

    method: str
    user_agent: str | None
    ip: str | None
    ip_hash: str | None
    at: datetime


def record_click(session: Session, rules: Rules, delivery_id: int, target: str, signal: Signal
                 ) -> EngagementEvent | None:
    """A click, stored unsettled with its request's verdict: it counts only once its message has
    been judged (:mod:`service.engagement.settling`), when a scanner's burst can no longer hide."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return None
    verdict = classify(rules, method=signal.method, user_agent=signal.user_agent, ip=signal.ip, at=signal.at,
                       delivered_at=delivery.sent_at)
    event = EngagementEvent(
        delivery_id=delivery.id, person_id=delivery.person_id, kind="click", source="link",
        is_machine=verdict.is_machine, reason=verdict.reason, target=target, settled=False,
        user_agent=(signal.user_agent or "")[:500] or None, ip_hash=signal.ip_hash, at=signal.at,
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class AckResult:
    recorded: bool  # False: this person had already acknowledged it
    person_id: int


def record_ack(session: Session, delivery: Delivery, subject: str, person_id: int, signal: Signal, *,
               default_zone: str) -> AckResult:
    """An explicit acknowledgement (a POST from the ack page's button). Idempotent. ``default_zone``:
    the week of someone who gave no timezone."""
    notice_id = int(subject.split(":", 1)[1]) if subject.startswith("notice:") else None
    inserted = insert_ignore(
        session, Acknowledgement,
        [{"person_id": person_id, "subject": subject, "notice_id": notice_id, "delivery_id": delivery.id,
          "at": signal.at}],
        ["person_id", "subject"],
    )
    if inserted:
        session.add(EngagementEvent(
            delivery_id=delivery.id, person_id=person_id, kind="ack", source="ack_page", is_machine=False,
            target=subject, user_agent=(signal.user_agent or "")[:500] or None, ip_hash=signal.ip_hash, at=signal.at,
        ))
        session.flush()
        refresh(session, [person_id])
        recount(session, [(person_id, signal.at)], default_zone)
    return AckResult(bool(inserted), person_id)


def ack_subject(delivery_id: int, token_target: str) -> str:
    """What an ack token acknowledges: what it names (a notice, or the shared post a personal
    confirmation link stands for), else the delivery itself."""
    return token_target if token_target.startswith(("notice:", "delivery:")) else f"delivery:{delivery_id}"


CONFIRM = "confirm"  # the kind of a personal confirmation link asked for on a shared page


def send_confirmation_link(session: Session, email: str, subject: str, what: str, now: datetime) -> bool:
    """Queue a personal confirmation link for ``subject`` to ``email`` if it is an active person's:
    only that link's POST acknowledges, so nobody confirms for somebody else. At most one a day per
    person and subject (the outbox key). Returns whether one was queued (never shown to the asker)."""
    person_id = session.scalar(select(Person.id).where(Person.email == email, Person.active.is_(True)))
    if person_id is None:
        return False
    return bool(enqueue(session, [OutboxMessage(
        CONFIRM, f"{subject}:{now.date().isoformat()}", now, person_id=person_id,
        subject=f"Confirm you have read: {what}", payload={"ack_subject": subject, "what": what})]))


def prune(session: Session, now: datetime, retention_days: int) -> int:
    """Sum raw events older than the window per person, month, kind and machine flag; delete them.

    Returns how many raw events were folded into ``engagement_archive``.
    """
    cutoff = now - timedelta(days=retention_days)
    e = EngagementEvent
    month = month_of(session, e.at).label("month")
    sums = session.execute(
        select(e.person_id, month, e.kind, e.is_machine, func.count(), func.max(e.at))
        .where(e.at < cutoff).group_by(e.person_id, month, e.kind, e.is_machine)
    ).all()
    if not sums:
        return 0
    upsert_adding(session, EngagementArchive, [{"person_id": p, "month": m, "kind": k, "is_machine": bool(x),
                                                "count": n, "last_at": last} for p, m, k, x, n, last in sums],
                  ["person_id", "month", "kind", "is_machine"], "count", latest="last_at")
    deleted = session.execute(delete(e).where(e.at < cutoff).execution_options(synchronize_session=False))
    return deleted.rowcount or 0
