"""Load who has held emails, decide (:mod:`.decide`), apply through the outbox."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import outbox
from service.bundles.decide import Action, Day, decide
from service.config import Settings
from service.db import in_ids
from service.digests import expected_later_today
from service.models import Person
from service.weeks import SchoolCalendar, person_zone


@dataclass
class FoldResult:
    released: int = 0
    bundled: int = 0  # attention emails made
    carried: int = 0  # held emails they carry
    waiting: int = 0  # people whose emails wait for a later day or today's digest


CHUNK = 5000  # people per round of queries (SQLite's bound parameters; a district's notice day)


def fold(session: Session, settings: Settings, calendar: SchoolCalendar, now: datetime) -> FoldResult:
    """Turn what people have waiting into at most one email each for today. Safe to run any time."""
    result = FoldResult()
    held = outbox.held_rows(session)
    people = list(held)
    for start in range(0, len(people), CHUNK):
        _fold_chunk(session, settings, calendar, now, {p: held[p] for p in people[start : start + CHUNK]}, result)
    return result


def _fold_chunk(session: Session, settings: Settings, calendar: SchoolCalendar, now: datetime,
                held: dict[int, list[outbox.HeldRow]], result: FoldResult) -> None:
    people = list(held)
    zones = {row.id: person_zone(row, settings) for row in session.execute(
        select(Person.id, Person.timezone).where(in_ids(session, Person.id, people)))}
    local = {p: now.astimezone(zones[p]) for p in people}
    mailed = outbox.mailed_on(session, people, {p: moment.date() for p, moment in local.items()})
    coming = expected_later_today(session, settings, people, now)
    released: dict[date, list[int]] = defaultdict(list)  # one statement per day, not per person
    for person, rows in held.items():
        moment = local[person]
        day = Day(moment.date(), moment.time(), calendar.is_school_day(moment.date()), person in mailed,
                  person in coming)
        action = decide([r.created_at.astimezone(zones[person]).date() for r in rows], day, settings.digest_time)
        if action is Action.WAIT:
            result.waiting += 1
        elif action is Action.RELEASE:
            released[day.today] += [r.id for r in rows]
        elif outbox.bundle(session, person, rows, day.today, now) is not None:
            result.bundled += 1
            result.carried += len(rows)
    for today, ids in released.items():
        result.released += outbox.release_held(session, ids, today, now)
