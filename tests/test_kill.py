"""A dispatcher killed mid-run (SIGKILL), then a rerun: tips are sent at most once, nothing else lost."""

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from service.usecases import dispatcher as make_dispatcher
from service.doubles.sendgrid import Fault
from service.models import Delivery, utcnow
from tests.conftest import REPO
from tests.test_dispatch import prepare

PEOPLE = 300
BATCH = 20


def kill_a_dispatcher_mid_run(factory, settings, sendgrid_double, database_url) -> None:
    """A `nudge dispatch` process with ``settings``' batch and lease, killed (SIGKILL) while sending:
    one batch in flight, the next claimed and rendered."""
    prepare(factory, settings, PEOPLE, now=utcnow() - timedelta(minutes=1))  # due now for a real-clock dispatcher
    sendgrid_double.inject(*[Fault(delay=0.4)] * 100)
    env = {
        **os.environ,
        "NUDGE_DATABASE_URL": database_url,
        "NUDGE_EMAIL_BACKEND": "sendgrid",
        "NUDGE_SENDGRID_HOST": sendgrid_double.url,
        "SENDGRID_API_KEY": sendgrid_double.api_key,
        "NUDGE_DISPATCH_BATCH_SIZE": str(settings.dispatch_batch_size),
        "NUDGE_DISPATCH_LEASE_SECONDS": str(settings.dispatch_lease_seconds),
        "NUDGE_OUTBOX_DIR": settings.outbox_dir,
    }
    proc = subprocess.Popen([sys.executable, "-m", "service", "dispatch"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while sendgrid_double.attempts < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sendgrid_double.attempts >= 4, proc.stdout.read().decode() if proc.poll() is not None else "no progress"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def statuses(factory) -> dict[str, int]:
    with factory() as s:
        return dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples().all())


def test_kill_and_rerun_sends_each_tip_digest_at_most_once(factory, sendgrid_settings, sendgrid_double, database_url):
    settings = sendgrid_settings.model_copy(
        update={"dispatch_batch_size": BATCH, "dispatch_lease_seconds": 2, "secret_key": None}
    )
    kill_a_dispatcher_mid_run(factory, settings, sendgrid_double, database_url)

    time.sleep(2.5)  # the dead dispatcher's lease runs out; its in-flight request has finished
    received_before_rerun = len(sendgrid_double.emails)
    make_dispatcher(factory, settings).drain()

    by_status = statuses(factory)
    per_person = collections.Counter(e.to_email for e in sendgrid_double.emails)
    duplicates = sum(n - 1 for n in per_person.values() if n > 1)
    lost = PEOPLE - len(per_person)
    print(f"\nkill-and-rerun: received before rerun {received_before_rerun}, after {len(sendgrid_double.emails)}; "
          f"statuses {by_status}; duplicates {duplicates}; lost {lost}")
    assert duplicates == 0  # tips: at most once
    assert by_status.get("sent", 0) + by_status.get("unconfirmed", 0) == PEOPLE
    assert by_status.get("unconfirmed", 0) <= BATCH  # only the batch in flight is in doubt
    assert lost <= by_status.get("unconfirmed", 0)  # nothing lost outside the in-flight batch


def test_on_postgresql_a_killed_dispatchers_claimed_batch_is_due_again_at_once(
        factory, sendgrid_settings, sendgrid_double, database_url):
    """On PostgreSQL a claim is the row locks of the claiming transaction: when the dispatcher dies,
    the batch it had claimed and rendered but not begun to send goes out at the next pass, without
    waiting for a lease (five minutes here) to run out. Only the batch in flight waits for it."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no row locks: a claim there is a lease, re-claimed when it runs out")
    settings = sendgrid_settings.model_copy(
        update={"dispatch_batch_size": BATCH, "dispatch_lease_seconds": 300, "secret_key": None}
    )
    kill_a_dispatcher_mid_run(factory, settings, sendgrid_double, database_url)
    time.sleep(0.5)  # the in-flight request finishes at the double
    make_dispatcher(factory, settings).drain()

    by_status = statuses(factory)
    per_person = collections.Counter(e.to_email for e in sendgrid_double.emails)
    assert "leased" not in by_status and by_status.get("pending", 0) == 0
    assert by_status["sent"] + by_status.get("sending", 0) == PEOPLE
    assert by_status.get("sending", 0) <= BATCH  # the batch in flight: at most once, closed when its lease ends
    assert max(per_person.values()) == 1
