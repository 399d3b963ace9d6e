"""`nudge serve` as a deployment: two processes on PostgreSQL, one scheduler, both dispatching, hand-over."""

import collections
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import func, select

from service.weeks import SchoolCalendar
from service.digests import compose
from service.doubles.sendgrid import Fault
from service.models import Delivery, utcnow
from tests.conftest import REPO, add_people


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def health(port: int) -> dict:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return {}


def wait_until(condition, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return None


def sent_by(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    match = re.search(r'nudge_dispatched_total\{outcome="sent"\} ([\d.e+]+)', text)
    return float(match.group(1)) if match else 0.0


def test_two_processes_one_scheduler_both_dispatch_and_hand_over(factory, loaded, sendgrid_settings,
                                                                 sendgrid_double, database_url) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("leader election is a PostgreSQL deployment; on SQLite one process runs everything")
    sendgrid_double.inject(*[Fault(delay=0.05)] * 200)
    env = {**os.environ, "NUDGE_DATABASE_URL": database_url, "NUDGE_EMAIL_BACKEND": "sendgrid",
           "NUDGE_SENDGRID_HOST": sendgrid_double.url, "SENDGRID_API_KEY": sendgrid_double.api_key,
           "NUDGE_SECRET_KEY": "two-process-test", "NUDGE_LEADER_RETRY_SECONDS": "0.5",
           "NUDGE_DISPATCH_INTERVAL_SECONDS": "0.3", "NUDGE_DISPATCH_BATCH_SIZE": "10",
           "NUDGE_OUTBOX_DIR": sendgrid_settings.outbox_dir}
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(p)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for p in ports]
    try:
        roles = wait_until(lambda: sorted(health(p).get("scheduler", "") for p in ports)
                           if all(health(p).get("scheduler") for p in ports) else None, 30)
        assert roles == ["follower", "leader"]
        leader, follower = (0, 1) if health(ports[0])["scheduler"] == "leader" else (1, 0)

        add_people(factory, 300)
        with factory() as s, s.begin():
            compose(s, sendgrid_settings, utcnow(), SchoolCalendar(), week="2026-W50")
        with factory() as s:
            total = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.period_key == "2026-W50"))

        def all_sent() -> bool:
            with factory() as s:
                return s.scalar(select(func.count()).select_from(Delivery).where(
                    Delivery.period_key == "2026-W50", Delivery.status == "sent")) == total

        assert wait_until(all_sent, 60), "the outbox was not drained"
        per_delivery = collections.Counter(e.custom_args["delivery_id"] for e in sendgrid_double.emails)
        assert max(per_delivery.values()) == 1  # no row sent twice across the two dispatchers
        assert len(per_delivery) >= total
        counts = [sent_by(p) for p in ports]
        print(f"\nrows sent by each process: {counts}")
        assert all(c > 0 for c in counts), "both processes should dispatch"

        killed_at = time.monotonic()
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait(10)
        took_over = wait_until(lambda: health(ports[follower]).get("scheduler") == "leader", 60)
        handover = time.monotonic() - killed_at
        print(f"hand-over after the leader was killed: {handover:.1f} s")
        assert took_over and handover < 60

        procs[follower].send_signal(signal.SIGTERM)  # graceful: uvicorn shuts down, then re-raises the signal
        assert procs[follower].wait(60) in (0, -signal.SIGTERM)
        with factory() as s:
            leased = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "leased"))
        assert leased == 0  # nothing left claimed by the stopped process
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
