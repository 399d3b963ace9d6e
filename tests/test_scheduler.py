"""Scheduler wiring, graceful stop, and the retention prune."""

import time
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import select

from service.models import EngagementArchive, EngagementEvent, Person
from service.scheduler import Background, job_list
from service.engagement import prune


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


def test_retention_prune_sums_old_events_by_month_and_deletes_them(session) -> None:
    person = Person(email="p@x.org", name="P", role="staff", joined_at=datetime(2024, 1, 1, tzinfo=UTC))
    session.add(person)
    session.flush()
    old = datetime(2025, 3, 10, tzinfo=UTC)
    for offset, kind, machine in ((0, "open", False), (1, "open", False), (2, "open", True), (40, "click", False)):
        session.add(EngagementEvent(person_id=person.id, kind=kind, source="t", is_machine=machine,
                                    at=old + timedelta(days=offset)))
    recent = EngagementEvent(person_id=person.id, kind="open", source="t", is_machine=False,
                             at=datetime(2026, 11, 1, tzinfo=UTC))
    session.add(recent)
    session.flush()
    assert prune(session, datetime(2026, 11, 26, tzinfo=UTC), 400) == 4
    archive = sorted((a.month, a.kind, a.is_machine, a.count) for a in session.scalars(select(EngagementArchive)))
    assert archive == [("2025-03", "open", False, 2), ("2025-03", "open", True, 1), ("2025-04", "click", False, 1)]
    assert [e.id for e in session.scalars(select(EngagementEvent))] == [recent.id]
    session.add(EngagementEvent(person_id=person.id, kind="open", source="t", is_machine=False, at=old))
    session.flush()
    prune(session, datetime(2026, 11, 26, tzinfo=UTC), 400)  # a second prune adds to the month's sum
    counts = {(a.month, a.kind, a.is_machine): a.count for a in session.scalars(select(EngagementArchive))}
    assert counts[("2025-03", "open", False)] == 3
