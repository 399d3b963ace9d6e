"""Roster import: validate the whole CSV first, then write it all or nothing."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, aliased

from service.db import BULK_ROWS, refresh_statistics
from service.errors import InputErrors
from service.models import Person, PersonAncestor, utcnow
from service.inputs import checked_email, field_problem, normalize_email, read_text, whole_number


REQUIRED_COLUMNS = ("email", "name", "role")
OPTIONAL_COLUMNS = ("department", "supervisor_email", "timezone", "canvas_user_id")


@dataclass(frozen=True)
class RosterRow:
    line: int
    email: str
    name: str
    role: str
    department: str | None
    supervisor_email: str | None
    timezone: str | None
    canvas_user_id: int | None


@dataclass
class RosterPlan:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "deactivated": len(self.deactivated),
        }


def parse_roster(text: str, source: str) -> tuple[list[RosterRow], list[str]]:
    """Parse and check each row on its own; return the rows and every problem found.

    A header that cannot be used raises InputErrors at once.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    problems: list[str] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing:
        problems.append(f"line 1: missing required column(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"line 1: unknown column(s): {', '.join(unknown)}")
    if problems:
        raise InputErrors(source, problems)
    reader.fieldnames = header

    rows: list[RosterRow] = []
    first_line: dict[str, int] = {}
    line = 1
    try:
        for raw in reader:
            line = reader.line_num
            row = _row(raw, line, first_line, problems)
            if row is not None:
                rows.append(row)  # even with problems: the supervisor checks still read it
    except csv.Error as exc:  # a field over the csv module's limit, a NUL byte, a broken quote
        problems.append(f"line {reader.line_num}: cannot be read as CSV ({exc})")
    if not rows and not problems:
        problems.append("line 2: no people in the file")
    return rows, problems


LIMITS = {"name": 200, "role": 64, "department": 200, "timezone": 64}


def _row(raw: dict, line: int, first_line: dict[str, int], problems: list[str]) -> RosterRow | None:
    """One line's person (its problems added to ``problems``), or None when the line is empty or has
    more values than columns."""
    values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
    if not any(values.values()):
        return None
    if None in raw:
        problems.append(f"line {line}: more values than columns")
        return None
    found = [f"line {line}: {why}" for name, limit in LIMITS.items()
             if (why := field_problem(name, values.get(name, ""), limit))]
    email, why = checked_email(values.get("email", ""))
    if not values.get("email"):
        found.append(f"line {line}: email is empty")
    elif email is None:
        found.append(f"line {line}: email {values['email'][:80]!r} {why}")
    elif email in first_line:
        found.append(f"line {line}: duplicate email {email!r} (first on line {first_line[email]})")
    else:
        first_line[email] = line
    supervisor = None
    if values.get("supervisor_email"):
        supervisor, why = checked_email(values["supervisor_email"])
        if supervisor is None:
            found.append(f"line {line}: supervisor_email {values['supervisor_email'][:80]!r} {why}")
    name = unicodedata.normalize("NFC", values.get("name", ""))
    role = values.get("role", "").lower()
    if not name:
        found.append(f"line {line}: name is empty")
    if not role:
        found.append(f"line {line}: role is empty")
    tz = values.get("timezone") or None
    if tz is not None and not field_problem("timezone", tz, LIMITS["timezone"]):
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            found.append(f"line {line}: unknown timezone {tz!r}")
    canvas_id = None
    if values.get("canvas_user_id"):
        canvas_id, why = whole_number("canvas_user_id", values["canvas_user_id"])
        if why:
            found.append(f"line {line}: {why}")
    problems.extend(found)
    return RosterRow(line, email or normalize_email(values.get("email", "")), name, role,
                     values.get("department") or None, supervisor, tz, canvas_id)


def _line_number(problem: str) -> int:
    match = re.match(r"line (\d+):", problem)
    return int(match.group(1)) if match else 0


def _check_supervisors(rows: list[RosterRow], stored: dict[str, Person], partial: bool) -> list[str]:
    """Every supervisor must exist (here or stored) and the chain must never loop."""
    problems: list[str] = []
    by_email = {r.email: r for r in rows}
    stored_by_id = {p.id: p for p in stored.values()}
    boss: dict[str, str | None] = {}
    if partial:  # people not in the file keep their stored supervisor
        for email, person in stored.items():
            sup = stored_by_id.get(person.supervisor_id) if person.supervisor_id else None
            boss[email] = sup.email if sup else None
    for row in rows:
        boss[row.email] = row.supervisor_email
    for row in rows:
        sup = row.supervisor_email
        if sup is None:
            continue
        if sup == row.email:
            problems.append(f"line {row.line}: {row.email} is their own supervisor")
        elif sup not in by_email and sup not in stored:
            problems.append(f"line {row.line}: unknown supervisor {sup!r} (not in this file or stored)")
    reported: set[frozenset[str]] = set()
    for row in rows:
        path = [row.email]
        current = boss.get(row.email)
        while current is not None and current != row.email and current not in path:
            path.append(current)
            current = boss.get(current)
        if current == row.email and len(path) > 1:
            cycle = frozenset(path)
            if cycle not in reported:
                reported.add(cycle)
                chain = " -> ".join(path + [row.email])
                problems.append(f"line {row.line}: supervisor cycle: {chain}")
    return problems


def _desired(row: RosterRow) -> dict[str, object]:
    return {
        "name": row.name,
        "role": row.role,
        "department": row.department,
        "timezone": row.timezone,
        "canvas_user_id": row.canvas_user_id,
        "active": True,
    }


def import_roster(
    session: Session,
    path: Path,
    *,
    dry_run: bool = False,
    partial: bool = False,
    now: datetime | None = None,
) -> RosterPlan:
    """Create/update people from a roster CSV.

    A full import (the default) deactivates active people missing from the file;
    ``partial`` only adds and updates. Raises InputErrors and writes nothing on
    any problem. The caller commits.
    """
    source = str(path)
    rows, problems = parse_roster(read_text(path), source)
    stored = {p.email: p for p in session.scalars(select(Person))}
    problems += _check_supervisors(rows, stored, partial)
    if problems:
        raise InputErrors(source, sorted(problems, key=_line_number))

    now = now or utcnow()
    plan = RosterPlan()
    email_by_id = {p.id: p.email for p in stored.values()}
    people: dict[str, Person] = dict(stored)
    for row in rows:
        person = stored.get(row.email)
        desired = _desired(row)
        if person is None:
            plan.created.append(row.email)
            if not dry_run:
                person = Person(email=row.email, joined_at=now, **desired)
                session.add(person)
                people[row.email] = person
            continue
        changed = any(getattr(person, k) != v for k, v in desired.items()) or (
            email_by_id.get(person.supervisor_id) != row.supervisor_email
        )
        (plan.updated if changed else plan.unchanged).append(row.email)
        if changed and not dry_run:
            for key, value in desired.items():
                setattr(person, key, value)
            person.deactivated_at = None
    if not partial:
        in_file = {r.email for r in rows}
        for email, person in stored.items():
            if email not in in_file and person.active:
                plan.deactivated.append(email)
                if not dry_run:
                    person.active = False
                    person.deactivated_at = now
    if dry_run:
        return plan
    session.flush()
    for row in rows:
        person = people[row.email]
        sup = people.get(row.supervisor_email) if row.supervisor_email else None
        person.supervisor_id = sup.id if sup else None
    session.flush()
    rebuild_lineage(session)
    if len(plan.created) + len(plan.updated) >= BULK_ROWS:
        refresh_statistics(session, "people")
    return plan


def rebuild_lineage(session: Session) -> None:
    """Write who is below whom (``people_ancestors``) from the supervisors, all levels, in SQL."""
    session.execute(delete(PersonAncestor))
    below = select(Person.supervisor_id.label("ancestor_id"), Person.id.label("person_id")) \
        .where(Person.supervisor_id.is_not(None)).cte("below", recursive=True)
    step = aliased(Person)
    below = below.union(select(below.c.ancestor_id, step.id).join(step, step.supervisor_id == below.c.person_id))
    session.execute(insert(PersonAncestor).from_select(["ancestor_id", "person_id"], select(below)))


def clear_undeliverable(session: Session, email: str) -> bool:
    person = session.scalar(select(Person).where(Person.email == normalize_email(email)))
    if person is None:
        return False
    person.undeliverable_since = None
    person.undeliverable_reason = None
    return True
