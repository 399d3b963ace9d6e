"""Drain the outbox once (run every minute)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.dispatch import Dispatcher, DispatchStats


def run(factory: sessionmaker[Session], settings: Settings) -> DispatchStats:
    dispatcher = Dispatcher(factory, settings)
    try:
        return dispatcher.drain()
    finally:
        dispatcher.close()
