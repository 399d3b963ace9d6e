"""The open pixel's fast path: answer the GIF at once, write opens to the database in batches.

A whole organisation opens Monday's email in the same minutes, so the pixel
never waits for the database: opens are queued and written every few
milliseconds in one statement. A crash can lose only the last interval's
opens, never a click or an acknowledgement (those are written before we answer).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db import bulk_insert, in_ids
from service.models import Delivery, EngagementEvent, utcnow
from service.engagement.rules import Rules, classify
from service.engagement import OPEN, Signer, hash_ip, weekly

log = logging.getLogger(__name__)
CACHE_LIMIT = 500_000
BATCH = 5000  # opens a transaction: a backlog after a burst is written in pieces, never in one

PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
         b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, private", "Pragma": "no-cache"}
_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", str(len(PIXEL)).encode())] + [
    (k.lower().encode(), v.encode()) for k, v in NO_STORE.items()
]


@dataclass(frozen=True)
class PendingOpen:
    delivery_id: int
    method: str
    user_agent: str | None
    ip: str | None
    ip_hash: str | None
    at: datetime


class OpenRecorder:
    """Queues opens and writes them in batches from a background thread."""

    def __init__(self, factory: sessionmaker[Session], rules: Rules, interval: float = 0.05, on_written=None):
        self.factory = factory
        self.rules = rules
        self.interval = interval
        self.on_written = on_written
        self.queue: deque[PendingOpen] = deque()
        self._sent: dict[int, tuple[int | None, datetime | None]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.written = 0
        self._writing = 0  # the batch being written now: taken from the queue, not yet stored

    @property
    def pending(self) -> int:
        """Opens answered and not yet stored: the queue and the batch being written."""
        return len(self.queue) + self._writing

    def add(self, pending: PendingOpen) -> None:
        self.queue.append(pending)
        if self._thread is None:
            self.start()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="open-recorder", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - keep recording; the batch stays queued for the next try
                log.exception("writing opens failed; will retry")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()

    def flush(self) -> int:
        """Write everything queued now, ``BATCH`` opens a transaction; returns how many were written."""
        written = 0
        with self._lock:
            while self.queue:
                batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
                self._writing = len(batch)
                try:
                    done = self._write(batch)
                except Exception:
                    self.queue.extendleft(reversed(batch))
                    raise
                finally:
                    self._writing = 0
                self.written += done
                written += done
        return written

    def _facts(self, session: Session, ids: set[int]) -> dict[int, tuple[int | None, datetime | None]]:
        """(person, sent_at) per delivery; a sent delivery's facts never change, so they are cached."""
        facts = {i: self._sent[i] for i in ids if i in self._sent}
        missing = ids - facts.keys()
        if missing:
            if len(self._sent) > CACHE_LIMIT:
                self._sent.clear()
            for delivery_id, person_id, sent_at in session.execute(
                select(Delivery.id, Delivery.person_id, Delivery.sent_at).where(in_ids(session, Delivery.id, missing))
            ):
                facts[delivery_id] = (person_id, sent_at)
                if sent_at is not None:
                    self._sent[delivery_id] = (person_id, sent_at)
        return facts

    def _write(self, batch: list[PendingOpen]) -> int:
        with self.factory() as session, session.begin():
            facts = self._facts(session, {p.delivery_id for p in batch})
            rows = []
            for p in batch:
                if p.delivery_id not in facts:
                    continue  # a validly signed token whose delivery no longer exists
                person_id, sent_at = facts[p.delivery_id]
                verdict = classify(self.rules, method=p.method, user_agent=p.user_agent, ip=p.ip, at=p.at,
                                   delivered_at=sent_at)
                rows.append({"delivery_id": p.delivery_id, "person_id": person_id, "kind": "open", "source": "pixel",
                             "is_machine": verdict.is_machine, "reason": verdict.reason, "target": None,
                             "provider_event_id": None, "user_agent": (p.user_agent or "")[:500] or None,
                             "ip_hash": p.ip_hash, "at": p.at})
            if rows:
                bulk_insert(session, EngagementEvent.__table__, COLUMNS, rows)  # an open is not engagement
                weekly.add_opens(session, [(row["person_id"], row["at"], row["is_machine"]) for row in rows],
                                 self.rules.timezone)
        if self.on_written is not None:
            self.on_written(rows)
        return len(rows)


COLUMNS = ("delivery_id", "person_id", "kind", "source", "is_machine", "reason", "target", "provider_event_id",
           "user_agent", "ip_hash", "at")


class PixelMiddleware:
    """Serves ``/o/{token}.gif`` before the framework's routing: the hottest path stays tiny."""

    def __init__(self, app, signer: Signer, recorder: OpenRecorder, ip_key: str, trust_proxy: bool, on_open=None,
                 clock=utcnow):
        self.app = app
        self.clock = clock
        self.signer = signer
        self.recorder = recorder
        self.ip_key = ip_key
        self.trust_proxy = trust_proxy
        self.on_open = on_open

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/o/") or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        token = path[3:-4] if path.endswith(".gif") else ""
        data = self.signer.verify(token) if token else None
        if data is not None and data.kind == OPEN:
            headers = dict(scope["headers"])
            agent = headers.get(b"user-agent")
            ip = scope["client"][0] if scope.get("client") else None
            forwarded = headers.get(b"x-forwarded-for")
            if self.trust_proxy and forwarded:
                ip = forwarded.decode("latin-1").split(",")[0].strip()
            self.recorder.add(PendingOpen(data.delivery_id, scope["method"],
                                          agent.decode("latin-1") if agent else None, ip,
                                          hash_ip(ip, self.ip_key), self.clock()))
        if self.on_open is not None:
            self.on_open(data is not None and data.kind == OPEN)
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else PIXEL})
