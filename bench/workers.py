"""Outbox drain with 1, 2 and 4 dispatcher processes on PostgreSQL: rows/s and duplicates (must be 0).

    python bench/workers.py --rows 100000 --database-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, free_port, fresh_database, load_content, wait_for  # noqa: E402
from fanout import WEEK, add_people  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from service.config import load_settings  # noqa: E402
from service.db import make_sessionmaker  # noqa: E402
from service.weeks import SchoolCalendar  # noqa: E402
from service.digests import compose  # noqa: E402
from service.models import Delivery  # noqa: E402


def run(url: str, rows: int, workers: int, batch: int | None) -> dict[str, float]:
    engine = fresh_database(url)
    factory = make_sessionmaker(engine)
    load_content(factory, datetime.now(UTC) - timedelta(days=1))
    add_people(factory, rows)
    settings = load_settings(database_url=url, secret_key=SecretStr("bench-key"))
    with factory() as s, s.begin():  # due now: the dispatchers run on the real clock
        compose(s, settings, datetime.now(UTC) - timedelta(minutes=1), SchoolCalendar(), week=WEEK)
    port = free_port()
    double = subprocess.Popen([sys.executable, "-m", "service.doubles.sendgrid", "--port", str(port), "--api-key",
                               "SG.bench", "--count-only"], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_for(port)
        env = {**os.environ, "NUDGE_DATABASE_URL": url, "NUDGE_EMAIL_BACKEND": "sendgrid",
               "NUDGE_SENDGRID_HOST": f"http://127.0.0.1:{port}", "SENDGRID_API_KEY": "SG.bench",
               "NUDGE_SECRET_KEY": "bench-key"} | ({"NUDGE_DISPATCH_BATCH_SIZE": str(batch)} if batch else {})
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-m", "service", "dispatch"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
        for proc in procs:
            proc.wait()
        wall = time.perf_counter() - start
        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats").read())
    finally:
        double.terminate()
        double.wait(10)
    with factory() as s:
        sent = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent"))
    engine.dispose()
    return {"wall": wall, "sent": sent, "received": stats["recipients"], "duplicates": stats["duplicates"],
            "requests": stats["requests"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=None, help="dispatch batch size (default: the setting's, 500)")
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    batch = args.batch or load_settings().dispatch_batch_size
    print(f"date: {datetime.now(UTC):%Y-%m-%d}; rows: {args.rows}; batch: {batch}{'' if args.batch else ' (default)'}")
    for workers in (1, 2, 4):
        r = run(args.database_url, args.rows, workers, args.batch)
        print(f"{workers} dispatcher(s): {r['sent']:.0f} sent in {r['wall']:.1f} s = {r['sent'] / r['wall']:.0f} rows/s; "
              f"{r['requests']:.0f} requests; received {r['received']:.0f}; duplicates: {r['duplicates']:.0f}")
        if r["received"] != r["sent"] or r["duplicates"] or r["sent"] != args.rows:
            raise SystemExit(f"{workers} dispatcher(s): sent {r['sent']:.0f} of {args.rows}, the double received "
                             f"{r['received']:.0f}, {r['duplicates']:.0f} twice")


if __name__ == "__main__":
    main()
