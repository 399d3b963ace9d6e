"""Escalation pass and supervisor summary at district scale, on PostgreSQL.

Builds 100,000 people in a hierarchy, 52 weekly digests each (5.2 million sent
deliveries, three tips and a quick check each; about 530,000 first answers), two policy notices to everyone (one overdue for 1 in 10,
one whose 7-day reminder falls on the pass's day for half), and about 15 million
engagement events server-side with generate_series, then times the escalation pass
(the first records reminders, nudges with their tips and escalations on one day; then
the steady daily pass) and one supervisor summary computation (goal: each <= 2 s).

    python bench/escalation_scan.py --people 100000 --weeks 52 --database-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_database, load_content  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from service.config import load_settings  # noqa: E402
from service.db import make_engine, make_sessionmaker  # noqa: E402
from service.engagement import weekly  # noqa: E402
from service.roster import rebuild_lineage  # noqa: E402
from service.weeks import SchoolCalendar  # noqa: E402
from service.escalation import run_pass  # noqa: E402
from service.models import Delivery, DeliveryItem, Escalation, EngagementEvent, Person  # noqa: E402
from service.reports import summary_payload  # noqa: E402

FIRST_MONDAY = date(2025, 11, 24)


def build(engine, people: int, weeks: int, notice: bool = True, first_monday: date = FIRST_MONDAY) -> None:
    """The district. With ``notice``: one notice three weeks old that 1 in 10 has not confirmed
    (overdue), and one a week old that half have not (its 7-day reminder falls on the pass's
    day, beside the nudges of people never engaged: the mixed day that once crashed the demo)."""
    start = datetime.combine(first_monday, datetime.min.time(), UTC)
    load_content(make_sessionmaker(engine), start - timedelta(days=400))  # the tips digests carry
    with engine.begin() as conn:
        # rows built consistent by construction: skip the per-row foreign-key triggers (tens of
        # millions of them; a bulk load's usual trade, superuser only), as a restore would
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("""
            INSERT INTO people (id, email, name, role, supervisor_id, active, joined_at, updated_at)
            SELECT g, 'p' || g || '@bench.org', 'Person ' || g,
                   CASE WHEN g = 1 OR g % 20 = 2 THEN 'administrator' ELSE 'teacher' END,
                   CASE WHEN g = 1 THEN NULL WHEN g % 20 = 2 THEN 1 ELSE 2 + ((g - 2) / 20) * 20 END,
                   true, :joined, :joined
            FROM generate_series(1, :n) g"""), {"n": people, "joined": start - timedelta(days=365)})
        conn.execute(text("SELECT setval('people_id_seq', :n)"), {"n": people})
        conn.execute(text("""
            INSERT INTO deliveries (person_id, kind, period_key, channel, status, subject, payload, attempts,
                                    next_attempt_at, created_at, sent_at)
            SELECT p, 'digest', to_char(:start + w * interval '7 days', 'IYYY-"W"IW'), 'email', 'sent', '', '{}', 1,
                   :start + w * interval '7 days' + interval '13 hours',
                   :start + w * interval '7 days' + interval '13 hours',
                   :start + w * interval '7 days' + interval '13 hours'
            FROM generate_series(1, :n) p, generate_series(0, :weeks - 1) w"""),
                     {"n": people, "weeks": weeks, "start": start})
        # about three signals a person a week: an open (a proxy's for every seventh person), a click
        # (most people), and an acknowledgement now and then; every tenth person never engages
        conn.execute(text("""
            INSERT INTO engagement_events (person_id, kind, source, is_machine, reason, at)
            SELECT p, k.kind, 'bench', k.machine, NULL,
                   :start + w * interval '7 days' + interval '14 hours' + (k.n * interval '1 hour')
            FROM generate_series(1, :n) p, generate_series(0, :weeks - 1) w,
                 LATERAL (VALUES (1, 'open', p % 7 = 0), (2, 'click', p % 10 = 0), (3, 'ack', p % 10 = 0)) AS k(n, kind, machine)
            WHERE NOT (p % 10 = 0 AND NOT k.machine) OR k.kind = 'open'"""),
                     {"n": people, "weeks": weeks, "start": start})
        # each digest carries three tips, as production's do (a nudge picks its tips from them)
        conn.execute(text("""
            WITH t AS (SELECT array_agg(id ORDER BY position) AS ids, count(*) AS n FROM tips WHERE state = 'ok')
            INSERT INTO delivery_items (delivery_id, position, tip_id)
            SELECT d.id, k, t.ids[1 + ((d.id * 3 + k) % t.n)]
            FROM deliveries d, t, generate_series(0, 2) k WHERE d.kind = 'digest'"""))
        # and asks one quick check (the pack's in turn); six in ten of those who engage answer each
        # question, seven in ten of them right the first time (the scored answers reports read)
        conn.execute(text("""
            WITH q AS (SELECT array_agg(id ORDER BY position) AS ids, count(*) AS n FROM questions WHERE state = 'ok')
            INSERT INTO delivery_items (delivery_id, position, question_id)
            SELECT d.id, 3, q.ids[1 + (d.person_id + d.id) % q.n] FROM deliveries d, q WHERE d.kind = 'digest'"""))
        conn.execute(text("""
            INSERT INTO answers (person_id, question_id, delivery_id, choice, correct, scored, at)
            SELECT DISTINCT ON (d.person_id, i.question_id) d.person_id, i.question_id, d.id, 0,
                   (d.person_id + i.question_id) % 10 < 7, true, d.sent_at + interval '2 hours'
            FROM deliveries d JOIN delivery_items i ON i.delivery_id = d.id AND i.question_id IS NOT NULL
            WHERE d.kind = 'digest' AND d.person_id % 10 <> 0 AND (d.person_id * 7 + i.question_id) % 10 < 6
            ORDER BY d.person_id, i.question_id, d.id"""))
        if notice:
            as_of = as_of_for(first_monday, weeks)
            add_notice(conn, people, as_of - timedelta(days=21, hours=17), "2", "p % 10 <> 3")
            add_notice(conn, people, as_of - timedelta(days=7, hours=17), "3", "p % 2 = 0")
        # the aggregates every ingest path keeps on people, computed here in two set-based statements
        conn.execute(text("""
            UPDATE people SET last_engaged_at = h.last FROM (
                SELECT person_id, max(at) AS last FROM engagement_events
                WHERE NOT is_machine AND kind IN ('click', 'ack', 'canvas_read', 'answer') GROUP BY person_id) h
            WHERE h.person_id = people.id"""))
        conn.execute(text("""
            UPDATE people SET silent_digests = d.n, silent_since = d.first FROM (
                SELECT d.person_id, count(*) AS n, min(d.sent_at) AS first
                FROM deliveries d JOIN people p ON p.id = d.person_id
                WHERE d.kind = 'digest' AND d.status = 'sent'
                  AND (p.last_engaged_at IS NULL OR d.sent_at > p.last_engaged_at)
                GROUP BY d.person_id) d
            WHERE d.person_id = people.id"""))
    with make_sessionmaker(engine)() as s, s.begin():  # who is below whom, as a roster import writes it
        rebuild_lineage(s)
    with engine.connect() as conn:  # a year-old district: autovacuum has run (index-only scans need it)
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    with make_sessionmaker(engine)() as s, s.begin():  # the weekly roll-up, as `nudge engagement rebuild` makes it
        began = time.perf_counter()
        cells = weekly.rebuild(s, "America/Chicago", start + timedelta(weeks=weeks), retention_days=400)
        print(f"weekly roll-up rebuilt: {cells} person-weeks in {time.perf_counter() - began:.1f} s", flush=True)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE engagement_weeks"))


def add_notice(conn, people: int, at: datetime, label: str, confirmed: str) -> None:
    """A policy-update notice to everyone at ``at`` (due after two weeks), confirmed by the people
    ``confirmed`` (an SQL condition on p) selects."""
    conn.execute(text("""
        WITH p AS (SELECT id FROM policies WHERE slug = 'social-media'),
             v AS (INSERT INTO policy_versions (policy_id, label, sequence, text, content_hash, editorial,
                                                imported_at)
                   SELECT id, :label, :sequence, 'text', :hash, false, :at FROM p RETURNING id)
        INSERT INTO notices (policy_version_id, audience, summary, due_days, due_on, created_at)
        SELECT id, '["teacher", "administrator"]', '<p>changed</p>', 14, CAST(:due AS date), :at FROM v"""),
                 {"at": at, "due": (at + timedelta(days=14)).date(), "label": label, "sequence": int(label),
                  "hash": f"hash-{label}"})
    notice_id = conn.scalar(text("SELECT max(id) FROM notices"))
    conn.execute(text("""
        INSERT INTO deliveries (person_id, kind, period_key, channel, status, subject, payload, attempts,
                                next_attempt_at, created_at, sent_at)
        SELECT p, 'notice', 'notice:' || :notice, 'email', 'sent', 'Social Media has changed',
               json_build_object('notice_id', :notice), 1, :at, :at, :at
        FROM generate_series(1, :n) p"""), {"n": people, "at": at, "notice": notice_id})
    conn.execute(text("""
        INSERT INTO delivery_items (delivery_id, position, notice_id)
        SELECT d.id, 0, :notice FROM deliveries d WHERE d.kind = 'notice' AND d.period_key = 'notice:' || :notice"""),
                 {"notice": notice_id})
    conn.execute(text(f"""
        INSERT INTO acknowledgements (person_id, subject, notice_id, at)
        SELECT p, 'notice:' || :notice, :notice, :at FROM generate_series(1, :n) p WHERE {confirmed}"""),
                 {"n": people, "at": at + timedelta(days=2), "notice": notice_id})


def as_of_for(first_monday: date, weeks: int) -> datetime:
    """The pass runs on the Wednesday of the last week, 17:00 UTC."""
    return datetime.combine(first_monday + timedelta(weeks=weeks - 1, days=2), datetime.min.time(), UTC) \
        + timedelta(hours=17)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--no-notice", action="store_true", help="leave out the district-wide policy notice")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the district an earlier run built (its first pass is then recorded already)")
    args = parser.parse_args()
    began = time.perf_counter()
    first_monday = FIRST_MONDAY
    if args.reuse:  # perhaps built by dashboard.py, whose last week is the week it was built in
        engine = make_engine(args.database_url)
        with engine.connect() as conn:
            first_monday = conn.scalar(text("SELECT min(created_at) FROM deliveries WHERE kind = 'digest'")).date()
    else:
        engine = fresh_database(args.database_url)
        build(engine, args.people, args.weeks, notice=not args.no_notice)
    built = time.perf_counter() - began
    factory = make_sessionmaker(engine)
    settings = load_settings(database_url=args.database_url, admin_email="admin@bench.org")
    with factory() as s:
        events = s.scalar(select(func.count()).select_from(EngagementEvent))
    as_of = as_of_for(first_monday, args.weeks)
    timings = []
    for attempt in range(3):  # later passes find everything recorded already: the steady daily case
        with factory() as s, s.begin():
            start = time.perf_counter()
            result = run_pass(s, settings, as_of, SchoolCalendar())
            timings.append(time.perf_counter() - start)
        if attempt == 0:
            first = result
        if attempt == 0:  # a day passes: autovacuum analyzes what the first pass wrote
            with engine.begin() as conn:
                conn.execute(text("ANALYZE escalations; ANALYZE deliveries; ANALYZE delivery_items"))
    with factory() as s, s.begin():
        supervisor = s.get(Person, 2)
        week = f"{(as_of.date()).isocalendar()[0]}-W{(as_of.date()).isocalendar()[1]:02d}"
        start = time.perf_counter()
        payload = summary_payload(s, supervisor, week, ZoneInfo("America/Chicago"), as_of.date(),
                                  new_hire_days=settings.new_hire_days)
        summary_seconds = time.perf_counter() - start
        head = s.get(Person, 1)
        start = time.perf_counter()
        summary_payload(s, head, week, ZoneInfo("America/Chicago"), as_of.date(), new_hire_days=settings.new_hire_days)
        rollup_seconds = time.perf_counter() - start
    print(f"people: {args.people}; weeks: {args.weeks}; engagement events: {events}; built in {built:.0f} s")
    with factory() as s:
        opened = dict(s.execute(select(Escalation.reason, func.count()).group_by(Escalation.reason)).tuples().all())
    with factory() as s:
        nudge_tips = s.scalar(select(func.count()).select_from(DeliveryItem).join(Delivery)
                              .where(Delivery.kind == "nudge", DeliveryItem.tip_id.is_not(None)))
    print(f"{'no notice' if args.no_notice else 'two notices: one overdue for 1 in 10, one a week old'}; "
          f"escalations recorded by the first pass: {opened}")
    print(f"the first pass's day: {len(first.reminders)} reminders, {len(first.nudges)} nudges carrying "
          f"{nudge_tips} tips, {len(first.emails)} emails queued in all")
    print(f"first escalation pass: {timings[0]:.2f} s")
    print(f"escalation pass (steady, nothing new): {timings[1]:.2f} s (goal <= 2 s); again: {timings[2]:.2f} s")
    print(f"supervisor summary (team of {len(payload['people'])}): {summary_seconds:.2f} s (goal <= 2 s)")
    print(f"roll-up summary for the head of the whole district: {rollup_seconds:.2f} s")


if __name__ == "__main__":
    main()
