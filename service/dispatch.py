"""The dispatcher: drains due outbox rows through a channel. Safe to run several at once."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service import canvas, outbox
from service.channels import Channel, Message, Result, email_channel
from service.config import Settings
from service.db import in_ids, transaction
from service.models import Delivery, DeliveryItem, Person, Tip, utcnow
from service.rendering import DigestRenderer, LetterRenderer
from service.engagement import make_links, note_digests_sent

log = logging.getLogger(__name__)

# how often to look for rows whose lease ran out (a dead dispatcher's): often enough
# next to the lease itself, rarely enough that a busy send does not pay for it per batch
RECOVERY_INTERVAL_SECONDS = 30.0


@dataclass(frozen=True)
class Recipient:
    """Who a digest goes to: all the renderer needs of a person."""

    email: str
    name: str


class TipCache:
    """Tips (with their policy) kept between batches; one small query per batch spots edited ones."""

    def __init__(self) -> None:
        self._tips: dict[int, Tip] = {}

    def refresh(self, session: Session, ids: set[int]) -> None:
        stamps = dict(session.execute(select(Tip.id, Tip.updated_at).where(Tip.id.in_(ids))).tuples().all())
        missing = [i for i in ids if i not in self._tips or self._tips[i].updated_at != stamps.get(i)]
        if missing:
            for tip in session.scalars(select(Tip).where(Tip.id.in_(missing)).options(selectinload(Tip.policy))):
                session.expunge(tip)
                self._tips[tip.id] = tip

    def get(self, ids: list[int]) -> list[Tip]:
        return [self._tips[i] for i in ids]


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
        channels: dict[str, Channel] | None = None,
        *,
        worker: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        """``channels`` maps a delivery's channel ("email", "canvas") to its sender; by default
        email uses NUDGE_EMAIL_BACKEND and Canvas is on when configured."""
        self.factory = factory
        self.settings = settings
        if channels is None:
            channels = {"email": email_channel(settings)}
            if settings.canvas_enabled:
                from service.channels.canvas import CanvasChannel

                channels[canvas.CHANNEL] = CanvasChannel(settings)
        self.channels = channels
        self.worker = worker or default_worker_id()
        self.clock = clock
        self.stopping = threading.Event()
        self._recover_at: datetime | None = None  # next look for rows a dead dispatcher left behind
        with transaction(factory) as session:
            links = make_links(session, settings)
        self.digests = DigestRenderer(settings.base_url, settings.organisation, links)
        self.tips = TipCache()
        self.letters = LetterRenderer(settings.base_url, settings.organisation, links)
        self.canvas_posts = canvas.CanvasRenderer(settings.base_url, links)

    def _renderer(self, delivery: Delivery):
        if delivery.channel == canvas.CHANNEL:
            return self.canvas_posts
        if delivery.kind == "digest":
            return self.digests
        return self.letters if delivery.kind in self.letters.kinds else None

    def active_channels(self, session: Session) -> set[str]:
        names = set(self.channels)
        return names - outbox.paused_channels(session)

    def _prepare(self) -> Batch:
        """Claim due rows (leased) and render them."""
        batch = Batch(DispatchStats())
        s = self.settings
        now = self.clock()
        recover = self._recover_at is None or now >= self._recover_at
        with transaction(self.factory) as session:
            if recover:
                batch.stats.unconfirmed = outbox.give_up_unconfirmed(session, now)
            ids = outbox.claim(session, self.worker, now, s.dispatch_batch_size, s.dispatch_lease_seconds,
                               self.active_channels(session), reclaim=recover)
        if recover:
            self._recover_at = now + timedelta(seconds=min(RECOVERY_INTERVAL_SECONDS, s.dispatch_lease_seconds / 5))
        batch.stats.claimed = len(ids)
        if not ids:
            return batch
        if self.stopping.is_set():
            with transaction(self.factory) as session:
                outbox.release(session, ids, self.worker)
            return batch
        with transaction(self.factory) as session:
            batch.messages, broken, batch.attempts, batch.channels_of = self._build(session, ids)
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
        for name, channel in self.channels.items():
            mine = [m for m in batch.messages if batch.channels_of[m.delivery_id] == name and m.delivery_id in sending]
            if mine:
                outcomes.extend(zip([m.delivery_id for m in mine], channel.send(mine), strict=True))
        return outcomes

    def _deliver(self, batch: Batch) -> None:
        self._finish(batch, self._send(batch))

    def _finish(self, batch: Batch, outcomes: list[tuple[int, Result]]) -> None:
        with transaction(self.factory) as session:
            now = self.clock()
            counts, sent = outbox.record_results(session, outcomes, {i: batch.attempts.get(i, 0) + 1
                                                                     for i, _ in outcomes},
                                                 self.worker, now, self.settings.dispatch_max_attempts)
            note_digests_sent(session, [person for person, kind in sent if kind == "digest" and person], now)
            for delivery_id, result in outcomes:
                if result.status == "paused":
                    outbox.pause(session, batch.channels_of[delivery_id], result.error or "configuration error", now)
        batch.stats.add(counts)
        log.info("dispatched batch: %s", counts)

    def _build(
        self, session: Session, ids: list[int]
    ) -> tuple[list[Message], dict[int, Result], dict[int, int], dict[int, str]]:
        """Render the claimed rows. Digests (the bulk) take a lean path: plain rows, tips from a cache."""
        heads = session.execute(
            select(Delivery.id, Delivery.kind, Delivery.channel, Delivery.attempts, Delivery.subject,
                   Delivery.payload, Person.email, Person.name)
            .outerjoin(Person, Person.id == Delivery.person_id)
            .where(in_ids(session, Delivery.id, ids)).order_by(Delivery.id)
        ).all()
        attempts = {h.id: h.attempts for h in heads}
        channels_of = {h.id: h.channel for h in heads}
        digest_ids = [h.id for h in heads if h.kind == "digest" and h.channel == "email"]
        tips_of: dict[int, list[int]] = {}
        for delivery_id, tip_id in session.execute(
            select(DeliveryItem.delivery_id, DeliveryItem.tip_id)
            .where(in_ids(session, DeliveryItem.delivery_id, digest_ids), DeliveryItem.tip_id.is_not(None))
            .order_by(DeliveryItem.delivery_id, DeliveryItem.position)
        ):
            tips_of.setdefault(delivery_id, []).append(tip_id)
        messages: list[Message] = []
        broken: dict[int, Result] = {}
        others = []
        if tips_of:
            self.tips.refresh(session, {t for tips in tips_of.values() for t in tips})
        for head in heads:
            if head.id not in tips_of:
                others.append(head.id)
                continue
            tips = self.tips.get(tips_of[head.id])
            messages.append(self.digests.message(head.id, Recipient(head.email, head.name), tips, head.subject,
                                                 head.payload["week"]))
        deliveries = session.scalars(
            select(Delivery).where(Delivery.id.in_(others))
            .options(selectinload(Delivery.person),
                     selectinload(Delivery.items).selectinload(DeliveryItem.tip).selectinload(Tip.policy))
            .order_by(Delivery.id)
        ).all() if others else []
        for delivery in deliveries:
            renderer = self._renderer(delivery)
            if renderer is None:
                broken[delivery.id] = Result.failed(f"no renderer for {delivery.kind!r} {delivery.channel} deliveries")
                continue
            try:
                messages.append(renderer.render(delivery))
            except (ValueError, KeyError) as exc:
                broken[delivery.id] = Result.failed(f"cannot render: {exc}")
        return messages, broken, attempts, channels_of

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
