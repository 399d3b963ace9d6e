"""Load who has held emails, decide (:mod:`.decide`), apply through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import outbox
from service.bundles.decide import Action, Day, decide
from service.config import Settings
from service.digests import expected_later_today
from service.models import Person
from service.weeks import SchoolCalendar, person_zone


@dataclass
class FoldResult:
    released: int = 0
    bundled: int = 0  # attention emails made
    carried: int = 0  # held emails they carry
    waiting: int = 0  # people whose emails wait for a later day or today's digest


def fold(session: Session, settings: Settings, calendar: SchoolCalendar, now: datetime) -> FoldResult:
    """Turn what people have waiting into at most one email each for today. Safe to run any time."""
    result = FoldResult()
    held = outbox.held_rows(session)
    if not held:
        return result
    people = list(held)
    zones = {row.id: person_zone(row, settings) for row in session.execute(
        select(Person.id, Person.timezone).where(Person.id.in_(people)))}
    local = {p: now.astimezone(zones[p]) for p in people if p in zones}
    mailed = outbox.mailed_on(session, people, {p: moment.date() for p, moment in local.items()})
    coming = expected_later_today(session, settings, people, now)
    for person, rows in held.items():
        moment = local[person]
        day = Day(moment.date(), moment.time(), calendar.is_school_day(moment.date()), person in mailed,
                  person in coming)
        action = decide([r.created_at.astimezone(zones[person]).date() for r in rows], day, settings.digest_time)
        if action is Action.WAIT:
            result.waiting += 1
        elif action is Action.RELEASE:
            result.released += outbox.release_held(session, [r.id for r in rows], day.today, now)
        elif outbox.bundle(session, person, rows, day.today, now) is not None:
            result.bundled += 1
            result.carried += len(rows)
    return result
