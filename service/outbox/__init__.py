"""The outbox: the only code that writes ``deliveries`` and ``delivery_items``.

Writers describe what to send as :class:`OutboxMessage` values and call
:func:`enqueue`; the dispatcher claims, leases and records results through
:mod:`service.outbox.claims`; :mod:`service.outbox.pauses` stops a channel
that an admin has to fix; :mod:`service.outbox.held` makes a person's emails of
one day one email.
"""

from service.outbox.claims import (
    AT_MOST_ONCE,
    BACKOFF_CAP_SECONDS,
    Claimed,
    backoff_seconds,
    claim,
    count_due,
    give_up_unconfirmed,
    mark_sending,
    quarantine_dead_sends,
    record_results,
    release,
)
from service.outbox.enqueue import HELD_KINDS, NoticeRef, OutboxMessage, QuestionRef, Queued, TipRef, enqueue
from service.outbox.held import ATTENTION, HeldRow, bundle, carry, held_rows, mailed_on
from service.outbox.held import release as release_held
from service.outbox.pauses import pause, paused_channels, paused_reason, resume

__all__ = [
    "ATTENTION", "AT_MOST_ONCE", "HELD_KINDS", "HeldRow", "bundle", "carry", "held_rows", "mailed_on",
    "release_held", "BACKOFF_CAP_SECONDS", "Claimed", "NoticeRef", "OutboxMessage", "QuestionRef", "Queued", "TipRef", "backoff_seconds",
    "claim", "count_due", "enqueue", "give_up_unconfirmed", "mark_sending", "pause", "paused_channels",
    "paused_reason", "quarantine_dead_sends", "record_results", "release", "resume",
]
