"""Compose every digest that is due now, and the week's Canvas posts (safe to run hourly, or any time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import canvas, digests, weeks
from service.config import Settings
from service.db import transaction
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> digests.ComposeResult:
    """Digests due now, and this week's Canvas announcement (posted at the local send time)."""
    calendar = weeks.calendar_for(settings)
    now = now or utcnow()
    with transaction(factory) as session:
        result = digests.compose(session, settings, now, calendar)
        canvas.compose_weekly(session, settings, now, calendar)
    return result
