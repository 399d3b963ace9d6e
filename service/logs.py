"""Logging: one line per event, text or JSON (NUDGE_LOG_FORMAT). Log lines never carry an email address or a
token at INFO: code logs ids and counts, and this filter masks any address that slips into a message."""

from __future__ import annotations

import json
import logging
import re

from service.config import Settings

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
TOKEN = re.compile(r"/(o|c|ack)/[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")


PARAMETERS = re.compile(r"\[parameters: .*?\](?=\n|$)", re.S)  # SQLAlchemy's statement values


def redact(text: str) -> str:
    return TOKEN.sub(r"/\1/[token]", EMAIL.sub("[email]", PARAMETERS.sub("[parameters: hidden]", text)))


class Redact(logging.Filter):
    """Masks addresses, tokens and statement values in the message and in a traceback's text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info or record.exc_text:
            entry["error"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(settings: Settings, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(Redact())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # through this handler, not uvicorn's own
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for noisy in ("apscheduler", "httpx", "uvicorn.access", "canvasapi"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
