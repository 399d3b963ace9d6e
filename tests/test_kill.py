"""A dispatcher killed mid-run (SIGKILL), then a rerun: tips are sent at most once, nothing else lost."""

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select

from service.usecases import dispatcher as make_dispatcher
from service.doubles.sendgrid import Fault
from service.models import Delivery, utcnow
from tests.conftest import REPO
from tests.test_dispatch import prepare

PEOPLE = 300
BATCH = 20


def test_kill_and_rerun_sends_each_tip_digest_at_most_once(factory, sendgrid_settings, sendgrid_double, database_url):
    settings = sendgrid_settings.model_copy(
        update={"dispatch_batch_size": BATCH, "dispatch_lease_seconds": 2, "secret_key": None}
    )
    prepare(factory, settings, PEOPLE, now=utcnow() - timedelta(minutes=1))  # due now for a real-clock dispatcher
    sendgrid_double.inject(*[Fault(delay=0.4)] * 100)
    env = {
        **os.environ,
        "NUDGE_DATABASE_URL": database_url,
        "NUDGE_EMAIL_BACKEND": "sendgrid",
        "NUDGE_SENDGRID_HOST": sendgrid_double.url,
        "SENDGRID_API_KEY": sendgrid_double.api_key,
        "NUDGE_DISPATCH_BATCH_SIZE": str(BATCH),
        "NUDGE_DISPATCH_LEASE_SECONDS": "2",
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

    time.sleep(2.5)  # the dead dispatcher's lease runs out; its in-flight request has finished
    received_before_rerun = len(sendgrid_double.emails)
    make_dispatcher(factory, settings).drain()

    with factory() as s:
        by_status = dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples().all())
    per_person = collections.Counter(e.to_email for e in sendgrid_double.emails)
    duplicates = sum(n - 1 for n in per_person.values() if n > 1)
    lost = PEOPLE - len(per_person)
    print(f"\nkill-and-rerun: received before rerun {received_before_rerun}, after {len(sendgrid_double.emails)}; "
          f"statuses {by_status}; duplicates {duplicates}; lost {lost}")
    assert duplicates == 0  # tips: at most once
    assert by_status.get("sent", 0) + by_status.get("unconfirmed", 0) == PEOPLE
    assert by_status.get("unconfirmed", 0) <= BATCH  # only the batch in flight is in doubt
    assert lost <= by_status.get("unconfirmed", 0)  # nothing lost outside the in-flight batch
