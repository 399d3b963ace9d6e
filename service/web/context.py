"""What every web route needs, built once by :func:`service.web.app.create_app` and reached
through the request (``Depends(current)``), so each router is a module-level object."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import logging
import threading
from collections import deque

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import First, Second, shorten_sqlite_wait, side_by_side, transaction
from service.engagement import Rules, Signal, Signer, hash_ip, webhook
from service.models import MAX_ROW_ID
from service.rendering import template_env
from service.scheduler import Background
from service.web.metrics import Metrics
from service.web.opens import NO_STORE

log = logging.getLogger(__name__)


WAIT_FOR_LOCK_MS = 2000  # a reader's request waits at most this long for a locked SQLite database


class DeferredWrites:
    """Writes a reader must not wait for (a click's record): tried at once, and when the database is
    locked or away, kept and retried in the background until it takes them."""

    def __init__(self, factory: sessionmaker[Session], interval: float = 1.0):
        self.factory, self.interval = factory, interval
        self.queue: deque[Callable[[Session], object]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, write: Callable[[Session], object]) -> None:
        self.queue.append(write)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="deferred-writes", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> int:
        """Write what is queued, in order, until the database refuses; returns how many were written."""
        done = 0
        while self.queue:
            write = self.queue[0]
            try:
                with transaction(self.factory) as session:
                    write(session)
            except OperationalError:
                log.warning("database busy or away: %d write(s) wait", len(self.queue))
                return done
            self.queue.popleft()
            done += 1
        return done

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()


@dataclass
class Web:
    settings: Settings
    factory: sessionmaker[Session]
    keys: list[str]  # signing keys; the first also keys the IP hash
    signer: Signer
    rules: Rules
    metrics: Metrics
    verifier: webhook.Verifier
    clock: Callable[[], datetime]
    background: Background | None = None
    deferred: DeferredWrites | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @contextmanager
    def unit_of_work(self, *, wait_ms: int = WAIT_FOR_LOCK_MS) -> Iterator[Session]:
        """A request's transaction; on SQLite it waits at most ``wait_ms`` for a lock (then
        OperationalError), so a reader is never kept for the engine's half minute."""
        with transaction(self.factory) as session:
            shorten_sqlite_wait(session, wait_ms)
            yield session

    def side_by_side(self, first: Callable[[Session], First], second: Callable[[Session], Second]
                     ) -> tuple[First, Second]:
        """Two independent reads of one page (:func:`service.db.side_by_side`)."""
        with self.unit_of_work() as session:
            return side_by_side(session, first, second)

    def signal_of(self, request: Request) -> Signal:
        ip = request.client.host if request.client else None
        if self.settings.trust_proxy and request.headers.get("x-forwarded-for"):
            ip = request.headers["x-forwarded-for"].split(",")[0].strip()
        return Signal(request.method, request.headers.get("user-agent"), ip, hash_ip(ip, self.keys[0]), self.clock())


def is_row_id(value: int) -> bool:
    """Whether a number from a URL can be a row id at all (larger ones overflow PostgreSQL's integer)."""
    return 0 < value <= MAX_ROW_ID


def current(request: Request) -> Web:
    return request.app.state.web


@dataclass(frozen=True)
class Paging:
    """One page of a long list (a district's notice reaches 100,000 people): ``?page=N``."""

    number: int
    total: int
    size: int = 200

    @classmethod
    def of(cls, requested: str | None, total: int, size: int = 200) -> Paging:
        """The page asked for, kept within the list (anything but a page number is the first page)."""
        last = max(1, -(-total // size))
        number = int(requested) if requested and requested.isdigit() and len(requested) < 8 else 1
        return cls(min(max(number, 1), last), total, size)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def shown(self) -> str:
        """ "201–400 of 100,000" """
        if not self.total:
            return "0 of 0"
        return f"{self.offset + 1:,}–{min(self.offset + self.size, self.total):,} of {self.total:,}"


def page(name: str, status: int = 200, *, headers: dict[str, str] = NO_STORE, **context: object) -> HTMLResponse:
    html = template_env().get_template(f"web/{name}.html.j2").render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)


def private_page(name: str, status: int = 200, **context: object) -> HTMLResponse:
    """A dashboard or team page: never cached (someone's signed-in view)."""
    return page(name, status, headers={"Cache-Control": "no-store"}, **context)
