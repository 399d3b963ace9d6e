"""Channel pauses: a configuration error (bad token, wrong course) stops one channel until an admin
fixes it; the rows of that channel wait, unharmed, and every other channel keeps sending."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import ChannelPause

log = logging.getLogger(__name__)


def paused_reason(session: Session, channel: str) -> str | None:
    pause = session.get(ChannelPause, channel)
    return pause.reason if pause else None


def paused_channels(session: Session) -> set[str]:
    return set(session.scalars(select(ChannelPause.channel)))


def pause(session: Session, channel: str, reason: str, now: datetime) -> None:
    existing = session.get(ChannelPause, channel)
    if existing is None:
        session.add(ChannelPause(channel=channel, reason=reason, paused_at=now))
        log.error("%s channel paused: %s", channel, reason)
    else:
        existing.reason = reason


def resume(session: Session, channel: str) -> None:
    existing = session.get(ChannelPause, channel)
    if existing is not None:
        session.delete(existing)
