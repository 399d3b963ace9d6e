"""Weekly fan-out benchmark: compose + render + dispatch digests to the SendGrid double.

The double runs in its own process (count-only), so its work is not charged to ours.

Prints digests/s, wall time, HTTP calls made and calls per 500 digests, plus
the pipeline's own per-message rendering rate for the same people, measured in the
same run with no database and no HTTP (the floor), and the ratio; and, per phase, the CPU
seconds of this process, of the local PostgreSQL server and of the double beside the wall time
(the three share the machine's cores). The dispatch batch
is the default (`NUDGE_DISPATCH_BATCH_SIZE`, 500) unless `--batch` says otherwise.
The double's duplicate count must be 0 and what it received must equal what was sent.
Figures go last, one per line.

    python bench/fanout.py --people 1000                       # throwaway SQLite
    python bench/fanout.py --people 100000 --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    python bench/fanout.py --people 100000 --notice --database-url ...   # a policy-update notice instead
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.request
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import event, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, free_port, fresh_database, load_content, wait_for  # noqa: E402

from service.config import load_settings  # noqa: E402
from service.db import make_sessionmaker, refresh_statistics  # noqa: E402
from service.weeks import SchoolCalendar  # noqa: E402
from service.digests import compose, rotation_order, tip_catalogue  # noqa: E402
from service.usecases import dispatcher as make_dispatcher  # noqa: E402
from service.models import Person, utcnow  # noqa: E402
from service.paths import CONTENT_DIR  # noqa: E402
from service.content import import_version  # noqa: E402
from service.notices import queue_notice  # noqa: E402
from service.digests import subject_for  # noqa: E402
from service.digests.sending import Recipient  # noqa: E402
from service.engagement import make_links  # noqa: E402
from service.rendering import DigestRenderer  # noqa: E402
from service.quiz import question_catalogue  # noqa: E402

WEEK = "2026-W50"
NOW = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
POLICIES = CONTENT_DIR / "policies"
ROLES = ("teacher", "teacher", "teacher", "staff", "coach", "administrator")


def add_people(factory, count: int) -> None:
    """A hierarchy: one head, 1 supervisor per 20 people, everyone else reports to them."""
    now = utcnow()
    with factory() as s, s.begin():
        s.execute(Person.__table__.insert(), [{"id": 1, "email": "head@bench.org", "name": "Head", "role": "administrator",
                                              "active": True, "joined_at": now, "updated_at": now}])
        rows = []
        for i in range(2, count + 1):
            supervisor = 1 if i % 20 == 2 else 2 + ((i - 2) // 20) * 20
            rows.append({"id": i, "email": f"person{i:07d}@bench.org", "name": f"Person {i}",
                         "role": ROLES[i % len(ROLES)], "supervisor_id": supervisor, "active": True,
                         "joined_at": now, "updated_at": now})
        for start in range(0, len(rows), 10000):
            s.execute(Person.__table__.insert(), rows[start : start + 10000])
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT setval('people_id_seq', (SELECT max(id) FROM people))"))
        refresh_statistics(s, "people")  # as a roster import of this size does


def own_render_rate(factory, settings, sample: int) -> float:
    """Digests/s of the pipeline's own per-message work for the same people, in the same run:
    the shared skeleton rendered once, then per person the tip blocks' and the quick check's links
    signed and filled and the values made (`DigestRenderer.message`, as `DigestBatch` calls it).
    No database, no HTTP."""
    with factory() as s:
        renderer = DigestRenderer(settings.base_url, settings.organisation, make_links(s, settings))
        tips = rotation_order(tip_catalogue(s).values())[: settings.tips_per_digest]
        question = next(iter(rotation_order(question_catalogue(s).values())), None)  # a digest asks one
        for item in (*tips, *([question] if question else [])):
            item.policy  # noqa: B018 - load before the timer
        people = [Recipient(p.email, p.name) for p in s.query(Person).order_by(Person.id).limit(sample)]
    start = time.perf_counter()
    for index, person in enumerate(people):
        renderer.message(index + 1, person, tips, subject_for(tips[0]), WEEK, question=question)
    return len(people) / (time.perf_counter() - start)


def time_statements(engine) -> dict[str, float]:
    """Seconds this process spends waiting on the database's statements (reads, COPY and
    writes alike), so the wall time can be split: the database's part, the rest."""
    waited = {"sql": 0.0}

    @event.listens_for(engine, "before_cursor_execute")
    def started(conn, cursor, statement, parameters, context, executemany):
        conn.info["statement_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def ended(conn, cursor, statement, parameters, context, executemany):
        waited["sql"] += time.perf_counter() - conn.info.pop("statement_started")

    return waited


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _ticks(pid: int | str, reaped_children: bool) -> int:
    """CPU ticks of a process from /proc (with its reaped children's: PostgreSQL's ended backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15 if reaped_children else 13])


def cpu_seconds(double_pid: int, local_postgres: bool) -> dict[str, float] | None:
    """CPU seconds so far of this process, of the local PostgreSQL server's processes and of the
    double, so a phase's wall time can be set beside what the two cores did in it. None where
    /proc is missing."""
    if not Path("/proc/self/stat").exists():
        return None
    used = {"this process": _ticks("self", reaped_children=False) / CLOCK_TICKS}
    if local_postgres:
        used["PostgreSQL"] = _postgres_ticks() / CLOCK_TICKS
    return used | {"the double": _ticks(double_pid, reaped_children=False) / CLOCK_TICKS}


def _postgres_ticks() -> int:
    """CPU ticks of every process named postgres (the postmaster counts its ended backends)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                ticks += _ticks(entry.name, reaped_children=True)
        except OSError:  # a backend that ended while we looked
            continue
    return ticks


def cpu_used(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float] | None:
    return None if before is None or after is None else {name: after[name] - before[name] for name in before}


def cpu_line(phase: str, used: dict[str, float] | None, wall: float) -> str:
    if used is None:
        return f"CPU of {phase}: not measured (no /proc)"
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in used.items())
    return f"CPU of {phase} ({wall:.1f} s wall): {parts}; {sum(used.values()) / wall:.2f} of {os.cpu_count()} cores busy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="default: a throwaway SQLite file")
    parser.add_argument("--notice", action="store_true",
                        help="send a policy-update notice to everyone instead of the weekly digest")
    parser.add_argument("--batch", type=int, default=None, help="dispatch batch size (default: the setting's)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="nudge-fanout-")
    url = args.database_url or f"sqlite:///{tmp}/fanout.db"
    engine = fresh_database(url)
    factory = make_sessionmaker(engine)
    load_content(factory, NOW)
    add_people(factory, args.people)
    sample = min(args.people, 5000)
    port = free_port()
    double = subprocess.Popen([sys.executable, "-m", "service.doubles.sendgrid", "--port", str(port), "--api-key",
                               "SG.bench", "--count-only"], cwd=ROOT, stdout=subprocess.DEVNULL)
    double_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(port)
        batch = {"dispatch_batch_size": args.batch} if args.batch else {}
        settings = load_settings(database_url=url, email_backend="sendgrid", sendgrid_host=double_url,
                                 sendgrid_api_key=SecretStr("SG.bench"), secret_key=SecretStr("bench-key"),
                                 outbox_dir=f"{tmp}/outbox", **batch)
        floor_before = 0.0 if args.notice else own_render_rate(factory, settings, sample)
        waited = time_statements(engine)
        local_postgres = engine.dialect.name == "postgresql" and engine.url.host in (None, "127.0.0.1", "localhost")
        cpu_at_start = cpu_seconds(double.pid, local_postgres)
        start = time.perf_counter()
        with factory() as s, s.begin():
            if args.notice:
                notice = import_version(s, POLICIES / "social-media-v2.txt", slug="social-media", label="2",
                                        audience=list(set(ROLES)), now=NOW).notice
                composed = queue_notice(s, settings, notice, NOW).emails
            else:
                composed = compose(s, settings, NOW, SchoolCalendar(), week=WEEK).composed
        composed_at = time.perf_counter()
        cpu_at_composed = cpu_seconds(double.pid, local_postgres)
        compose_sql = waited["sql"]
        dispatcher = make_dispatcher(factory, settings, clock=lambda: NOW)
        stats = dispatcher.drain()
        wall = time.perf_counter() - start
        cpu_at_end = cpu_seconds(double.pid, local_postgres)
        counters = json.loads(urllib.request.urlopen(f"{double_url}/_stats").read())
        calls, received, duplicates = counters["requests"], counters["recipients"], counters["duplicates"]
    finally:
        double.terminate()
        double.wait(10)
    rate = stats.sent / wall
    what = "notices" if args.notice else "digests"
    print(f"database: {engine.dialect.name}; people: {args.people}; sending: {what}; "
          f"batch: {settings.dispatch_batch_size}{'' if args.batch else ' (default)'}")
    print(f"{'queued' if args.notice else 'composed'}: {composed} in {composed_at - start:.2f} s; dispatched: {stats.sent} in {wall - (composed_at - start):.2f} s")
    print(f"emails received by the double: {received} (sent: {stats.sent}); duplicates: {duplicates}")
    print(f"wall time: {wall:.2f} s")
    print(f"waiting on the database's statements: {waited['sql']:.2f} s (compose {compose_sql:.2f} s, "
          f"dispatch {waited['sql'] - compose_sql:.2f} s)")
    print(cpu_line("queuing" if args.notice else "composing", cpu_used(cpu_at_start, cpu_at_composed),
                   composed_at - start))
    print(cpu_line("dispatching", cpu_used(cpu_at_composed, cpu_at_end), wall - (composed_at - start)))
    print(f"{what}/s: {rate:.0f}")
    print(f"HTTP calls: {calls} ({calls / max(stats.sent, 1) * 500:.2f} per 500 {what})")
    if received != stats.sent or duplicates:
        raise SystemExit(f"the double received {received} of {stats.sent} sent, {duplicates} twice")
    if args.notice:
        return
    # the floor is measured before and after the run; the faster of the two counts (this VM's speed wanders)
    floor = max(floor_before, own_render_rate(factory, settings, sample))
    print(f"own per-message rendering, no database or HTTP (best of before/after): {floor:.0f} digests/s; "
          f"ratio: {rate / floor:.2f}")
    used = cpu_used(cpu_at_start, cpu_at_end)
    if used is not None:  # even with every core busy all the time, the run cannot be faster than this
        fastest = sum(used.values()) / os.cpu_count()
        print(f"the run's CPU spread over all {os.cpu_count()} cores: {fastest:.1f} s at the least; "
              f"ratio at most {stats.sent / fastest / floor:.2f} with this much work")


if __name__ == "__main__":
    main()
