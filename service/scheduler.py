"""The running service's background work: one scheduler for the whole deployment, a dispatcher in every process.

APScheduler cannot share a job store between processes, so exactly one
process schedules. On PostgreSQL the scheduler runs in whichever `nudge serve`
holds a session-level advisory lock on a dedicated connection; the others
serve the web and dispatch the outbox, and try for the lock every few
seconds, so when the leader dies (its connection closes and the lock with it)
another takes over. On SQLite there is one process, which always leads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from jobs import canvas_read_sync, escalations, retention, supervisor_summary, weekly_digest
from service import usecases
from service.config import Settings
from service.dispatch import Dispatcher, DispatchStats
from service.models import utcnow

log = logging.getLogger(__name__)

LOCK_KEY = 0x6E75646765  # "nudge": the advisory lock that elects the scheduling process


@dataclass(frozen=True)
class Job:
    id: str
    run: Callable[[], object]
    trigger: object


def job_list(factory: sessionmaker[Session], settings: Settings) -> list[Job]:
    """Every scheduled job, with a fixed id (so a restart replaces rather than duplicates)."""
    zone = settings.timezone
    jobs = [
        Job("compose_digests", lambda: weekly_digest.run(factory, settings), IntervalTrigger(hours=1)),
        Job("escalations", lambda: escalations.run(factory, settings), CronTrigger(hour=6, minute=15, timezone=zone)),
        Job("supervisor_summaries", lambda: supervisor_summary.run(factory, settings), IntervalTrigger(hours=1)),
        Job("retention_prune", lambda: retention.run(factory, settings), CronTrigger(hour=3, minute=30, timezone=zone)),
    ]
    if settings.canvas_read_sync and settings.canvas_enabled:
        jobs.append(Job("canvas_read_sync", lambda: canvas_read_sync.run(factory, settings), IntervalTrigger(hours=6)))
    return jobs


class LeaderLock:
    """Holds the scheduler role: a session-level advisory lock on PostgreSQL; always held on SQLite."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.connection: Connection | None = None

    @property
    def held(self) -> bool:
        return self.engine.dialect.name != "postgresql" or self.connection is not None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        connection = self.engine.connect()
        try:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}).scalar()
            connection.commit()
        except Exception:
            connection.close()
            raise
        if got:
            self.connection = connection
        else:
            connection.close()
        return bool(got)

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                self.connection.commit()
            finally:
                self.connection.close()
                self.connection = None


class Background:
    """What `nudge serve` runs beside the web app: the dispatcher loop, and the scheduler when leading."""

    def __init__(self, engine: Engine, factory: sessionmaker[Session], settings: Settings, *,
                 on_dispatch: Callable[[DispatchStats], None] | None = None):
        self.engine, self.factory, self.settings = engine, factory, settings
        self.lock = LeaderLock(engine)
        self.scheduler: BackgroundScheduler | None = None
        self.stopping = threading.Event()
        self.dispatcher: Dispatcher | None = None
        self.on_dispatch = on_dispatch
        self.threads: list[threading.Thread] = []
        self.last_dispatch: datetime | None = None

    @property
    def leader(self) -> bool:
        return self.scheduler is not None

    def start(self) -> None:
        usecases.resume_email(self.factory)  # a restart is how a fixed key arrives
        self.dispatcher = usecases.dispatcher(self.factory, self.settings)
        for name, target in (("dispatcher", self._dispatch_loop), ("leader-election", self._election_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _election_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                if not self.leader and self.lock.try_acquire():
                    self._start_scheduler()
            except Exception:  # noqa: BLE001 - the database may be briefly away; try again
                log.exception("leader election failed; retrying")
            self.stopping.wait(self.settings.leader_retry_seconds)

    def _start_scheduler(self) -> None:
        scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
        for job in job_list(self.factory, self.settings):
            scheduler.add_job(job.run, job.trigger, id=job.id, name=job.id, replace_existing=True,
                              next_run_time=utcnow() if isinstance(job.trigger, IntervalTrigger) else None)
        scheduler.start()
        self.scheduler = scheduler
        log.info("this process now runs the scheduler (%d jobs)", len(scheduler.get_jobs()))

    def _dispatch_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                stats = self.dispatcher.drain()
                self.last_dispatch = utcnow()
                if self.on_dispatch is not None:
                    self.on_dispatch(stats)
            except Exception:  # noqa: BLE001 - keep dispatching; rows stay leased and are re-claimed
                log.exception("dispatch pass failed")
            self.stopping.wait(self.settings.dispatch_interval_seconds)

    def stop(self) -> None:
        """Graceful: stop claiming, let the batch in hand finish (leased rows are released), stop the scheduler."""
        self.stopping.set()
        if self.dispatcher is not None:
            self.dispatcher.stopping.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        for thread in self.threads:
            thread.join(60)
        if self.dispatcher is not None:
            self.dispatcher.close()
        self.lock.release()
