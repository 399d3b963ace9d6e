"""What every web route needs, built once by :func:`service.web.app.create_app` and reached
through the request (``Depends(current)``), so each router is a module-level object."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import transaction
from service.engagement import Rules, Signal, Signer, hash_ip, webhook
from service.rendering import template_env
from service.scheduler import Background
from service.web.metrics import Metrics
from service.web.opens import NO_STORE


@dataclass
class Web:
    settings: Settings
    factory: sessionmaker[Session]
    keys: list[str]  # signing keys; the first also keys the IP hash
    signer: Signer
    rules: Rules
    metrics: Metrics
    verifier: webhook.Verifier
    clock: Callable[[], datetime]
    background: Background | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        with transaction(self.factory) as session:
            yield session

    def signal_of(self, request: Request) -> Signal:
        ip = request.client.host if request.client else None
        if self.settings.trust_proxy and request.headers.get("x-forwarded-for"):
            ip = request.headers["x-forwarded-for"].split(",")[0].strip()
        return Signal(request.method, request.headers.get("user-agent"), ip, hash_ip(ip, self.keys[0]), self.clock())


MAX_ROW_ID = 2**31 - 1


def is_row_id(value: int) -> bool:
    """Whether a number from a URL can be a row id at all (larger ones overflow PostgreSQL's integer)."""
    return 0 < value <= MAX_ROW_ID


def current(request: Request) -> Web:
    return request.app.state.web


def page(name: str, status: int = 200, *, headers: dict[str, str] = NO_STORE, **context: object) -> HTMLResponse:
    html = template_env().get_template(f"web/{name}.html.j2").render(**context)
    return HTMLResponse(html, status_code=status, headers=headers)
