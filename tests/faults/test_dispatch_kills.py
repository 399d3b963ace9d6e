"""A dispatcher SIGKILLed at random points during a 5,000-person send, then a rerun.

Tips are at most once: no duplicates, and nothing lost outside the batch in flight.
Notices are at least once: nobody misses one; duplicates only from the batch in flight.
"""

import collections
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from service.weeks import SchoolCalendar
from service.digests import compose
from service.usecases import dispatcher as make_dispatcher
from service.doubles.sendgrid import Fault
from service.models import Delivery, DeliveryItem, Notice, Person, Policy, PolicyVersion, utcnow
from tests.conftest import REPO, add_people, store_policy

PEOPLE = 5000
BATCH = 250


def start_dispatcher(database_url: str, double, outbox_dir: str) -> subprocess.Popen:
    env = {**os.environ, "NUDGE_DATABASE_URL": database_url, "NUDGE_EMAIL_BACKEND": "sendgrid",
           "NUDGE_SENDGRID_HOST": double.url, "SENDGRID_API_KEY": double.api_key,
           "NUDGE_DISPATCH_BATCH_SIZE": str(BATCH), "NUDGE_DISPATCH_LEASE_SECONDS": "1",
           "NUDGE_SECRET_KEY": "fault-suite", "NUDGE_OUTBOX_DIR": outbox_dir}
    return subprocess.Popen([sys.executable, "-m", "service", "dispatch"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def queue_notices(factory, now) -> None:
    with factory() as s, s.begin():
        policy = s.scalar(select(Policy))
        version = PolicyVersion(policy_id=policy.id, label="2", sequence=2, text="x", content_hash="h", imported_at=now)
        s.add(version)
        s.flush()
        notice = Notice(policy_version_id=version.id, audience=["all"], summary="<p>x</p>", due_days=14,
                        due_on=(now + timedelta(days=14)).date(), created_at=now)
        s.add(notice)
        s.flush()
        ids = s.scalars(select(Person.id)).all()
        s.execute(Delivery.__table__.insert(), [
            {"person_id": pid, "kind": "notice", "period_key": f"notice:{notice.id}", "channel": "email",
             "status": "pending", "subject": "Update", "payload": {}, "next_attempt_at": now, "created_at": now,
             "attempts": 0} for pid in ids])
        rows = s.execute(select(Delivery.id).where(Delivery.kind == "notice")).scalars().all()
        s.execute(DeliveryItem.__table__.insert(), [{"delivery_id": d, "position": 0, "notice_id": notice.id}
                                                    for d in rows])


@pytest.mark.parametrize("kind,seed", [("digest", 1), ("digest", 2), ("digest", 3), ("notice", 4), ("notice", 5)])
def test_kill_at_a_random_point_then_rerun(kind, seed, factory, sendgrid_settings, sendgrid_double, database_url):
    now = utcnow() - timedelta(minutes=5)
    with factory() as s, s.begin():
        store_policy(s)
    add_people(factory, PEOPLE)
    if kind == "digest":
        with factory() as s, s.begin():
            compose(s, sendgrid_settings, now, SchoolCalendar(), week="2026-W50")
    else:
        queue_notices(factory, now)
    kill_after = random.Random(seed).randint(1, PEOPLE // BATCH - 2)  # requests seen before the kill
    sendgrid_double.inject(*[Fault(delay=0.15)] * (PEOPLE // BATCH + 5))
    proc = start_dispatcher(database_url, sendgrid_double, sendgrid_settings.outbox_dir)
    deadline = time.monotonic() + 120
    while sendgrid_double.attempts < kill_after and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    time.sleep(1.5)  # the dead dispatcher's lease (1 s) runs out; its request in flight has finished
    before = len(sendgrid_double.emails)
    settings = sendgrid_settings.model_copy(update={"dispatch_batch_size": BATCH, "dispatch_lease_seconds": 1,
                                                    "secret_key": None})
    make_dispatcher(factory, settings).drain()
    received = collections.Counter(e.to_email for e in sendgrid_double.emails)
    duplicates = sum(n - 1 for n in received.values())
    lost = PEOPLE - len(received)
    with factory() as s:
        statuses = dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples().all())
    print(f"\n{kind} seed {seed}: killed after {kill_after} request(s); received before rerun {before}, "
          f"total {len(sendgrid_double.emails)}; statuses {statuses}; lost: {lost}; duplicates: {duplicates}")
    if kind == "digest":  # at most once
        assert duplicates == 0
        assert lost <= statuses.get("unconfirmed", 0) <= BATCH
        assert statuses.get("sent", 0) + statuses.get("unconfirmed", 0) == PEOPLE
    else:  # at least once
        assert lost == 0
        assert duplicates <= BATCH
        assert statuses == {"sent": PEOPLE}
