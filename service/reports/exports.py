"""CSV exports (engagement, deliveries, who confirmed a notice), streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db import NOTICE_ROWS
from service.models import (
    Acknowledgement,
    Delivery,
    Person,
)
from service.reports.figures import DELIVERY_PROBLEM, Window, engagement, team_of


ENGAGEMENT_COLUMNS = ("email", "name", "role", "supervisor_email", "status", "engaged", "reachable", "human_opens",
                      "machine_opens", "machine_signals", "clicks", "acks", "canvas_reads", "answers",
                      "last_human_signal", "last_engaged")
DELIVERY_COLUMNS = ("id", "kind", "channel", "period", "recipient", "status", "attempts", "created_at", "sent_at",
                    "provider_message_id", "last_error")


def engagement_rows(session: Session, window: Window, now: datetime, team_root: int | None = None, *,
                    new_hire_days: int) -> list[dict[str, object]]:
    """One row per person: signal counts in ``window``'s weeks, whether they engaged and are counted
    in a rate (the one definition), and their last engagement."""
    scope = team_of(session, team_root) if team_root is not None else None
    rows = engagement(session, window, scope, new_hire_days=new_hire_days, active_only=False, as_of=now)
    emails = dict(session.execute(select(Person.id, Person.email)).tuples().all())
    return [
        {"email": r.email, "name": r.name, "role": r.role, "supervisor_email": emails.get(r.supervisor_id, ""),
         "status": r.status, "engaged": "yes" if r.engaged else "no",
         "reachable": "yes" if r.reachable else "no", "human_opens": r.human_opens, "machine_opens": r.machine_opens,
         "machine_signals": r.machine_signals, "clicks": r.clicks, "acks": r.acks, "canvas_reads": r.canvas_reads,
         "answers": r.answers,
         "last_human_signal": r.last_human_signal.isoformat() if r.last_human_signal else "",
         "last_engaged": r.last_engaged.isoformat() if r.last_engaged else ""}
        for r in rows
    ]


def delivery_rows(session: Session, *, problems_only: bool = False, limit: int | None = None
                  ) -> Iterator[dict[str, object]]:
    """Outbox rows, newest first, streamed: a district's year is millions of rows."""
    query = (select(Delivery.id, Delivery.kind, Delivery.channel, Delivery.period_key, Delivery.recipient,
                    Delivery.status, Delivery.attempts, Delivery.created_at, Delivery.sent_at,
                    Delivery.provider_message_id, Delivery.last_error, Person.email)
             .outerjoin(Person, Person.id == Delivery.person_id).order_by(Delivery.id.desc()))
    if problems_only:
        query = query.where(DELIVERY_PROBLEM)
    if limit is not None:
        query = query.limit(limit)
    for d in session.execute(query.execution_options(yield_per=5000)):
        yield {"id": d.id, "kind": d.kind, "channel": d.channel, "period": d.period_key,
               "recipient": d.email or d.recipient or "", "status": d.status, "attempts": d.attempts,
               "created_at": d.created_at.isoformat(), "sent_at": d.sent_at.isoformat() if d.sent_at else "",
               "provider_message_id": d.provider_message_id or "", "last_error": d.last_error or ""}


def write_csv(rows: Iterable[dict[str, object]], columns: tuple[str, ...], out) -> int:
    count = 0

    def counted() -> Iterator[dict[str, object]]:
        nonlocal count
        for row in rows:
            count += 1
            yield row

    for chunk in csv_chunks(counted(), columns):
        out.write(chunk)
    return count


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP: a spreadsheet would run these as formulas


def spreadsheet_safe(value: object) -> object:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


def csv_chunks(rows: Iterable[dict[str, object]], columns: tuple[str, ...], every: int = 2000) -> Iterator[str]:
    """CSV text in pieces of ``every`` rows (header first), for files and streamed downloads; cells
    that a spreadsheet would run as formulas are escaped."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for count, row in enumerate(rows, 1):
        writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
        if count % every == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _notice_audience(notice_id: int):
    """The people a notice was sent to: its outbox rows, keyed "notice:<id>" as the notices page
    counts them, read from their index (joining the rows' items read 100,000 rows of the table)."""
    return select(Delivery.person_id).where(NOTICE_ROWS, Delivery.period_key == f"notice:{notice_id}",
                                            Delivery.person_id.is_not(None))


def notice_people(session: Session, notice_id: int, offset: int = 0, limit: int | None = None
                  ) -> list[dict[str, object]]:
    """The people a notice was sent to, by name (``limit`` of them from ``offset``: a district's
    notice goes to 100,000), and when each acknowledged (None: not yet)."""
    acked = (select(Acknowledgement.person_id, Acknowledgement.at)
             .where(Acknowledgement.notice_id == notice_id).subquery())
    rows = session.execute(
        select(Person.id, Person.name, Person.email, acked.c.at)
        .outerjoin(acked, acked.c.person_id == Person.id)
        .where(Person.id.in_(_notice_audience(notice_id)))
        .order_by(Person.name, Person.id).offset(offset).limit(limit)
    ).all()
    return [{"id": i, "name": n, "email": e, "acknowledged_at": a} for i, n, e, a in rows]


def notice_counts(session: Session, notice_id: int) -> tuple[int, int]:
    """(people the notice was sent to, of them how many acknowledged), counted in SQL."""
    audience = _notice_audience(notice_id).distinct().subquery()
    acked = select(Acknowledgement.person_id).where(Acknowledgement.notice_id == notice_id).subquery()
    sent, confirmed = session.execute(  # one pass, joined by hash (the planner looped 100,000 times)
        select(func.count(), func.count(acked.c.person_id))
        .select_from(audience.outerjoin(acked, acked.c.person_id == audience.c.person_id))).one()
    return int(sent), int(confirmed)
