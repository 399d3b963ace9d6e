"""The FastAPI app: one router module per area, and the open pixel in front of them all.

Areas: tracking (click redirects), ack (the acknowledge page), webhook (SendGrid's signed
events), policies (policy pages), ops (health, metrics), admin (the dashboard) and team (a
supervisor's signed team view). A forged or altered token is never recorded: the pixel still
answers a GIF (no oracle), a click shows a plain 404 and redirects nowhere, an ack page refuses.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from service.config import ADMIN_TOKEN_MIN, Settings, load_settings
from service.db import make_engine, make_sessionmaker, transaction
from service.engagement import Rules, Signer, signing_keys
from service.engagement.webhook import Verifier
from service.models import utcnow
from service.scheduler import Background
from service.web import ack, admin, ops, policies, preferences, quiz, team, tracking, webhook
from service.web.context import DeferredWrites, Web
from service.web.headers import CrossOriginForms, SecurityHeaders
from service.web.metrics import Metrics
from service.web.opens import OpenRecorder, PixelMiddleware
from service.web.settler import Settler

log = logging.getLogger(__name__)


class NudgeApp(FastAPI):
    """FastAPI with the open pixel answered in front of the framework: on the hottest path,
    the framework's own middleware (errors, telemetry, body limits) costs more than the pixel."""

    pixel: PixelMiddleware

    async def __call__(self, scope, receive, send) -> None:
        await self.pixel(scope, receive, send)


ROUTERS = (tracking.router, ack.router, webhook.router, policies.router, ops.router, admin.router, team.router,
           preferences.router, quiz.router)


def create_app(settings: Settings, factory: sessionmaker[Session] | None = None,
               background: Background | None = None, clock: Callable[[], datetime] = utcnow) -> NudgeApp:
    """The web app; with ``background`` (what `nudge serve` runs), its lifespan also starts and
    stops the dispatcher loop and the scheduler election."""
    factory = factory or make_sessionmaker(make_engine(settings.database_url))
    if settings.admin_token is not None and not settings.admin_enabled:
        log.warning("NUDGE_ADMIN_TOKEN is shorter than %d characters: the dashboard is off", ADMIN_TOKEN_MIN)
    with transaction(factory) as session:
        keys = signing_keys(session, settings)
    web = Web(settings, factory, keys, Signer(keys), Rules.from_settings(settings), Metrics(),
              Verifier(settings.sendgrid_webhook_public_key), clock, background, DeferredWrites(factory))

    def counted(rows: list[dict]) -> None:
        for row in rows:
            web.metrics.signals.labels("open", str(row["is_machine"]).lower()).inc()

    opens = OpenRecorder(factory, web.rules, on_written=counted)
    settler = Settler(factory, settings, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        gc.freeze()  # startup's objects live as long as the process: collections during requests skip them
        opens.start()
        settler.start()
        if background is not None:
            dispatched = web.metrics.dispatched
            background.on_dispatch = lambda stats: (dispatched.labels("sent").inc(stats.sent),
                                                    dispatched.labels("retried").inc(stats.retried),
                                                    dispatched.labels("failed").inc(stats.failed))
            background.start()
        yield
        if background is not None:
            background.stop()  # stop claiming, finish the batch in hand, hand the scheduler on
        settler.stop()
        opens.stop()  # write what is queued before the process ends
        web.deferred.stop()
        gc.unfreeze()

    # redirect_slashes off: Starlette would build its redirect from the request's Host header
    app = NudgeApp(title="Policy Nudge", version="1", docs_url=None, redoc_url=None, lifespan=lifespan,
                   redirect_slashes=False)
    app.add_middleware(CrossOriginForms)
    app.add_middleware(SecurityHeaders)
    web.metrics.watch_database(factory, lambda: background.leader if background is not None else None)
    web.metrics.watch_opens(lambda: opens.pending, lambda: opens.written)
    app.state.web, app.state.opens = web, opens  # the routes' context; the pixel's write queue (flushed by tests)

    def counted_open(valid: bool) -> None:
        if not valid:
            web.metrics.invalid_tokens.labels("pixel").inc()

    app.pixel = PixelMiddleware(partial(FastAPI.__call__, app), signer=web.signer, recorder=opens, ip_key=keys[0],
                                trust_proxy=settings.trust_proxy, on_open=counted_open, clock=clock)
    for router in ROUTERS:
        app.include_router(router)
    return app


def app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory service.web.app:app_from_environment` (several workers).

    NUDGE_SERVE_BACKGROUND=1 (set by `nudge serve` without --no-scheduler) adds the dispatcher loop
    and the scheduler election to each worker; the advisory lock keeps one scheduler."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    background = Background(engine, factory, settings) if os.environ.get("NUDGE_SERVE_BACKGROUND") == "1" else None
    return create_app(settings, factory, background)
