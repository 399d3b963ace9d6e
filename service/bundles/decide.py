"""When a person's held emails go, and how: the rules of one email per person per day (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time
from enum import Enum


class Action(Enum):
    WAIT = "wait"  # not today, or something later today carries them
    RELEASE = "release"  # one email: it goes as it is
    BUNDLE = "bundle"  # several: one "for your attention" email carries them


@dataclass(frozen=True)
class Day:
    """A person's day as the fold sees it."""

    today: date
    local_time: time
    school_day: bool
    mailed_today: bool  # their email of today exists (a digest, a bundle, a released email)
    digest_coming: bool  # today's digest is not queued yet: it will carry them


def decide(held_since: list[date], day: Day, morning: time) -> Action:
    """``held_since``: the local day each held email was written.

    Emails written today go at once unless the person has had today's email or their digest
    is coming; emails that waited overnight go on the next school day, from ``morning``,
    so nothing held on a Friday arrives on a Saturday.
    """
    if not held_since or day.mailed_today or day.digest_coming:
        return Action.WAIT
    if min(held_since) < day.today and not (day.school_day and day.local_time >= morning):
        return Action.WAIT
    return Action.RELEASE if len(held_since) == 1 else Action.BUNDLE
