"""Recording what readers did: clicks and acknowledgements, the per-person aggregates every
signal path keeps current, and the retention prune."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from service.db import in_ids, insert_ignore, month_of, upsert_adding
from service.models import (
    Acknowledgement,
    Delivery,
    EngagementArchive,
    EngagementEvent,
    Person,
    UTCDateTime,
)
from service.engagement.rules import Rules, Verdict, classify, is_click_burst
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


def _event(delivery: Delivery, kind: str, source: str, signal: Signal, verdict: Verdict, target: str | None = None
           ) -> EngagementEvent:
    return EngagementEvent(
        delivery_id=delivery.id, person_id=delivery.person_id, kind=kind, source=source,
        is_machine=verdict.is_machine, reason=verdict.reason, target=target,
        user_agent=(signal.user_agent or "")[:500] or None, ip_hash=signal.ip_hash, at=signal.at,
    )


def record_click(session: Session, rules: Rules, delivery_id: int, target: str, signal: Signal
                 ) -> EngagementEvent | None:
    """A click; if it completes a burst over several links, the whole burst is a scanner's."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return None
    verdict = classify(rules, method=signal.method, user_agent=signal.user_agent, ip=signal.ip, at=signal.at,
                       delivered_at=delivery.sent_at)
    since = signal.at - timedelta(seconds=rules.burst_seconds)
    recent = session.scalars(
        select(EngagementEvent).where(EngagementEvent.delivery_id == delivery_id,
                                      EngagementEvent.kind == "click", EngagementEvent.at >= since)
    ).all()
    if is_click_burst(rules, [(e.at, e.target or "") for e in recent], signal.at, target):
        reason = f"clicked {len({e.target for e in recent} | {target})} links within {rules.burst_seconds:g}s"
        verdict = Verdict(True, reason)
        for earlier in recent:
            earlier.is_machine, earlier.reason = True, reason
    event = _event(delivery, "click", "link", signal, verdict, target)
    session.add(event)
    if not verdict.is_machine:
        note_human_signals(session, [(delivery.person_id, signal.at)])
    return event


@dataclass(frozen=True)
class AckResult:
    recorded: bool  # False: this person had already acknowledged it
    person_id: int


def record_ack(session: Session, delivery: Delivery, subject: str, person_id: int, signal: Signal) -> AckResult:
    """An explicit acknowledgement (a POST from the ack page's button). Idempotent."""
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
        note_human_signals(session, [(person_id, signal.at)])
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
        subject=f"Confirm you have read: {what}"[:300], payload={"ack_subject": subject, "what": what})]))


def prune(session: Session, now: datetime, retention_days: int) -> int:
    """Sum raw events older than the window per person, month, kind and machine flag; delete them.

    Returns how many raw events were folded into ``engagement_archive``.
    """
    cutoff = now - timedelta(days=retention_days)
    e = EngagementEvent
    month = month_of(session, e.at).label("month")
    sums = session.execute(
        select(e.person_id, month, e.kind, e.is_machine, func.count())
        .where(e.at < cutoff).group_by(e.person_id, month, e.kind, e.is_machine)
    ).all()
    if not sums:
        return 0
    upsert_adding(session, EngagementArchive, [{"person_id": p, "month": m, "kind": k, "is_machine": bool(x),
                                                "count": n} for p, m, k, x, n in sums],
                  ["person_id", "month", "kind", "is_machine"], "count")
    deleted = session.execute(delete(e).where(e.at < cutoff).execution_options(synchronize_session=False))
    return deleted.rowcount or 0


HUMAN_KINDS = ("open", "click", "ack", "canvas_read")


def note_human_signals(session: Session, signals: list[tuple[int | None, datetime]]) -> None:
    """Keep people's aggregates current: last human signal, and the silent streak it ends.

    A signal older than the first silent digest (a late webhook) only moves ``last_human_at``;
    the digests sent after it stay silent.
    """
    latest: dict[int, datetime] = {}
    for person_id, at in signals:
        if person_id is not None and (person_id not in latest or at > latest[person_id]):
            latest[person_id] = at
    if not latest:
        return
    people = Person.__table__
    moment = bindparam("moment", type_=UTCDateTime())
    params = [{"pid": person_id, "moment": at} for person_id, at in latest.items()]
    session.execute(  # one statement, executed for every person in the batch
        update(people).where(people.c.id == bindparam("pid"),
                             or_(people.c.last_human_at.is_(None), people.c.last_human_at < moment))
        .values(last_human_at=moment), params)
    session.execute(
        update(people).where(people.c.id == bindparam("pid"), people.c.silent_since.is_not(None),
                             people.c.silent_since <= moment)
        .values(silent_digests=0, silent_since=None), params)


def note_digests_sent(session: Session, person_ids: list[int], at: datetime) -> None:
    """A sent digest lengthens its reader's silent streak (until a human signal ends it)."""
    if not person_ids:
        return
    session.execute(
        update(Person).where(in_ids(session, Person.id, person_ids))
        .values(silent_digests=Person.silent_digests + 1, silent_since=func.coalesce(Person.silent_since, at))
        .execution_options(synchronize_session=False))
