"""Scheduler wiring, graceful stop, and the retention prune."""

import time
from datetime import UTC, datetime

from pydantic import SecretStr
from sqlalchemy import func, select

from service import usecases
from service.models import Delivery, EngagementArchive, EngagementEvent, Person
from service.scheduler import Background, job_list
from tests.conftest import load_policy
from tests.readers import PROXY, Doors


def test_jobs_have_fixed_ids(factory, settings) -> None:
    ids = [job.id for job in job_list(factory, settings)]
    assert ids == ["compose_digests", "escalations", "supervisor_summaries", "retention_prune"]
    canvas = settings.model_copy(update={"canvas_read_sync": True, "canvas_api_url": "http://c",
                                         "canvas_api_key": SecretStr("k"), "canvas_course_ids": [1]})
    assert "canvas_read_sync" in [job.id for job in job_list(factory, canvas)]


def test_on_sqlite_the_one_process_leads_and_stops_cleanly(clean_db, factory, settings) -> None:
    if clean_db.dialect.name != "sqlite":
        return  # the PostgreSQL election is tested with two processes in test_service.py
    background = Background(clean_db, factory, settings.model_copy(update={"leader_retry_seconds": 0.05,
                                                                           "dispatch_interval_seconds": 0.05}))
    background.start()
    deadline = time.monotonic() + 10
    while not background.leader and time.monotonic() < deadline:
        time.sleep(0.02)
    assert background.leader
    jobs = {job.id: job for job in background.scheduler.get_jobs()}
    assert set(jobs) == {"compose_digests", "escalations", "supervisor_summaries", "retention_prune"}
    background.stop()
    assert background.scheduler is None and all(not t.is_alive() for t in background.threads)


def test_retention_prune_sums_old_events_by_month_and_a_rebuild_still_finds_old_engagement(
        factory, settings, tmp_path) -> None:
    """Signals through the real doors in March and April 2025; the prune folds them into monthly sums;
    the person's last engagement survives it (kept in the archive) and a rebuild changes nothing."""
    roster = tmp_path / "roster.csv"
    roster.write_text("email,name,role,department,supervisor_email,timezone,canvas_user_id\np@x.org,P,staff,,,,\n")
    load_policy(factory)
    usecases.import_people(factory, roster, now=datetime(2024, 1, 1, tzinfo=UTC))
    doors = Doors(settings, factory)
    digests = []
    for sent in (datetime(2025, 3, 10, 13, tzinfo=UTC), datetime(2025, 4, 14, 13, tzinfo=UTC),
                 datetime(2026, 11, 2, 14, tzinfo=UTC)):
        usecases.send_week(factory, settings, sent, week=f"{sent.isocalendar()[0]}-W{sent.isocalendar()[1]:02d}")
        usecases.dispatcher(factory, settings, clock=lambda moment=sent: moment).drain()
        with factory() as s:
            digests.append(s.scalar(select(Delivery.id).where(Delivery.kind == "digest").order_by(Delivery.id.desc())))
    march, april, november = digests
    doors.open("digest", march, datetime(2025, 3, 10, 15, tzinfo=UTC))
    doors.open("digest", march, datetime(2025, 3, 11, 15, tzinfo=UTC))
    doors.open("digest", march, datetime(2025, 3, 12, 15, tzinfo=UTC), PROXY)
    clicked = datetime(2025, 4, 20, 15, tzinfo=UTC)
    doors.click("digest", april, clicked)
    doors.open("digest", november, datetime(2026, 11, 3, 15, tzinfo=UTC))
    now = datetime(2026, 11, 26, tzinfo=UTC)
    usecases.settle_signals(factory, settings, now)
    assert usecases.prune_engagement(factory, settings, now) == 4
    with factory() as s:
        archive = sorted((a.month, a.kind, a.is_machine, a.count, a.last_at) for a in s.scalars(select(EngagementArchive)))
        assert s.scalar(select(func.count()).select_from(EngagementEvent)) == 1  # november's open is kept
    assert [row[:4] for row in archive] == [("2025-03", "open", False, 2), ("2025-03", "open", True, 1),
                                            ("2025-04", "click", False, 1)]
    assert archive[-1][4] == clicked
    rebuilt = usecases.rebuild_engagement(factory, settings, now)
    assert rebuilt.changed == 0
    with factory() as s:
        person = s.scalar(select(Person).where(Person.email == "p@x.org"))
        assert (person.last_engaged_at, person.silent_digests) == (clicked, 1)  # november's digest is silent
    doors.open("digest", march, datetime(2025, 3, 13, 15, tzinfo=UTC))  # a late open of an old month
    usecases.prune_engagement(factory, settings, now)  # a second prune adds to the month's sum
    with factory() as s:
        counts = {(a.month, a.kind, a.is_machine): a.count for a in s.scalars(select(EngagementArchive))}
    assert counts[("2025-03", "open", False)] == 3
