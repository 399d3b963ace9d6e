"""Drain the outbox once (run every minute, or by `nudge serve`'s dispatcher loop)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import usecases
from service.config import Settings
from service.dispatch import DispatchStats
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings,
        clock: Callable[[], datetime] = utcnow) -> DispatchStats:
    return usecases.dispatch(factory, settings, clock=clock)
