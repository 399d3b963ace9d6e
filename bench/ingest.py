"""Pixel ingest benchmark: our open pixel vs. a static GIF served by nginx, same load generator.

Starts nginx serving a 1x1 GIF and `nudge serve --workers N` on a prepared
database. Throughput: `wrk` (keep-alive HTTP/1.1, 2 threads, C connections,
fixed seconds) against each; the ratio is pixel/static. Nothing lost: then
`ab -n REQUESTS` sends an exact number of pixel requests, the server is
stopped gracefully, and the opens stored must equal every request answered
(the wrk phase's and ab's). Prints the figures last, ending with "lost: N".
Needs Debian's nginx, wrk and apache2-utils.

    python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, fresh_database  # noqa: E402

from service.config import load_settings  # noqa: E402
from service.content import import_pack  # noqa: E402
from service.db import make_engine, make_sessionmaker  # noqa: E402
from service.weeks import SchoolCalendar  # noqa: E402
from service.digests import compose  # noqa: E402
from service.usecases import dispatcher as make_dispatcher  # noqa: E402
from service.models import Delivery, EngagementEvent, Person, utcnow  # noqa: E402
from service.paths import CONTENT_DIR  # noqa: E402
from service.engagement import Links, Signer  # noqa: E402
from service.web.opens import PIXEL  # noqa: E402

SECRET = "bench-secret"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def wrk(url: str, seconds: int, connections: int) -> tuple[float, int]:
    """Requests/s and responses over keep-alive HTTP/1.1 for a fixed time (the throughput figure)."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-H", f"User-Agent: {CHROME}", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert errors is None, out
    return rate, total


def ab(url: str, requests: int, concurrency: int) -> tuple[float, int, int]:
    out = subprocess.run(["ab", "-q", "-k", "-n", str(requests), "-c", str(concurrency), "-H", f"User-Agent: {CHROME}",
                          url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    complete = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    return rate, complete, failed + (int(non2xx.group(1)) if non2xx else 0)


def prepare(url: str) -> int:
    """A migrated database with one sent digest; returns its delivery id."""
    engine = fresh_database(url)
    factory = make_sessionmaker(engine)
    past = utcnow() - timedelta(hours=1)
    with factory() as s, s.begin():
        import_pack(s, CONTENT_DIR / "social_media.yaml")
        s.add(Person(email="reader@bench.org", name="Reader", role="teacher", joined_at=past))
    settings = load_settings(database_url=url, secret_key=SecretStr(SECRET), outbox_dir=tempfile.mkdtemp())
    with factory() as s, s.begin():
        compose(s, settings, past, SchoolCalendar(), week="2026-W49")
    make_dispatcher(factory, settings, clock=lambda: past).drain()
    with factory() as s:
        delivery_id = s.scalar(select(Delivery.id))
    engine.dispose()
    return delivery_id


def nginx_baseline(seconds: int, connections: int, workdir: Path) -> float:
    port = free_port()
    (workdir / "pixel.gif").write_bytes(PIXEL)
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
worker_processes 2;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {workdir}; proxy_temp_path {workdir}; fastcgi_temp_path {workdir};
  uwsgi_temp_path {workdir}; scgi_temp_path {workdir};
  server {{
    listen 127.0.0.1:{port};
    location / {{ root {workdir}; add_header Cache-Control no-store; }}
  }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(workdir)])
    try:
        wait_for(port)
        wrk(f"http://127.0.0.1:{port}/pixel.gif", 1, connections)  # warm up
        return wrk(f"http://127.0.0.1:{port}/pixel.gif", seconds, connections)[0]
    finally:
        nginx.terminate()
        nginx.wait(10)


def count_opens(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(EngagementEvent).where(EngagementEvent.kind == "open"))
    engine.dispose()
    return stored or 0


def settled_count(url: str, quiet: float = 0.5, limit: float = 120.0) -> tuple[int, float]:
    """Stored opens once the server's write queue is empty (the count stops growing), and how
    long after the load that took: answering may run ahead of writing while the cores are busy."""
    began = time.perf_counter()
    stored = count_opens(url)
    while time.perf_counter() - began < limit:
        time.sleep(quiet)
        now = count_opens(url)
        if now == stored:
            return stored, time.perf_counter() - began - quiet
        stored = now
    return stored, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20_000, help="exact requests for the nothing-lost check")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="default: a throwaway SQLite file")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nudge-ingest-"))
    url = args.database_url or f"sqlite:///{workdir}/ingest.db"
    delivery_id = prepare(url)
    pixel_path = Links("http://x", Signer([SECRET])).pixel(delivery_id).removeprefix("http://x")

    static_rate = nginx_baseline(args.seconds, args.connections, workdir)

    port = free_port()
    env = {**os.environ, "NUDGE_DATABASE_URL": url, "NUDGE_SECRET_KEY": SECRET}
    server = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(port), "--workers",
                               str(args.workers), "--no-scheduler"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    pixel_url = f"http://127.0.0.1:{port}{pixel_path}"
    try:
        wait_for(port)
        time.sleep(1.0)
        pixel_rate, wrk_answered = wrk(pixel_url, args.seconds, args.connections)
        after_wrk, drained = settled_count(url)
        _, complete, failed = ab(pixel_url, args.requests, args.connections)
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: queued opens are written before exit
        server.wait(60)
    stored = count_opens(url)
    exact_stored = stored - after_wrk
    print(f"database: {make_engine(url).dialect.name}; web workers: {args.workers}; wrk: 2 threads, "
          f"{args.connections} connections, {args.seconds}s; date: {datetime.now(UTC):%Y-%m-%d}")
    print(f"static GIF (nginx, 2 workers): {static_rate:.0f} req/s")
    print(f"open pixel (nudge serve): {pixel_rate:.0f} req/s")
    print(f"ratio: {pixel_rate / static_rate:.1%} (goal >= 20%)")
    print(f"wrk phase: {wrk_answered} answered, {after_wrk} stored (in-flight at wrk's stop may add up to "
          f"{args.connections}); the write queue emptied {drained:.1f} s after the load stopped, "
          f"so opens were written at {after_wrk / (args.seconds + drained):.0f}/s sustained")
    print(f"exact phase (ab -n {args.requests}): {complete - failed} answered, {exact_stored} stored")
    print(f"lost: {max(0, complete - failed - exact_stored) + max(0, wrk_answered - after_wrk)}")


if __name__ == "__main__":
    main()
