"""Daily retention prune: raw engagement events older than the retention window are summed and deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import usecases
from service.config import Settings
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> int:
    return usecases.prune_engagement(factory, settings, now or utcnow())
