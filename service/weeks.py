"""School weeks and the calendar: ISO week keys, local send moments, and breaks.

Each digest is due at its reader's local send time (weekday and time from the
settings) in the ISO week of their own timezone; the period key is that ISO
week, so a DST change can neither repeat nor skip a digest.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import yaml

from service.config import WEEKDAYS, Settings
from service.errors import InputErrors
from service.paths import CONTENT_DIR
from service.inputs import read_text


def week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


WEEK_KEY = re.compile(r"([0-9]{4})-W([0-9]{2})")


def parse_week(key: str) -> date:
    """The Monday of a canonical ISO week key such as 2026-W48 (ASCII digits, two for the week, a week
    that year has); ValueError otherwise, so "2026-W010" can never name "2026-W10" a second time."""
    match = WEEK_KEY.fullmatch(key)
    try:
        if match is None:
            raise ValueError
        return date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise ValueError(f"week {key!r} is not an ISO week like 2026-W48 (that year has no such week, "
                         "or it is not written YYYY-Www)") from None


class HasTimezone(Protocol):
    timezone: str | None


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def person_zone(person: HasTimezone, settings: Settings) -> ZoneInfo:
    return _zone(person.timezone or settings.timezone)


def zone_named(name: str) -> ZoneInfo:
    return _zone(name)


def week_bounds(week: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC moments a week starts and ends in a timezone (Monday 00:00 to Monday 00:00)."""
    monday = parse_week(week)
    start = datetime.combine(monday, time(0), zone).astimezone(UTC)
    return start, datetime.combine(monday + timedelta(days=7), time(0), zone).astimezone(UTC)


def send_day(key: str, settings: Settings, weekday: str | None = None) -> date:
    """The digest's day in a week: the person's chosen ``weekday``, else the setting."""
    return parse_week(key) + timedelta(days=WEEKDAYS.index(weekday or settings.digest_weekday))


def send_moment(key: str, zone: ZoneInfo, settings: Settings, weekday: str | None = None) -> datetime:
    """The UTC instant of the digest for a week in a timezone (wall-clock time, DST-aware)."""
    local = datetime.combine(send_day(key, settings, weekday), settings.digest_time, tzinfo=zone)
    return local.astimezone(UTC)


@dataclass(frozen=True)
class Blackout:
    name: str
    start: date
    end: date


@dataclass(frozen=True)
class SchoolCalendar:
    blackouts: tuple[Blackout, ...] = ()
    school_days: frozenset[int] = frozenset(range(5))  # weekday numbers, Monday 0

    def blackout_on(self, day: date) -> Blackout | None:
        return next((b for b in self.blackouts if b.start <= day <= b.end), None)

    def is_school_day(self, day: date) -> bool:
        return day.weekday() in self.school_days and self.blackout_on(day) is None

    def next_school_day(self, day: date) -> date:
        """``day`` if it is a school day, else the first one after it (a due date never lands on a
        weekend or in a break)."""
        for offset in range(400):
            candidate = day + timedelta(days=offset)
            if self.is_school_day(candidate):
                return candidate
        return day  # a calendar without school days: leave the date as it is

    def days_off_after(self, day: date) -> int:
        """The days off (not school days, not breaks: a break pauses the clock) between ``day``
        and the next school day: what falls on them is done on ``day`` instead."""
        count, current = 0, day + timedelta(days=1)
        while not self.is_school_day(current) and current < day + timedelta(days=400):
            count += self.blackout_on(current) is None
            current += timedelta(days=1)
        return count


def calendar_for(settings: Settings) -> SchoolCalendar:
    calendar = load_calendar(Path(settings.calendar_file) if settings.calendar_file else CONTENT_DIR / "calendar.yaml")
    return replace(calendar, school_days=frozenset(WEEKDAYS.index(d) for d in settings.school_days))


def load_calendar(path: Path) -> SchoolCalendar:
    """Read content/calendar.yaml; a missing file means no blackouts; errors name the entry."""
    if not path.exists():
        return SchoolCalendar()
    source = str(path)
    try:
        data = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as exc:
        raise InputErrors(source, [f"not valid YAML: {exc}"]) from None
    entries = data.get("blackouts", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InputErrors(source, ["'blackouts' must be a list of {name, start, end}"])
    problems, blackouts = [], []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), date) for k in ("start", "end")):
            problems.append(f"blackout #{index}: needs name, start and end dates (YYYY-MM-DD)")
            continue
        if entry["end"] < entry["start"]:
            problems.append(f"blackout #{index} ({entry.get('name')}): end is before start")
            continue
        blackouts.append(Blackout(str(entry.get("name") or f"blackout #{index}"), entry["start"], entry["end"]))
    if problems:
        raise InputErrors(source, problems)
    return SchoolCalendar(tuple(blackouts))
