"""The dispatcher: drains due outbox rows through their channels. Safe to run several at once.

It names no channel and no kind: it is given :class:`Route` values (a channel and
how to render each kind of row it carries) by the composition root,
:func:`service.usecases.dispatcher`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service import outbox
from service.channels import Channel, Message, Result
from service.config import Settings
from service.db import in_ids, transaction
from service.models import Delivery, DeliveryItem, Question, Tip, utcnow

log = logging.getLogger(__name__)

# how often to look for rows whose lease ran out (a dead dispatcher's): often enough
# next to the lease itself, rarely enough that a busy send does not pay for it per batch
RECOVERY_INTERVAL_SECONDS = 30.0


class BatchRenderer(Protocol):
    """Renders claimed rows of one channel and kind: a message each, or the reason it cannot be sent."""

    def render(self, session: Session, ids: list[int]) -> dict[int, Message | Result]: ...


class EachRow:
    """A :class:`BatchRenderer` over a one-row renderer: loads the rows with what they carry."""

    def __init__(self, render_one: Callable[[Delivery], Message]):
        self.render_one = render_one

    def render(self, session: Session, ids: list[int]) -> dict[int, Message | Result]:
        rendered: dict[int, Message | Result] = {}
        for delivery in session.scalars(
            select(Delivery).where(in_ids(session, Delivery.id, ids)).order_by(Delivery.id)
            .options(selectinload(Delivery.person),
                     selectinload(Delivery.items).selectinload(DeliveryItem.tip).selectinload(Tip.policy),
                     selectinload(Delivery.items).selectinload(DeliveryItem.question).selectinload(Question.policy),
                     selectinload(Delivery.items).selectinload(DeliveryItem.notice))
        ):
            try:
                rendered[delivery.id] = self.render_one(delivery)
            except Exception as exc:  # noqa: BLE001 - one row that cannot render fails alone
                log.warning("delivery %s cannot be rendered: %s", delivery.id, exc.__class__.__name__)
                rendered[delivery.id] = Result.failed(f"cannot render ({exc.__class__.__name__}): {exc}"[:500])
        return rendered


OnSent = Callable[[Session, list[tuple[int | None, str, str]], datetime], None]  # (person, kind, period) sent
BeforeClaim = Callable[[Session, datetime], object]


@dataclass(frozen=True)
class Route:
    """One channel (by the name outbox rows carry) and its renderers by kind ("*": any kind)."""

    name: str
    channel: Channel
    renderers: Mapping[str, BatchRenderer]

    def renderer(self, kind: str) -> BatchRenderer | None:
        return self.renderers.get(kind) or self.renderers.get("*")


@dataclass
class Batch:
    """One claimed batch on its way: rendered messages, rows that cannot render, bookkeeping."""

    stats: DispatchStats
    ready: bool = False
    messages: list[Message] = field(default_factory=list)
    broken: list[tuple[int, Result]] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)
    channels_of: dict[int, str] = field(default_factory=dict)


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unconfirmed: int = 0
    paused: int = 0

    def add(self, counts: dict[str, int]) -> None:
        for key, value in counts.items():
            setattr(self, key, getattr(self, key) + value)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Dispatcher:
    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        routes: Sequence[Route],
        *,
        worker: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_sent: OnSent | None = None,
        before_claim: BeforeClaim | None = None,
    ):
        """``on_sent`` hears, in the transaction that records them, which rows were sent;
        ``before_claim`` runs in the claiming transaction when recovery does (held rows are released)."""
        self.factory = factory
        self.on_sent = on_sent
        self.before_claim = before_claim
        self.settings = settings
        self.routes = {route.name: route for route in routes}
        self.channels = {route.name: route.channel for route in routes}
        self.worker = worker or default_worker_id()
        self.clock = clock
        self.stopping = threading.Event()
        self._recover_at: datetime | None = None  # next look for rows a dead dispatcher left behind

    def active_channels(self, session: Session) -> set[str]:
        return set(self.routes) - outbox.paused_channels(session)

    def _prepare(self) -> Batch:
        """Claim due rows (leased) and render them."""
        batch = Batch(DispatchStats())
        s = self.settings
        now = self.clock()
        recover = self._recover_at is None or now >= self._recover_at
        with transaction(self.factory) as session:
            if recover:
                batch.stats.unconfirmed = outbox.give_up_unconfirmed(session, now)
                batch.stats.failed += outbox.quarantine_dead_sends(session, now, s.dispatch_max_attempts)
                if self.before_claim is not None:
                    self.before_claim(session, now)
            claimed = outbox.claim(session, self.worker, now, s.dispatch_batch_size, s.dispatch_lease_seconds,
                                   self.active_channels(session), reclaim=recover)
        if recover:
            self._recover_at = now + timedelta(seconds=min(RECOVERY_INTERVAL_SECONDS, s.dispatch_lease_seconds / 5))
        batch.stats.claimed = len(claimed)
        if not claimed:
            return batch
        if self.stopping.is_set():
            with transaction(self.factory) as session:
                outbox.release(session, [row.id for row in claimed], self.worker)
            return batch
        batch.attempts = {row.id: row.attempts for row in claimed}
        batch.channels_of = {row.id: row.channel for row in claimed}
        with transaction(self.factory) as session:
            batch.messages, broken = self._build(session, claimed)
        batch.broken = list(broken.items())
        batch.ready = True
        return batch

    def _send(self, batch: Batch) -> list[tuple[int, Result]]:
        """Mark the batch ``sending`` (committed before any provider call: at-most-once kinds rely on it), send."""
        with transaction(self.factory) as session:
            sending = set(outbox.mark_sending(session, [m.delivery_id for m in batch.messages]
                                              + [i for i, _ in batch.broken], self.worker, self.clock(),
                                              self.settings.dispatch_lease_seconds))
        outcomes = [(i, r) for i, r in batch.broken if i in sending]
        now = self.clock()
        for name, channel in self.channels.items():
            mine = [replace(m, date=now) for m in batch.messages
                    if batch.channels_of[m.delivery_id] == name and m.delivery_id in sending]
            if mine:
                outcomes.extend(zip([m.delivery_id for m in mine], self._send_through(channel, mine), strict=True))
        return outcomes

    @staticmethod
    def _send_through(channel: Channel, messages: list[Message]) -> list[Result]:
        """A channel answers per message; should one raise anyway, the batch is settled, not lost:
        at-most-once kinds fail (some may have gone out), the others retry within their attempts."""
        try:
            return channel.send(messages)
        except Exception as exc:  # noqa: BLE001 - a channel bug must not leave the batch sending
            log.exception("channel %s raised for deliveries %s..%s", getattr(channel, "name", "?"),
                          messages[0].delivery_id, messages[-1].delivery_id)
            error = f"the channel failed unexpectedly ({exc.__class__.__name__})"
            return [Result.failed(error) if m.kind in outbox.AT_MOST_ONCE else Result.retry(error) for m in messages]

    def _deliver(self, batch: Batch) -> None:
        self._finish(batch, self._send(batch))

    def _finish(self, batch: Batch, outcomes: list[tuple[int, Result]]) -> None:
        with transaction(self.factory) as session:
            now = self.clock()
            counts, sent = outbox.record_results(session, outcomes, {i: batch.attempts.get(i, 0) + 1
                                                                     for i, _ in outcomes},
                                                 self.worker, now, self.settings.dispatch_max_attempts)
            if self.on_sent is not None and sent:
                self.on_sent(session, sent, now)
            for delivery_id, result in outcomes:
                if result.status == "paused":
                    outbox.pause(session, batch.channels_of[delivery_id], result.error or "configuration error", now)
        batch.stats.add(counts)
        log.info("dispatched batch: %s", counts)

    def _build(self, session: Session, claimed: list[outbox.Claimed]) -> tuple[list[Message], dict[int, Result]]:
        """Render the claimed rows, each group of one channel and kind by its route's renderer."""
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for row in claimed:
            groups[(row.channel, row.kind)].append(row.id)
        rendered: dict[int, Message | Result] = {}
        for (channel, kind), group in groups.items():
            renderer = self.routes[channel].renderer(kind)
            if renderer is None:
                rendered |= {i: Result.failed(f"no renderer for {kind!r} {channel} deliveries") for i in group}
            else:
                rendered |= renderer.render(session, group)
        messages = [rendered[i] for i in sorted(rendered) if isinstance(rendered[i], Message)]
        broken = {i: r for i, r in rendered.items() if isinstance(r, Result)}
        return messages, broken

    def drain(self, on_batch: Callable[[DispatchStats], None] | None = None) -> DispatchStats:
        """Send until nothing is due (rows waiting for a retry later are left for later).

        Two batches overlap: while one is sent and its results recorded (one sender thread, so
        at most one batch is ever `sending`), the next is claimed and rendered.
        """
        total = DispatchStats()
        in_flight: tuple[Batch, Future] | None = None

        def settle() -> None:
            batch, future = in_flight
            future.result()
            total.add(dict(batch.stats.__dict__))
            if on_batch:
                on_batch(batch.stats)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="send") as sender:
            while not self.stopping.is_set():
                batch = self._prepare()
                if in_flight is not None:
                    settle()
                    in_flight = None
                if not batch.ready:
                    total.unconfirmed += batch.stats.unconfirmed
                    total.failed += batch.stats.failed  # quarantined
                    if batch.stats.claimed == 0 and batch.stats.unconfirmed == 0:
                        break
                    continue
                in_flight = (batch, sender.submit(self._deliver, batch))
            if in_flight is not None:
                settle()
        return total

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
