"""Claiming due rows with a lease, per-kind delivery semantics, retries.

Delivery semantics (per kind):
- at most once (digest, summary): a row is marked ``sending`` and committed
  before the provider is called. If the dispatcher dies during the send, the
  row is never resent (status ``unconfirmed``): a lost tip is harmless, a
  duplicate annoys.
- at least once (notice, reminder, nudge, escalation): a row whose lease
  expired while ``sending`` is claimed again and resent; duplicates can only
  come from the batch in flight when a dispatcher died.
A row whose lease expired before its send began (``leased``) is always
re-claimed. 429, 5xx and network errors retry with exponential backoff and
jitter (honouring Retry-After); other 4xx fail at once with the reason.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from service.channels import Result
from service.db import in_ids, is_postgres
from service.models import Delivery
from service.outbox.held import settle_carried

AT_MOST_ONCE = frozenset({"digest", "summary"})
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0
UNCONFIRMED_NOTE = "dispatcher stopped during the send; not resent (at most once)"
QUARANTINE_NOTE = "quarantined: its sending outlived the dispatcher on each of its {} attempts; not resent"


class Claimed(NamedTuple):
    """A leased row, with what routing and rendering it needs (returned by the lease itself)."""

    id: int
    kind: str
    channel: str
    attempts: int


def backoff_seconds(attempts: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter (half to full delay); never sooner than Retry-After."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    delay *= (rng or random).uniform(0.5, 1.0)
    return max(delay, retry_after or 0.0)


def give_up_unconfirmed(session: Session, now: datetime) -> int:
    """At-most-once rows whose dispatcher died mid-send are closed, never resent."""
    return _close_dead_sends(session, now, Delivery.kind.in_(AT_MOST_ONCE), "unconfirmed", UNCONFIRMED_NOTE)


def quarantine_dead_sends(session: Session, now: datetime, max_attempts: int) -> int:
    """At-least-once rows whose send died with its dispatcher are resent, but only while they have
    attempts left: a message that kills every dispatcher that sends it is not resent forever."""
    return _close_dead_sends(session, now, Delivery.kind.not_in(AT_MOST_ONCE) & (Delivery.attempts >= max_attempts),
                             "failed", QUARANTINE_NOTE.format(max_attempts))


def _close_dead_sends(session: Session, now: datetime, which: Any, status: str, note: str) -> int:
    """Rows still ``sending`` after their dispatcher's lease ran out, among ``which``, get ``status``."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.status == "sending", Delivery.lease_expires_at < now, which)
        .values(status=status, last_error=note, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def claim(
    session: Session, worker: str, now: datetime, limit: int, lease_seconds: int, channels: Collection[str],
    *, reclaim: bool = True,
) -> list[Claimed]:
    """Atomically lease up to ``limit`` due rows of ``channels`` for ``worker`` (SKIP LOCKED on PostgreSQL).

    With ``reclaim``, rows whose lease ran out come first (a dead dispatcher's); then pending
    rows in ``ix_deliveries_due`` order, so the database reads one batch, not every due row.
    Returned in id order.
    """
    if not channels:
        return []
    of_channels = Delivery.channel.in_(sorted(channels))
    expired = or_(
        and_(Delivery.status == "leased", Delivery.lease_expires_at < now),
        and_(Delivery.status == "sending", Delivery.lease_expires_at < now, Delivery.kind.not_in(AT_MOST_ONCE)),
    )
    pending = and_(Delivery.status == "pending", Delivery.next_attempt_at <= now)
    lease = {"status": "leased", "lease_owner": worker, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    claimed: list[Claimed] = []
    if reclaim:
        claimed = _lease(session, of_channels & expired, (Delivery.lease_expires_at, Delivery.id), limit, lease)
    if len(claimed) < limit:
        claimed += _lease(session, of_channels & pending, (Delivery.next_attempt_at, Delivery.id),
                          limit - len(claimed), lease)
    return sorted(claimed)


def _lease(session: Session, due: Any, order: tuple[Any, ...], limit: int, lease: dict[str, Any]
           ) -> list[Claimed]:
    candidates = select(Delivery.id).where(due).order_by(*order).limit(limit)
    deliveries = Delivery.__table__
    if is_postgres(session):
        # one statement: the CTE locks the rows once (MATERIALIZED: a subquery the planner may
        # re-run with SKIP LOCKED can lease more rows than asked for), then exactly those are updated
        picked = candidates.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        statement = update(deliveries).where(deliveries.c.id == picked.c.id)
    else:  # SQLite has one writer at a time: a single UPDATE is atomic
        statement = update(deliveries).where(deliveries.c.id.in_(candidates.scalar_subquery()), due)
    c = deliveries.c
    return [Claimed(*row) for row in session.execute(
        statement.values(**lease).returning(c.id, c.kind, c.channel, c.attempts))]


def mark_sending(session: Session, ids: Sequence[int], worker: str, now: datetime, lease_seconds: int) -> list[int]:
    """Record that the send is starting (committed by the caller before calling the provider)."""
    if not ids:
        return []
    statement = (
        update(Delivery)
        .where(in_ids(session, Delivery.id, ids), Delivery.lease_owner == worker, Delivery.status == "leased")
        .values(
            status="sending",
            attempts=Delivery.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.execute(statement).scalars())


def release(session: Session, ids: Sequence[int], worker: str) -> None:
    """Hand leased rows back untouched (graceful shutdown)."""
    if ids:
        session.execute(
            update(Delivery)
            .where(in_ids(session, Delivery.id, ids), Delivery.lease_owner == worker, Delivery.status == "leased")
            .values(status="pending", lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )


def record_results(
    session: Session,
    outcomes: Sequence[tuple[int, Result]],
    attempts: dict[int, int],
    worker: str,
    now: datetime,
    max_attempts: int,
) -> tuple[dict[str, int], list[tuple[int | None, str, str]]]:
    """Store what the channel said; sent rows are updated in bulk by provider id.

    Only rows this worker still holds are touched; the counts say how many were. Also returns
    (person, kind, period) of every row marked sent, for the engagement aggregates.
    """
    counts: dict[str, int] = defaultdict(int)
    sent_by_provider: dict[str | None, list[int]] = defaultdict(list)
    mine = and_(Delivery.lease_owner == worker, Delivery.status == "sending")
    for delivery_id, result in outcomes:
        if result.status == "sent":
            sent_by_provider[result.provider_id].append(delivery_id)
            continue
        values: dict[str, Any] = {"last_error": result.error, "lease_owner": None, "lease_expires_at": None}
        tries = attempts.get(delivery_id, 1)
        if result.status == "paused":  # the channel waits for an admin; the row waits unharmed
            values |= {"status": "pending", "next_attempt_at": now, "attempts": Delivery.attempts - 1}
            outcome = "paused"
        elif result.status == "retry" and tries < max_attempts:
            values |= {"status": "pending", "next_attempt_at": now + timedelta(seconds=backoff_seconds(tries, result.retry_after))}
            outcome = "retried"
        else:
            values["status"] = "failed"
            outcome = "failed"
        counts[outcome] += session.execute(
            update(Delivery).where(Delivery.id == delivery_id, mine).values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
    sent: list[tuple[int | None, str, str]] = []
    for provider_id, ids in sent_by_provider.items():
        for start in range(0, len(ids), 5000):
            marked = session.execute(
                update(Delivery)
                .where(in_ids(session, Delivery.id, ids[start : start + 5000]), mine)
                .values(status="sent", sent_at=now, provider_message_id=provider_id, last_error=None,
                        lease_owner=None, lease_expires_at=None)
                .returning(Delivery.person_id, Delivery.kind, Delivery.period_key)
                .execution_options(synchronize_session=False)
            ).all()
            sent += [tuple(row) for row in marked]
            counts["sent"] += len(marked)
    settle_carried(session, [delivery_id for delivery_id, _ in outcomes])
    return dict(counts), sent


def count_due(session: Session, now: datetime) -> int:
    return session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
    ) or 0
