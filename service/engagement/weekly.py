"""The weekly roll-up: one row per person and ISO week, which every report reads.

A district's year is millions of events; a report of a week, a team or a trend reads
one row per person and week instead. A cell is the person's week in their own
timezone (the week their digest is keyed by). It is never added to: whenever a path
stores or settles a signal, the cells it falls in are recounted from the events
(:func:`recount`), so a cell written incrementally is what a rebuild computes. A sent
digest only marks its week delivered (:func:`note_delivered`). Pruned events leave their
rows behind: :func:`rebuild` recounts only the weeks whose events are all still kept.
Each week's delivered and engaged cells are also totalled by the database's triggers
(migration 0020) for the district's trend (:func:`totals`, :func:`fold_totals`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import (
    Boolean, DateTime, Integer, Select, String, bindparam, case, delete, exists, func, insert, literal, or_, select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db import count_where, in_ids, is_postgres
from service.engagement.aggregates import engaging
from service.engagement.definition import OPEN, SIGNAL_KINDS
from service.models import Delivery, EngagementEvent, EngagementWeek, EngagementWeekTotal, Person
from service.weeks import parse_week, week_bounds, week_key, zone_named

CHUNK = 5000
COUNTS = ("human_opens", "machine_opens", "machine_signals", "clicks", "acks", "canvas_reads", "answers")
COLUMNS = ("person_id", "week", "delivered", *COUNTS, "last_human_at", "engaged")
ARRAY_OF = {"person_id": Integer, "week": String, "delivered": Boolean, **dict.fromkeys(COUNTS, Integer),
            "last_human_at": DateTime(timezone=True), "engaged": Boolean}


def _upsert(session: Session):
    return (postgresql.insert if is_postgres(session) else sqlite.insert)(EngagementWeek)


def _week_sums(start: datetime, end: datetime, people) -> Select:
    """Per person: the week's signals by kind, as the one definition counts them."""
    e = EngagementEvent
    settled_human = e.is_machine.is_(False) & e.settled.is_(True)
    counted = engaging(e)
    return (
        select(e.person_id.label("pid"),
               count_where(settled_human & (e.kind == OPEN)).label("human_opens"),
               count_where(e.is_machine.is_(True) & (e.kind == OPEN)).label("machine_opens"),
               count_where(e.is_machine.is_(True) & e.settled.is_(True)).label("machine_signals"),
               count_where(counted & (e.kind == "click")).label("clicks"),
               count_where(counted & (e.kind == "ack")).label("acks"),
               count_where(counted & (e.kind == "canvas_read")).label("canvas_reads"),
               count_where(counted & (e.kind == "answer")).label("answers"),
               func.max(case((settled_human, e.at))).label("last_human_at"))
        .where(e.at >= start, e.at < end, e.kind.in_(SIGNAL_KINDS), people(e.person_id))
        .group_by(e.person_id)
    )


def _recount(session: Session, week: str, zone: str, people) -> None:
    """Write the cells of ``week`` (in timezone ``zone``) for the people ``people(column)`` selects:
    every one with a signal, a sent digest or a row already (which may fall back to zero)."""
    start, end = week_bounds(week, zone_named(zone))
    sums = _week_sums(start, end, people).subquery()
    delivered = exists().where(Delivery.person_id == Person.id, Delivery.kind == "digest",
                               Delivery.period_key == week, Delivery.status == "sent")
    stored = exists().where(EngagementWeek.person_id == Person.id, EngagementWeek.week == week)
    counts = [func.coalesce(getattr(sums.c, name), 0) for name in COUNTS]
    engaged = (counts[3] + counts[4] + counts[5] + counts[6]) > 0  # clicks, acks, canvas reads, answers
    cells = (
        select(Person.id, literal(week), delivered, *counts, sums.c.last_human_at, engaged)
        .outerjoin(sums, sums.c.pid == Person.id)
        .where(people(Person.id), or_(sums.c.pid.is_not(None), delivered, stored))
        .order_by(Person.id)  # cells locked in person order, as every writer of them does
    )
    statement = _upsert(session).from_select(COLUMNS, cells)
    statement = statement.on_conflict_do_update(
        index_elements=["person_id", "week"],
        set_={name: getattr(statement.excluded, name) for name in COLUMNS[2:]})
    session.connection().execute(statement)


