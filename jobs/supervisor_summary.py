"""Queue the weekly supervisor summaries that are due (safe to run hourly)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import reports
from service.config import Settings
from service.db import transaction
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> reports.SummaryResult:
    with transaction(factory) as session:
        return reports.compose_summaries(session, settings, now or utcnow())
