"""Clicks settle in the background: every couple of seconds, the web process judges the messages
whose clicks have gone quiet (:func:`service.usecases.settle_signals`), so a real click counts
within seconds and a scanner's burst never does. The daily pass and the summaries settle too."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service import usecases
from service.config import Settings

log = logging.getLogger(__name__)


class Settler:
    def __init__(self, factory: sessionmaker[Session], settings: Settings, clock: Callable[[], datetime],
                 interval: float = 2.0):
        self.factory, self.settings, self.clock, self.interval = factory, settings, clock, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="click-settler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                usecases.settle_signals(self.factory, self.settings, self.clock())
            except OperationalError as exc:  # locked or away: the clicks stay unsettled until the next try
                log.warning("settling clicks postponed: %s", exc.__class__.__name__)
            except Exception:  # noqa: BLE001 - keep the thread alive; nothing was half-written (one transaction)
                log.exception("settling clicks failed; will retry")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
