"""Record Canvas read receipts for this week's announcements (optional; needs masquerading)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from service import canvas, weeks
from service.channels.canvas import api_from_settings
from service.config import Settings
from service.db import transaction
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings, *, week: str | None = None,
        now: datetime | None = None) -> canvas.ReadSync:
    key = week or weeks.week_key((now or utcnow()).astimezone(ZoneInfo(settings.timezone)).date())
    api = api_from_settings(settings)
    with transaction(factory) as session:
        return canvas.sync_reads(session, settings, api, key)