def _lock(session: Session, people: Iterable[int], *, share: bool) -> dict[int, str | None]:
    """Lock the people whose weeks are written, in id order, and give their timezones. A recount
    locks exclusively: two recounts of a person take turns, so the second counts the first's
    events (read committed: each statement sees what is committed when it starts). Adding opens
    shares the lock: adders never wait for each other, and a recount never overwrites an addition
    it could not see. One order for everyone: writers locking in opposite orders deadlocked."""
    return dict(session.execute(
        select(Person.id, Person.timezone).where(in_ids(session, Person.id, sorted(people))).order_by(Person.id)
        .with_for_update(read=share, key_share=not share)).tuples().all())


def add_opens(session: Session, opens: Iterable[tuple[int | None, datetime, bool]], default_zone: str) -> None:
    """Opens (person, time, machine?) just stored are added to their cells: an open is judged when
    it arrives and never again, so adding is what a recount would find, without reading the week's
    events again (the pixel writes thousands a second)."""
    opens = [o for o in opens if o[0] is not None]
    if not opens:
        return
    zones = _lock(session, {person_id for person_id, _, _ in opens}, share=True)
    cells: dict[tuple[int, str], list] = {}  # human, machine, last human open
    for person_id, at, machine in opens:
        if person_id in zones:
            zone = zones[person_id] or default_zone
            cell = cells.setdefault((person_id, week_key(at.astimezone(zone_named(zone)).date())), [0, 0, None])
            cell[1 if machine else 0] += 1
            if not machine and (cell[2] is None or at > cell[2]):
                cell[2] = at
    t = EngagementWeek
    _write_cells(session, [
        {"person_id": person_id, "week": week, "delivered": False, **dict.fromkeys(COUNTS, 0),
         "human_opens": human, "machine_opens": machine, "machine_signals": machine, "last_human_at": last,
         "engaged": False}
        for (person_id, week), (human, machine, last) in sorted(cells.items())], lambda new: {
        "human_opens": t.human_opens + new.human_opens, "machine_opens": t.machine_opens + new.machine_opens,
        "machine_signals": t.machine_signals + new.machine_signals,
        "last_human_at": case((t.last_human_at.is_(None), new.last_human_at),
                              (new.last_human_at > t.last_human_at, new.last_human_at), else_=t.last_human_at)})


def recount(session: Session, signals: Iterable[tuple[int | None, datetime]], default_zone: str) -> int:
    """Recount the cells that signals (person, time) fall in, each in its person's timezone
    (``default_zone`` for people who gave none). Returns how many cells were recounted."""
    by_person: dict[int, set[datetime]] = {}
    for person_id, at in signals:
        if person_id is not None:
            by_person.setdefault(person_id, set()).add(at)
    if not by_person:
        return 0
    zones = _lock(session, by_person, share=False)
    cells: dict[tuple[str, str], list[int]] = {}
    for person_id, moments in by_person.items():
        if person_id not in zones:
            continue
        zone = zones[person_id] or default_zone
        for week in {week_key(at.astimezone(zone_named(zone)).date()) for at in moments}:
            cells.setdefault((week, zone), []).append(person_id)
    written = 0
    for (week, zone), ids in sorted(cells.items()):
        for start in range(0, len(ids), CHUNK):
            chunk = sorted(ids[start:start + CHUNK])
            _recount(session, week, zone, lambda column, chunk=chunk: in_ids(session, column, chunk))
            written += len(chunk)
    return written


def note_delivered(session: Session, digests: list[tuple[int, str]]) -> None:
    """Sent digests (person, week key) mark their weeks delivered: what a recount would find."""
    if not digests:
        return
    _write_cells(session, [{"person_id": person_id, "week": week, "delivered": True, **dict.fromkeys(COUNTS, 0),
                            "last_human_at": None, "engaged": False} for person_id, week in sorted(set(digests))],
                 lambda new: {"delivered": true()})


