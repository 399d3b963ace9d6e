"""One reminder/escalation pass (run daily)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import usecases
from service.config import Settings
from service.escalation import PassResult
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> PassResult:
    return usecases.daily_pass(factory, settings, now or utcnow())
