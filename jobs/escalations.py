"""One reminder/escalation pass (run daily)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from service import escalation
from service.config import Settings
from service.db import transaction
from service.models import utcnow


def run(factory: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> escalation.PassResult:
    with transaction(factory) as session:
        return escalation.run_pass(session, settings, now or utcnow())
