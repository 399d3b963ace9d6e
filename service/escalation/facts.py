"""What the escalation rules reason about, as plain values: people, rungs, notices, the loaded state."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple


RungKey = tuple[int, str, str, int]  # person, reason, subject, level: unique in ``escalations``
NOTICE_REMINDER, NOTICE_OVERDUE, NEVER_ENGAGED = "notice_reminder", "notice_overdue", "never_engaged"
NOTICE_REASONS = (NOTICE_REMINDER, NOTICE_OVERDUE)


def notice_in(subject: str) -> int:
    """The notice a rung is about: its subject is "notice:<id>" or, for reminders, "notice:<id>:d<days>"."""
    return int(subject.split(":")[1])


class StaffMember(NamedTuple):
    """A person as the ladder sees them (a tuple: a district's 100,000 are built each pass)."""

    id: int
    email: str
    name: str
    supervisor_id: int | None
    active: bool
    joined_at: datetime
    undeliverable_since: datetime | None
    undeliverable_reason: str | None
    last_engaged_at: datetime | None
    silent_digests: int
    silent_since: datetime | None
    leave_until: date | None = None


class Rung(NamedTuple):
    """One stored step of the ladder (a tuple, like :class:`StaffMember`)."""

    key: RungKey
    opened_at: datetime
    notified_person_id: int | None
    notified_email: str | None
    notified_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None

    @property
    def person_id(self) -> int:
        return self.key[0]

    @property
    def reason(self) -> str:
        return self.key[1]

    @property
    def subject(self) -> str:
        return self.key[2]

    @property
    def level(self) -> int:
        return self.key[3]


@dataclass(frozen=True)
class NoticeFacts:
    id: int
    created_at: datetime
    due_on: date
    title: str


@dataclass
class State:
    """Everything a pass reads, as of the start of the pass: the people and rungs it may act on
    (:mod:`.state` leaves out those with nothing left to step today)."""

    people: dict[int, StaffMember]  # and everyone's supervisors
    all_keys: set[RungKey]  # every rung ever recorded of those people (years of history stay cheap as keys)
    open_rungs: list[Rung]
    notified_rungs: list[Rung]  # every rung of level 1 and up, open or not, in the order they were made
    notices: dict[int, NoticeFacts]
    unconfirmed: dict[int, Collection[int]]  # notice -> people who got it and have not confirmed it
    confirmed: set[tuple[int, int]]  # (person, notice) confirmed, for people with an open notice rung
    digests_since_nudge: dict[int, int]  # person -> digests sent since their open nudge
    digests_since_silence: dict[int, list[tuple[datetime, int, int]]] = field(default_factory=dict)
