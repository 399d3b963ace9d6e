"""Reminders for unconfirmed notices, nudges for people who never engage, and the ladder up the chain."""

from service.escalation.ladder import (
    ADMIN_LEVEL, NEVER_ENGAGED, NOTICE_OVERDUE, NOTICE_REMINDER, Pass, PassResult, notice_in, paused_days,
    run_pass,
)

__all__ = [
    "ADMIN_LEVEL", "NEVER_ENGAGED", "NOTICE_OVERDUE", "NOTICE_REMINDER", "Pass", "PassResult", "notice_in",
    "paused_days", "run_pass",
]
