"""Record Canvas read receipts for this week's announcements (optional; needs masquerading)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import usecases
from service.canvas import ReadSync
from service.config import Settings
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings, *, week: str | None = None,
        now: datetime | None = None) -> ReadSync:
    return usecases.sync_canvas_reads(factory, settings, now or utcnow(), week=week)
