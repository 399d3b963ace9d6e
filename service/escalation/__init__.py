"""Reminders for unconfirmed notices, nudges for people who never engage, and the ladder up the chain.

One pass in three steps: :func:`.state.load` reads the state, :func:`.decide.decide`
(pure) turns it and the day into intents, :func:`.apply.apply` writes them through
the outbox.
"""

from datetime import datetime

from sqlalchemy.orm import Session

from service.config import Settings
from service.engagement import Rules, settle
from service.escalation.apply import apply
from service.escalation.decide import ADMIN_LEVEL, Email, Intents, PassResult, closes, decide, paused_days
from service.escalation.facts import NEVER_ENGAGED, NOTICE_OVERDUE, NOTICE_REMINDER, Rung, State, notice_in
from service.escalation.state import load
from service.weeks import SchoolCalendar, calendar_for


def run_pass(session: Session, settings: Settings, as_of: datetime,
             calendar: SchoolCalendar | None = None) -> PassResult:
    """Settle, load, decide, apply: one pass as of a moment (the caller commits). Settling
    first means the pass decides on settled signals only, never on a scanner's pending clicks."""
    settle(session, Rules.from_settings(settings), as_of)
    calendar = calendar or calendar_for(settings)
    intents = decide(load(session, settings, as_of, calendar), settings, as_of, calendar)
    return apply(session, intents, as_of)


__all__ = [
    "ADMIN_LEVEL", "Email", "Intents", "NEVER_ENGAGED", "NOTICE_OVERDUE", "NOTICE_REMINDER", "PassResult", "Rung",
    "State", "apply", "closes", "decide", "load", "notice_in", "paused_days", "run_pass",
]