def _write_cells(session: Session, cells: list[dict], changes) -> None:
    """Insert cells (distinct keys, in person order), or make ``changes(excluded)`` to the stored
    ones. On PostgreSQL one statement reads them from one array a column: given as many
    parameter sets, the driver ran the statement once a cell (marking a dispatched batch of 500
    digests delivered took 33-90 ms that way, 20-24 ms this way)."""
    statement = _upsert(session)
    if is_postgres(session):
        arrays = (bindparam(name, [cell[name] for cell in cells], type_=postgresql.ARRAY(ARRAY_OF[name]))
                  for name in COLUMNS)
        given = func.unnest(*arrays).table_valued(*COLUMNS, with_ordinality="position").render_derived("cell")
        statement = statement.from_select(COLUMNS, select(*(given.c[name] for name in COLUMNS))
                                          .order_by(given.c.position))  # locked in person order, as by every writer
    statement = statement.on_conflict_do_update(index_elements=["person_id", "week"],
                                                set_=changes(statement.excluded))
    session.execute(statement, None if is_postgres(session) else cells)


def rebuild(session: Session, default_zone: str, now: datetime, retention_days: int) -> int:
    """Recount every cell of the weeks whose events are all still kept (those that start after
    the retention window's edge), up to the current week, in every timezone people have.
    Returns how many cells those weeks hold now."""
    cutoff = now - timedelta(days=retention_days)
    first_event = session.scalar(select(func.min(EngagementEvent.at)).where(EngagementEvent.at >= cutoff))
    first_digest = session.scalar(select(func.min(Delivery.sent_at)).where(
        Delivery.kind == "digest", Delivery.status == "sent", Delivery.sent_at >= cutoff))
    last_event = session.scalar(select(func.max(EngagementEvent.at)))
    starts = [at for at in (first_event, first_digest) if at is not None]
    if not starts:
        return 0
    zone_of = func.coalesce(Person.timezone, default_zone)
    recounted: set[str] = set()
    for zone in sorted(session.scalars(select(zone_of).distinct())):
        local = zone_named(zone)
        first = parse_week(week_key(min(starts).astimezone(local).date()))
        last = parse_week(week_key(max(now, last_event or now).astimezone(local).date()))
        monday = first
        while monday <= last:
            week = week_key(monday)
            if week_bounds(week, local)[0] >= cutoff:
                _recount(session, week, zone, lambda column, zone=zone: column.in_(
                    select(Person.id).where(zone_of == zone)))
                recounted.add(week)
            monday += timedelta(weeks=1)
    return session.scalar(select(func.count()).select_from(EngagementWeek).where(
        EngagementWeek.week.in_(recounted))) if recounted else 0


def totals(session: Session, weeks: list[str]) -> dict[str, tuple[int, int]]:
    """Per week: its delivered cells and, of them, the engaged, everyone's (kept by the database's
    triggers as cells are written: migration 0020)."""
    t = EngagementWeekTotal
    return {week: (int(delivered), int(engaged)) for week, delivered, engaged in session.execute(
        select(t.week, func.sum(t.delivered), func.sum(t.engaged)).where(t.week.in_(weeks)).group_by(t.week))}


def fold_totals(session: Session) -> int:
    """Fold each week's appended changes of the totals into one row (what they add up to is
    unchanged); returns how many rows were folded. Only the rows this deletes are added up, so
    two folds at once count none twice."""
    t = EngagementWeekTotal
    folded = session.execute(delete(t).where(t.week.in_(select(t.week).group_by(t.week).having(func.count() > 1)))
                             .returning(t.week, t.delivered, t.engaged)).all()
    sums: dict[str, list[int]] = {}
    for week, delivered, engaged in folded:
        total = sums.setdefault(week, [0, 0])
        total[0] += delivered
        total[1] += engaged
    if sums:
        session.execute(insert(t), [{"week": week, "delivered": delivered, "engaged": engaged}
                                    for week, (delivered, engaged) in sorted(sums.items())])
    return len(folded)


def snapshot(session: Session) -> dict[tuple[int, str], tuple]:
    """Every stored cell, for comparing an incremental state with a rebuilt one."""
    return {(row[0], row[1]): tuple(row[2:]) for row in session.execute(
        select(*[getattr(EngagementWeek, name) for name in COLUMNS])).tuples()}

