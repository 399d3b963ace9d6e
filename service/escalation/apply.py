"""Writing what a pass decided: new rungs, resolutions, and its emails through the outbox.

An escalation email marks the rungs it tells about as notified only if it was queued:
a supervisor who already has this week's email hears of them next week.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from service.db import BULK_ROWS, insert_ignore, refresh_statistics
from service.escalation.decide import Email, Intents, PassResult
from service.escalation.facts import RungKey
from service.models import Escalation
from service.outbox import NoticeRef, OutboxMessage, TipRef, enqueue


def apply(session: Session, intents: Intents, as_of: datetime) -> PassResult:
    """Write the intents in one unit of work (the caller commits); returns the pass's account."""
    result = intents.result
    insert_ignore(session, Escalation, [
        {"person_id": r.person_id, "reason": r.reason, "subject": r.subject, "level": r.level,
         "notified_person_id": r.notified_person_id, "notified_email": r.notified_email, "opened_at": r.opened_at,
         "notified_at": r.notified_at} for r in intents.new_rungs], ["person_id", "reason", "subject", "level"])
    if len(intents.new_rungs) >= BULK_ROWS:  # tomorrow's pass plans its anti-joins on these counts
        refresh_statistics(session, "escalations")
    _update_rungs(session, [(key, {"resolved_at": as_of, "resolution": why}) for key, why in intents.resolutions])
    outgoing = [(_message(email, as_of), email) for email in intents.emails]
    by_message = {id(message): email for message, email in outgoing}
    notified: list[RungKey] = []
    for queued in enqueue(session, [message for message, _ in outgoing]):
        email = by_message[id(queued.message)]
        result.emails.append((email.kind, email.to))
        notified += email.notifies
    _update_rungs(session, [(key, {"notified_at": as_of}) for key in notified])
    return result


def _message(email: Email, as_of: datetime) -> OutboxMessage:
    items = tuple(TipRef(t) for t in email.tip_ids) + tuple(NoticeRef(n) for n in email.notice_ids)
    to_admin = email.person_id is None
    return OutboxMessage(email.kind, email.period, as_of, person_id=email.person_id,
                         recipient=f"admin:{email.to}" if to_admin else None, subject=email.subject,
                         payload={**email.payload, **({"to_email": email.to} if to_admin else {})}, items=items)


def _update_rungs(session: Session, changes: list[tuple[RungKey, dict[str, object]]]) -> None:
    """Update rungs by their unique key; one statement per set of columns."""
    table = Escalation.__table__
    by_columns: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for (person_id, reason, subject, level), values in changes:
        by_columns.setdefault(tuple(sorted(values)), []).append(
            {"k_person": person_id, "k_reason": reason, "k_subject": subject, "k_level": level,
             **{f"v_{name}": value for name, value in values.items()}})
    for columns, params in by_columns.items():
        session.execute(
            table.update()
            .where(table.c.person_id == bindparam("k_person"), table.c.reason == bindparam("k_reason"),
                   table.c.subject == bindparam("k_subject"), table.c.level == bindparam("k_level"))
            .values({name: bindparam(f"v_{name}") for name in columns}), params)
