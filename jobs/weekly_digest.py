"""Queue every digest that is due now, and the week's Canvas posts (safe to run hourly, or any time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import usecases
from service.config import Settings
from service.digests import ComposeResult
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> ComposeResult:
    return usecases.send_week(factory, settings, now or utcnow()).digests
