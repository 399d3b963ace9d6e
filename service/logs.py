"""Logging: one line per event, text or JSON (NUDGE_LOG_FORMAT). Log lines never carry an email address or a
token at INFO: code logs ids and counts, and this filter masks any address that slips into a message."""

from __future__ import annotations

import json
import logging
import re

from service.config import Settings

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
TOKEN = re.compile(r"/(o|c|ack)/[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = TOKEN.sub(r"/\1/[token]", EMAIL.sub("[email]", message))
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(settings: Settings, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(Redact())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("apscheduler", "httpx", "uvicorn.access", "canvasapi"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
