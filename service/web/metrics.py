"""Prometheus metrics: counters of this process's requests, and gauges read from the database at scrape time."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.models import Delivery, Escalation, utcnow


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.signals = Counter("nudge_tracking_signals_total", "Opens, clicks, acks and answers received",
                               ["kind", "machine"], registry=self.registry)
        self.webhook_events = Counter("nudge_webhook_events_total", "SendGrid webhook events stored",
                                      ["type", "machine"], registry=self.registry)
        self.webhook_batches = Counter("nudge_webhook_batches_total", "SendGrid webhook batches by outcome",
                                       ["outcome"], registry=self.registry)
        self.invalid_tokens = Counter("nudge_invalid_tokens_total", "Requests with a forged or damaged token",
                                      ["endpoint"], registry=self.registry)
        self.dispatched = Counter("nudge_dispatched_total", "Outbox rows this process sent, retried or failed",
                                  ["outcome"], registry=self.registry)

    def watch_database(self, factory: sessionmaker[Session], leader: Callable[[], bool | None]) -> None:
        self.registry.register(DatabaseCollector(factory, leader))

    def watch_opens(self, queued: Callable[[], int], written: Callable[[], int]) -> None:
        self.registry.register(OpenQueueCollector(queued, written))


class OpenQueueCollector:
    """This process's pixel write queue: opens answered but not yet written, and written so far.
    Labelled by process: with several web workers each scrape answers for one of them."""

    def __init__(self, queued: Callable[[], int], written: Callable[[], int]):
        self.queued, self.written = queued, written

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        process = str(os.getpid())
        queue = GaugeMetricFamily("nudge_open_queue", "Opens answered, not yet written", labels=["process"])
        queue.add_metric([process], self.queued())
        written = GaugeMetricFamily("nudge_opens_written", "Opens this process has written", labels=["process"])
        written.add_metric([process], self.written())
        yield from (queue, written)


class DatabaseCollector:
    """Outbox state by status, kind and channel; retried rows; outbox lag; open escalations; leadership."""

    def __init__(self, factory: sessionmaker[Session], leader: Callable[[], bool | None]):
        self.factory = factory
        self.leader = leader

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = GaugeMetricFamily("nudge_outbox_rows", "Outbox rows by status, kind and channel (composed = all)",
                                 labels=["status", "kind", "channel"])
        retried = GaugeMetricFamily("nudge_outbox_retried_rows", "Rows that needed more than one attempt",
                                    labels=["kind", "channel"])
        lag = GaugeMetricFamily("nudge_outbox_lag_seconds", "Age of the oldest due, unsent row")
        escalations = GaugeMetricFamily("nudge_escalations_open", "Open escalations by level", labels=["level"])
        with self.factory() as session:
            for status, kind, channel, count in session.execute(
                select(Delivery.status, Delivery.kind, Delivery.channel, func.count())
                .group_by(Delivery.status, Delivery.kind, Delivery.channel)
            ):
                rows.add_metric([status, kind, channel], count)
            for kind, channel, count in session.execute(
                select(Delivery.kind, Delivery.channel, func.count()).where(Delivery.attempts > 1)
                .group_by(Delivery.kind, Delivery.channel)
            ):
                retried.add_metric([kind, channel], count)
            now = utcnow()
            oldest = session.scalar(select(func.min(Delivery.next_attempt_at))
                                    .where(Delivery.status == "pending", Delivery.next_attempt_at <= now))
            lag.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
            for level, count in session.execute(
                select(Escalation.level, func.count()).where(Escalation.resolved_at.is_(None))
                .group_by(Escalation.level)
            ):
                escalations.add_metric([str(level)], count)
        yield from (rows, retried, lag, escalations)
        role = self.leader()
        if role is not None:
            gauge = GaugeMetricFamily("nudge_scheduler_leader", "1 if this process runs the scheduler")
            gauge.add_metric([], 1.0 if role else 0.0)
            yield gauge
