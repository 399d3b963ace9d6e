"""Queue the weekly supervisor summaries that are due (safe to run hourly)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import usecases
from service.config import Settings
from service.models import utcnow
from service.reports import SummaryResult


def run(factory: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> SummaryResult:
    return usecases.weekly_summaries(factory, settings, now or utcnow())
