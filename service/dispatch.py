"""The dispatcher: drains due outbox rows through a channel. Safe to run several at once."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service import canvas, outbox
from service.channels import Channel, Message, Result, email_channel
from service.config import Settings
from service.db import transaction
from service.models import Delivery, DeliveryItem, Tip, utcnow
from service.rendering import DigestRenderer, LetterRenderer
from service.tracking import make_links

log = logging.getLogger(__name__)


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    unconfirmed: int = 0
    paused: int = 0
    batches: int = 0

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
        with transaction(factory) as session:
            links = make_links(session, settings)
        self.digests = DigestRenderer(settings.base_url, settings.organisation, links)
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
        if canvas.CHANNEL in names and canvas.paused_reason(session):
            names.discard(canvas.CHANNEL)
        return names

    def run_once(self) -> DispatchStats:
        """Claim one batch, send it, record the outcome."""
        stats = DispatchStats()
        s = self.settings
        with transaction(self.factory) as session:
            stats.unconfirmed = outbox.give_up_unconfirmed(session, self.clock())
            ids = outbox.claim(session, self.worker, self.clock(), s.dispatch_batch_size, s.dispatch_lease_seconds,
                               self.active_channels(session))
        stats.claimed = len(ids)
        if not ids:
            return stats
        if self.stopping.is_set():
            with transaction(self.factory) as session:
                outbox.release(session, ids, self.worker)
            return stats
        with transaction(self.factory) as session:
            messages, broken, attempts, channels_of = self._build(session, ids)
            sending = set(outbox.mark_sending(session, [m.delivery_id for m in messages] + list(broken),
                                              self.worker, self.clock(), s.dispatch_lease_seconds))
        outcomes: list[tuple[int, Result]] = [(i, r) for i, r in broken.items() if i in sending]
        for name, channel in self.channels.items():
            batch = [m for m in messages if m.delivery_id in sending and channels_of[m.delivery_id] == name]
            if batch:
                outcomes.extend(zip([m.delivery_id for m in batch], channel.send(batch), strict=True))
        with transaction(self.factory) as session:
            counts = outbox.record_results(session, outcomes, {i: attempts.get(i, 0) + 1 for i, _ in outcomes},
                                           self.worker, self.clock(), s.dispatch_max_attempts)
            for delivery_id, result in outcomes:
                if result.status == "paused" and channels_of.get(delivery_id) == canvas.CHANNEL:
                    canvas.pause(session, result.error or "configuration error", self.clock())
        stats.add(counts)
        stats.batches = 1
        log.info("dispatched batch: %s", counts)
        return stats

    def _build(
        self, session: Session, ids: list[int]
    ) -> tuple[list[Message], dict[int, Result], dict[int, int], dict[int, str]]:
        deliveries = session.scalars(
            select(Delivery)
            .where(Delivery.id.in_(ids))
            .options(
                selectinload(Delivery.person),
                selectinload(Delivery.items).selectinload(DeliveryItem.tip).selectinload(Tip.policy),
            )
            .order_by(Delivery.id)
        ).all()
        messages: list[Message] = []
        broken: dict[int, Result] = {}
        attempts = {d.id: d.attempts for d in deliveries}
        channels_of = {d.id: d.channel for d in deliveries}
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
        """Send until nothing is due (rows waiting for a retry later are left for later)."""
        total = DispatchStats()
        while not self.stopping.is_set():
            stats = self.run_once()
            if stats.claimed == 0 and stats.unconfirmed == 0:
                break
            total.add({k: v for k, v in stats.__dict__.items()})
            if on_batch:
                on_batch(stats)
        return total

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
