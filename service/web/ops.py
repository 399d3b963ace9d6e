"""What operators and their tools read: health, Prometheus metrics, a plain index."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.db import sqlite_write_locked
from service.web.context import Web, current

HEALTH_WAIT_MS = 500

router = APIRouter()


@router.get("/healthz")
def healthz(web: Web = Depends(current)) -> JSONResponse:
    """ok; degraded (the SQLite database is locked by a writer: reads work, writes wait); or error."""
    try:
        with web.unit_of_work(wait_ms=HEALTH_WAIT_MS) as session:
            session.execute(text("SELECT 1"))
            locked = sqlite_write_locked(session, HEALTH_WAIT_MS)
    except Exception as exc:  # noqa: BLE001 - health reports any database failure
        return JSONResponse({"status": "error", "database": exc.__class__.__name__}, status_code=503)
    body = {"status": "degraded", "database": "locked"} if locked else {"status": "ok", "database": "ok"}
    if web.background is not None:
        body["scheduler"] = "leader" if web.background.leader else "follower"
    return JSONResponse(body)


@router.get("/metrics")
def prometheus(request: Request, web: Web = Depends(current)) -> Response:
    """Prometheus metrics; with NUDGE_METRICS_TOKEN set, only for "Authorization: Bearer <token>"."""
    token = web.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode()):
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    return Response(generate_latest(web.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", response_class=PlainTextResponse, include_in_schema=False)
def index() -> str:
    return "Policy Nudge is running."
