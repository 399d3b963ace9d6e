"""Pixel ingest benchmark: our open pixel vs. a static GIF served by nginx, same load generator.

Prepares 100,000 people with one sent digest each (composed by the pipeline; marked sent
in SQL, since sending is not what this measures) and signs each digest's pixel: 100,000
distinct tokens. Throughput: `wrk` (keep-alive HTTP/1.1, 2 threads, C connections, fixed
seconds, a Lua script choosing a random token and a user agent from a realistic mix:
mail clients and browsers, image proxies, link scanners) against nginx serving the same
1x1 GIF for every /o/ path, then against `nudge serve --workers N`; the ratio is
pixel/static. Nothing lost: an exact phase sends `--requests` requests, each a token not
used before, with the same agent mix; the server's write queue is read from /metrics
(`nudge_open_queue` per process) until every worker reports it empty; then lost =
answered - stored, printed with its sign (never clamped). Needs Debian's nginx and wrk.

    python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, free_port, fresh_database, load_content, wait_for  # noqa: E402
from fanout import WEEK, add_people  # noqa: E402

from service.config import load_settings  # noqa: E402
from service.db import make_engine, make_sessionmaker  # noqa: E402
from service.weeks import SchoolCalendar  # noqa: E402
from service.digests import compose  # noqa: E402
from service.models import Delivery, EngagementEvent, utcnow  # noqa: E402
from service.engagement import Links, Signer  # noqa: E402
from service.web.opens import PIXEL  # noqa: E402

SECRET = "bench-secret"
# who fetches a pixel, by share: people's mail clients and browsers, image proxies, link scanners
AGENTS = [
    (50, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
    (15, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"),
    (10, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Trident/7.0; Microsoft Outlook 16.0)"),
    (15, "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"),
    (5, "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"),
    (5, "Barracuda Sentinel (EE)"),
]
LUA = """
local paths, agents = {}, {}
for line in io.lines(os.getenv("NUDGE_BENCH_PATHS")) do paths[#paths + 1] = line end
for line in io.lines(os.getenv("NUDGE_BENCH_AGENTS")) do agents[#agents + 1] = line end
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
request = function()
  return wrk.format("GET", paths[math.random(#paths)], {["User-Agent"] = agents[math.random(#agents)]})
end
"""


def wrk(url: str, seconds: int, connections: int, script: Path, env: dict[str, str]) -> tuple[float, int]:
    """Requests/s and responses over keep-alive HTTP/1.1 for a fixed time (the throughput figure)."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True, env=env).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert errors is None, out
    return rate, total


def exact(base: str, paths: list[str], connections: int) -> int:
    """Each path requested once, ``connections`` at a time, agents drawn from the mix; returns how
    many were answered with the pixel."""
    agents = [agent for weight, agent in AGENTS for _ in range(weight)]
    answered = 0

    async def worker(client: httpx.AsyncClient, mine: list[str]) -> None:
        nonlocal answered
        for path in mine:
            response = await client.get(path, headers={"User-Agent": random.choice(agents)})
            answered += response.status_code == 200 and response.content == PIXEL

    async def run() -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            await asyncio.gather(*(worker(client, paths[i::connections]) for i in range(connections)))

    asyncio.run(run())
    return answered


def queue_empty(base: str, workers: int, limit: float = 120.0) -> float:
    """Seconds until every web worker reports its write queue empty (read from /metrics, which
    answers for one worker per connection: each poll opens a new one)."""
    began = time.perf_counter()
    empty: set[str] = set()
    while time.perf_counter() - began < limit:
        metrics = httpx.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=30).text
        for process, queued in re.findall(r'nudge_open_queue\{process="(\d+)"\} ([\d.e+]+)', metrics):
            (empty.add if float(queued) == 0 else empty.discard)(process)
        if len(empty) >= workers:
            return time.perf_counter() - began
        time.sleep(0.02)
    raise SystemExit(f"the write queue did not empty within {limit:.0f} s (empty in {len(empty)} of {workers})")


def prepare(url: str, people: int, workdir: Path) -> list[str]:
    """A migrated database with one sent digest a person; returns their pixel paths, shuffled."""
    engine = fresh_database(url)
    factory = make_sessionmaker(engine)
    past = utcnow() - timedelta(hours=1)
    load_content(factory, past - timedelta(days=1))
    add_people(factory, people)
    settings = load_settings(database_url=url, secret_key=SecretStr(SECRET), outbox_dir=str(workdir / "outbox"))
    with factory() as s, s.begin():
        compose(s, settings, past, SchoolCalendar(), week=WEEK)
        s.execute(update(Delivery).values(status="sent", sent_at=past))
    with factory() as s:
        ids = list(s.scalars(select(Delivery.id)))
    engine.dispose()
    links = Links("http://x", Signer([SECRET]))
    paths = [links.pixel(i).removeprefix("http://x") for i in ids]
    random.Random(7).shuffle(paths)
    return paths


def nginx_baseline(seconds: int, connections: int, workdir: Path, script: Path, env: dict[str, str]) -> float:
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
    location /o/ {{ root {workdir}; try_files /pixel.gif =404; add_header Cache-Control no-store; }}
  }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(workdir)])
    try:
        wait_for(port)
        wrk(f"http://127.0.0.1:{port}", 1, connections, script, env)  # warm up
        return wrk(f"http://127.0.0.1:{port}", seconds, connections, script, env)[0]
    finally:
        nginx.terminate()
        nginx.wait(10)


def count_opens(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(EngagementEvent).where(EngagementEvent.kind == "open"))
    engine.dispose()
    return stored or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000, help="people, digests and distinct pixel tokens")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20_000, help="exact requests for the nothing-lost check")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="default: a throwaway SQLite file")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nudge-ingest-"))
    url = args.database_url or f"sqlite:///{workdir}/ingest.db"
    paths = prepare(url, args.people, workdir)
    if args.requests > len(paths):
        raise SystemExit("--requests must not exceed --people: each exact request uses a token once")
    (workdir / "paths.txt").write_text("\n".join(paths) + "\n")
    (workdir / "agents.txt").write_text("\n".join(a for weight, a in AGENTS for _ in range(weight)) + "\n")
    (workdir / "mix.lua").write_text(LUA)
    env = {**os.environ, "NUDGE_BENCH_PATHS": str(workdir / "paths.txt"),
           "NUDGE_BENCH_AGENTS": str(workdir / "agents.txt")}

    static_rate = nginx_baseline(args.seconds, args.connections, workdir, workdir / "mix.lua", env)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_env = {**os.environ, "NUDGE_DATABASE_URL": url, "NUDGE_SECRET_KEY": SECRET}
    server = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(port), "--workers",
                               str(args.workers), "--no-scheduler"], cwd=ROOT, env=server_env,
                              stdout=subprocess.DEVNULL)
    try:
        wait_for(port)
        time.sleep(1.0)
        pixel_rate, wrk_answered = wrk(base, args.seconds, args.connections, workdir / "mix.lua", env)
        wrk_drained = queue_empty(base, args.workers)
        after_wrk = count_opens(url)
        answered = exact(base, paths[: args.requests], args.connections)
        exact_drained = queue_empty(base, args.workers)
        stored = count_opens(url) - after_wrk
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    print(f"database: {make_engine(url).dialect.name}; web workers: {args.workers}; wrk: 2 threads, "
          f"{args.connections} connections, {args.seconds}s; distinct tokens: {len(paths)}; "
          f"date: {datetime.now(UTC):%Y-%m-%d}")
    print(f"agents: {', '.join(f'{w}% {a[:40]}' for w, a in AGENTS)}")
    print(f"static GIF (nginx, 2 workers, the same script): {static_rate:.0f} req/s")
    print(f"open pixel (nudge serve): {pixel_rate:.0f} req/s")
    print(f"ratio: {pixel_rate / static_rate:.1%} (goal >= 20%)")
    print(f"wrk phase: {wrk_answered} answered, {after_wrk} stored (requests in flight when wrk stops are "
          f"stored but not counted: up to {args.connections}); the write queue was empty "
          f"{wrk_drained:.1f} s after the load")
    print(f"exact phase ({args.requests} requests, each token once): {answered} answered, {stored} stored; "
          f"write queue empty {exact_drained:.1f} s after")
    print(f"lost: {answered - stored}")
    if answered != stored:
        raise SystemExit("opens answered and stored differ")


if __name__ == "__main__":
    main()
