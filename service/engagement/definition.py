"""What "engaged", "opened" and "reachable" mean: one definition, read by every report and the escalation pass.

Engaged = a settled human click, an acknowledgement, a Canvas read or a knowledge-check
answer. An open is not engagement: a pixel proves an image was fetched, not that anyone
read, so "opened" (a human open only) is shown beside it, never counted in it. Pure: the
escalation rules read it too; the same rule in SQL is :func:`service.engagement.aggregates.engaging`. A rate's
denominator is the reachable people: active, deliverable, not on leave, past the new-hire grace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

ENGAGING_KINDS = ("click", "ack", "canvas_read", "answer")
OPEN = "open"
SIGNAL_KINDS = (OPEN, *ENGAGING_KINDS)  # what a reader does; the rest are delivery events


def is_engaged(*, clicks: int, acks: int, canvas_reads: int, answers: int = 0) -> bool:
    """The rule over counts a report has summed (each count of settled human events only);
    :func:`service.engagement.aggregates.engaging` is the same rule in SQL."""
    return bool(clicks or acks or canvas_reads or answers)


def is_on_leave(leave_until: date | None, day: date) -> bool:
    """On leave on ``day``: through the last day the person gave on their preferences page."""
    return leave_until is not None and day <= leave_until


def is_reachable(*, active: bool, undeliverable: bool, joined_at: datetime, as_of: datetime,
                 new_hire_days: int, on_leave: bool = False) -> bool:
    """Counted in a rate's denominator: someone the digests reach and the ladder may ask about
    (not on leave, not in the new-hire grace)."""
    return active and not undeliverable and not on_leave and as_of - joined_at >= timedelta(days=new_hire_days)


@dataclass(frozen=True)
class Rate:
    """A share with its denominator, so no figure is shown without what it is a share of."""

    engaged: int
    reachable: int

    @property
    def share(self) -> float | None:
        return self.engaged / self.reachable if self.reachable else None

    @property
    def percent(self) -> str:
        return "–" if self.share is None else f"{self.share:.0%}"

    def __str__(self) -> str:
        if not self.reachable:
            return "– (nobody reachable)"
        return f"{self.percent} ({self.engaged} of {self.reachable} reachable)"

    def as_payload(self) -> dict[str, object]:
        """For an email's stored payload (JSON): the figures and how they read."""
        return {"engaged": self.engaged, "reachable": self.reachable, "percent": self.percent, "text": str(self)}
