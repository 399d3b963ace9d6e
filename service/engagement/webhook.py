"""SendGrid's signed Event Webhook: verify, deduplicate, map to deliveries, store.

The signature (ECDSA P-256 over timestamp + raw body) is checked with the
``sendgrid`` library's EventWebhook helper. A batch with a bad signature, or a
timestamp older than the tolerance, stores nothing. Events are deduplicated on
``sg_event_id`` (SendGrid retries for 24 hours and sometimes repeats itself).
A malformed event is reported and skipped; the rest of its batch is stored.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db import insert_ignore
from service.models import MAX_ROW_ID, Delivery, EngagementEvent, Person
from service.engagement.definition import OPEN
from service.engagement.rules import Rules, classify
from service.engagement.weekly import add_opens

STORED_EVENTS = {"processed", "delivered", "deferred", "bounce", "dropped", "spamreport", "open", "click"}
UNDELIVERABLE_EVENTS = {"dropped", "spamreport"}
TOLERANCE = timedelta(minutes=10)
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp(), datetime(2100, 1, 1, tzinfo=UTC).timestamp()
DIGITS = re.compile(r"[0-9]{1,12}")


class SignatureError(Exception):
    """The batch is not provably from SendGrid; nothing is stored."""


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    by_type: dict[tuple[str, bool], int] = field(default_factory=dict)


class Verifier:
    def __init__(self, public_key: str | None):
        self.helper = EventWebhook()
        self.key = None
        if public_key:
            try:
                self.key = self.helper.convert_public_key_to_ecdsa(public_key.strip())
            except ValueError as exc:
                raise ValueError(f"SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key: {exc}") from None

    def verify(self, body: bytes, signature: str | None, timestamp: str | None, now: datetime) -> None:
        if self.key is None:
            raise SignatureError("webhook verification key not configured (SENDGRID_WEBHOOK_PUBLIC_KEY)")
        if not signature or not timestamp:
            raise SignatureError("missing signature headers")
        if not DIGITS.fullmatch(timestamp) or not EARLIEST <= int(timestamp) < LATEST:
            raise SignatureError("bad timestamp")
        sent = datetime.fromtimestamp(int(timestamp), UTC)
        if now - sent > TOLERANCE or sent - now > TOLERANCE:
            raise SignatureError("timestamp outside the 10-minute window (replay?)")
        try:
            payload = body.decode("utf-8")
            base64.b64decode(signature, validate=True)
            valid = self.helper.verify_signature(payload, signature, timestamp, self.key)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            valid = False
        if not valid:
            raise SignatureError("bad signature")


def _int(value: Any, low: float = 1, high: float = MAX_ROW_ID) -> int | None:
    """An integer within [low, high], given as a JSON number or a string of ASCII digits; else None."""
    if isinstance(value, str) and DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def _text(value: Any, limit: int) -> str | None:
    """A stored string: no NUL (PostgreSQL refuses it, SQLite would keep it), at most ``limit`` characters."""
    return str(value).replace("\x00", "")[:limit] if value is not None else None


def ingest(session: Session, rules: Rules, body: bytes, now: datetime) -> IngestResult:
    """Store a verified batch. The caller has checked the signature."""
    result = IngestResult()
    try:
        events = json.loads(body)
    except ValueError:
        result.rejected.append({"index": None, "error": "body is not JSON"})
        return result
    if not isinstance(events, list):
        result.rejected.append({"index": None, "error": "body is not a JSON array of events"})
        return result
    parsed: list[tuple[int, dict[str, Any], int | None]] = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            result.rejected.append({"index": index, "error": "event is not an object"})
            continue
        kind, event_id, stamp = event.get("event"), event.get("sg_event_id"), event.get("timestamp")
        if not isinstance(kind, str) or not isinstance(event_id, str) or not event_id or _int(stamp) is None:
            result.rejected.append({"index": index, "error": "needs event, sg_event_id and an integer timestamp"})
            continue
        if _int(stamp, EARLIEST, LATEST) is None or len(event_id) > 200 or not event_id.isprintable():
            result.rejected.append({"index": index, "error": "timestamp out of range, or sg_event_id malformed"})
            continue
        if kind not in STORED_EVENTS:
            result.ignored += 1
            continue
        parsed.append((index, event, _int(event.get("delivery_id"))))
    ids = {d for _, _, d in parsed if d is not None}
    deliveries = {d.id: d for d in session.scalars(select(Delivery).where(Delivery.id.in_(ids)))} if ids else {}
    rows = []
    for index, event, delivery_id in parsed:
        delivery = deliveries.get(delivery_id) if delivery_id is not None else None
        if delivery is None:
            given = event.get("delivery_id")
            shown = given if isinstance(given, str) and len(given) <= 20 else _text(given, 20)
            result.rejected.append({"index": index, "error": f"no delivery for delivery_id {shown!r}"})
            continue
        at = datetime.fromtimestamp(_int(event["timestamp"]), UTC)
        kind = event["event"]
        is_machine, reason = False, None
        if kind in ("open", "click"):
            verdict = classify(rules, user_agent=_text(event.get("useragent"), 500), ip=None, at=at,
                               delivered_at=delivery.sent_at, machine_flag=bool(event.get("sg_machine_open")))
            is_machine, reason = verdict.is_machine, verdict.reason
        elif kind == "bounce":
            reason = _text(f"{event.get('type', 'bounce')}: {event.get('reason', '')}", 200)
        elif kind in ("dropped", "deferred"):
            reason = _text(event.get("reason", ""), 200)
        rows.append({
            "delivery_id": delivery.id, "person_id": delivery.person_id, "kind": kind, "source": "sendgrid",
            "is_machine": is_machine, "reason": reason, "provider_event_id": event["sg_event_id"],
            "target": _text(event.get("url"), 2000) if kind == "click" else None,
            "user_agent": _text(event.get("useragent") or "", 500) or None, "ip_hash": None, "at": at,
            "settled": kind != "click",  # a click counts once its message is judged (settling)
        })
    inserted = insert_ignore(session, EngagementEvent, rows, ["provider_event_id"],
                             returning=(EngagementEvent.id, EngagementEvent.provider_event_id))
    new_ids = {event_id for _, event_id in inserted}
    result.stored = len(new_ids)
    result.duplicates = len(rows) - len(new_ids)
    first = {}  # SendGrid may repeat an event within one batch: it was stored once, and counts once
    for row in rows:
        first.setdefault(row["provider_event_id"], row)
    stored = [row for event_id, row in first.items() if event_id in new_ids]
    for row in stored:
        key = (row["kind"], row["is_machine"])
        result.by_type[key] = result.by_type.get(key, 0) + 1
        _follow_delivery_state(session, row, now)
    add_opens(session, [(row["person_id"], row["at"], row["is_machine"]) for row in stored if row["kind"] == OPEN],
              rules.timezone)  # the other signals it stores are clicks, which count once settled
    return result


def _follow_delivery_state(session: Session, row: dict[str, Any], now: datetime) -> None:
    """Hard bounces, drops and spam reports make a person undeliverable; a later delivery clears it."""
    person_id = row["person_id"]
    if person_id is None:
        return
    kind = row["kind"]
    hard_bounce = kind == "bounce" and not (row["reason"] or "").startswith("blocked")
    if kind in UNDELIVERABLE_EVENTS or hard_bounce:
        session.execute(
            update(Person).where(Person.id == person_id, Person.undeliverable_since.is_(None))
            .values(undeliverable_since=row["at"], undeliverable_reason=f"{kind}: {row['reason'] or ''}"[:200])
        )
    elif kind == "delivered":
        session.execute(
            update(Person).where(Person.id == person_id, Person.undeliverable_since < row["at"])
            .values(undeliverable_since=None, undeliverable_reason=None)
        )
