"""Compose every digest that is due now (safe to run hourly, or any time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import digest
from service.config import Settings
from service.db import transaction
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> digest.ComposeResult:
    calendar = digest.calendar_for(settings)
    with transaction(factory) as session:
        return digest.compose(session, settings, now or utcnow(), calendar)
