"""FastAPI app: open pixel, click redirects, the acknowledge page, SendGrid's webhook, health, metrics.

A forged or altered token is never recorded: the pixel still answers a GIF
(no oracle), a click shows a plain 404 and redirects nowhere, an ack page
refuses. A GET never acknowledges: link scanners follow GETs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from functools import partial

from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload, sessionmaker

from service.config import Settings, load_settings
from service.db import make_engine, make_sessionmaker, transaction
from service.models import Delivery, DeliveryItem, Notice, Person, Policy, PolicyVersion, Tip, utcnow
from service.rendering import section_anchor, template_env
from service.inputs import normalize_email
from service.engagement import (
    ACK, CLICK, Rules, Signal, Signer, ack_subject, hash_ip, record_ack, record_click, signing_keys, webhook,
)
from service.scheduler import Background
from service.web.dashboard import dashboard_router, team_router
from service.web.metrics import Metrics
from service.web.opens import NO_STORE, OpenRecorder, PixelMiddleware

log = logging.getLogger(__name__)


def page(name: str, status: int = 200, **context: object) -> HTMLResponse:
    html = template_env().get_template(f"web/{name}.html.j2").render(**context)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


class NudgeApp(FastAPI):
    """FastAPI with the open pixel answered in front of the framework: on the hottest path,
    the framework's own middleware (errors, telemetry, body limits) costs more than the pixel."""

    pixel: PixelMiddleware

    async def __call__(self, scope, receive, send) -> None:
        await self.pixel(scope, receive, send)


def create_app(settings: Settings, factory: sessionmaker[Session] | None = None,
               background: Background | None = None, clock: Callable[[], datetime] = utcnow) -> NudgeApp:
    """The web app; with ``background`` (what `nudge serve` runs), its lifespan also starts and
    stops the dispatcher loop and the scheduler election."""
    factory = factory or make_sessionmaker(make_engine(settings.database_url))
    with transaction(factory) as session:
        keys = signing_keys(session, settings)
    signer = Signer(keys)
    rules = Rules.from_settings(settings)
    verifier = webhook.Verifier(settings.sendgrid_webhook_public_key)
    metrics = Metrics()
    def counted(rows: list[dict]) -> None:
        for row in rows:
            metrics.signals.labels("open", str(row["is_machine"]).lower()).inc()

    opens = OpenRecorder(factory, rules, on_written=counted)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        opens.start()
        if background is not None:
            background.on_dispatch = lambda stats: (metrics.dispatched.labels("sent").inc(stats.sent),
                                                    metrics.dispatched.labels("retried").inc(stats.retried),
                                                    metrics.dispatched.labels("failed").inc(stats.failed))
            background.start()
        yield
        if background is not None:
            background.stop()  # stop claiming, finish the batch in hand, hand the scheduler on
        opens.stop()  # write what is queued before the process ends

    app = NudgeApp(title="Policy Nudge", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)
    metrics.watch_database(factory, lambda: background.leader if background is not None else None)
    app.state.settings, app.state.factory, app.state.metrics, app.state.opens = settings, factory, metrics, opens

    def counted_open(valid: bool) -> None:
        if not valid:
            metrics.invalid_tokens.labels("pixel").inc()

    app.pixel = PixelMiddleware(partial(FastAPI.__call__, app), signer=signer, recorder=opens, ip_key=keys[0],
                                trust_proxy=settings.trust_proxy, on_open=counted_open, clock=clock)

    @contextmanager
    def unit_of_work() -> Iterator[Session]:
        with transaction(factory) as session:
            yield session

    def signal_of(request: Request) -> Signal:
        ip = request.client.host if request.client else None
        if settings.trust_proxy and request.headers.get("x-forwarded-for"):
            ip = request.headers["x-forwarded-for"].split(",")[0].strip()
        return Signal(request.method, request.headers.get("user-agent"), ip, hash_ip(ip, keys[0]), clock())

    @app.get("/c/{token}")
    @app.head("/c/{token}", include_in_schema=False)  # scanners' HEADs are recorded as machine clicks
    def click(token: str, request: Request) -> Response:
        data = signer.verify(token)
        if data is None or data.kind != CLICK or not data.target.startswith(("https://", "http://")):
            metrics.invalid_tokens.labels("click").inc()
            return page("not_found", 404)
        with unit_of_work() as session:
            event = record_click(session, rules, data.delivery_id, data.target, signal_of(request))
        if event is not None:
            metrics.signals.labels("click", str(event.is_machine).lower()).inc()
        return RedirectResponse(data.target, status_code=302, headers=NO_STORE)

    def ack_context(session: Session, token: str) -> tuple[Delivery, str, dict[str, object]] | None:
        data = signer.verify(token)
        if data is None or data.kind != ACK:
            metrics.invalid_tokens.labels("ack").inc()
            return None
        delivery = session.scalar(
            select(Delivery).where(Delivery.id == data.delivery_id)
            .options(selectinload(Delivery.items).selectinload(DeliveryItem.tip).selectinload(Tip.policy))
        )
        if delivery is None:
            return None
        subject = ack_subject(delivery.id, data.target)
        what: dict[str, object] = {"titles": [i.tip.title for i in delivery.items if i.tip is not None]}
        if subject.startswith("notice:"):
            notice = session.get(Notice, int(subject.split(":")[1]))
            version = session.get(PolicyVersion, notice.policy_version_id) if notice else None
            if version is not None:
                what = {"notice": notice, "policy_title": version.policy.title, "version": version.label}
        return delivery, subject, what

    @app.get("/ack/{token}", response_class=HTMLResponse)
    def ack_page(token: str) -> HTMLResponse:
        with unit_of_work() as session:
            found = ack_context(session, token)
            if found is None:
                return page("not_found", 404)
            delivery, subject, what = found
            return page("ack", token=token, shared=delivery.person_id is None, **what)

    @app.post("/ack/{token}", response_class=HTMLResponse)
    def acknowledge(token: str, request: Request, email: str | None = Form(default=None)) -> HTMLResponse:
        with unit_of_work() as session:
            found = ack_context(session, token)
            if found is None:
                return page("not_found", 404)
            delivery, subject, what = found
            person_id = delivery.person_id
            if person_id is None:  # a shared post (Canvas): the reader says who they are
                person = session.scalar(select(Person).where(Person.email == normalize_email(email or ""),
                                                             Person.active.is_(True)))
                if person is None:
                    return page("ack", 422, token=token, shared=True, error="Please enter your school email "
                                "address as it appears in the staff directory.", **what)
                person_id = person.id
            result = record_ack(session, delivery, subject, person_id, signal_of(request))
        if result.recorded:
            metrics.signals.labels("ack", "false").inc()
        return page("thanks", already=not result.recorded)

    @app.post("/webhooks/sendgrid")
    async def sendgrid_events(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verifier.verify(body, request.headers.get("x-twilio-email-event-webhook-signature"),
                            request.headers.get("x-twilio-email-event-webhook-timestamp"), clock())
        except webhook.SignatureError as exc:
            metrics.webhook_batches.labels("rejected").inc()
            log.warning("SendGrid webhook rejected: %s", exc)
            return JSONResponse({"error": str(exc)}, status_code=403)
        with unit_of_work() as session:
            result = webhook.ingest(session, rules, body, clock())
        metrics.webhook_batches.labels("accepted").inc()
        for (kind, machine), count in result.by_type.items():
            metrics.webhook_events.labels(kind, str(machine).lower()).inc(count)
        return JSONResponse({"stored": result.stored, "duplicates": result.duplicates, "ignored": result.ignored,
                             "rejected": result.rejected})

    @app.get("/policies/{slug}", response_class=HTMLResponse)
    def policy_page(slug: str) -> HTMLResponse:
        """The current text of a policy, one anchor per section (where "Read the section" lands)."""
        with unit_of_work() as session:
            policy = session.scalar(select(Policy).where(Policy.slug == slug))
            if policy is None or not policy.versions:
                return page("not_found", 404)
            version = policy.versions[-1]
            sections = [(section_anchor(s.title), s.title, s.text.split("\n\n") if s.text else [])
                        for s in version.sections]
            return page("policy", title=policy.title, version=version.label, sections=sections)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with unit_of_work() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - health reports any database failure
            return JSONResponse({"status": "error", "database": exc.__class__.__name__}, status_code=503)
        body = {"status": "ok", "database": "ok"}
        if background is not None:
            body["scheduler"] = "leader" if background.leader else "follower"
        return JSONResponse(body)

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(dashboard_router(settings, factory, keys, clock))
    app.include_router(team_router(settings, factory, signer, clock))

    @app.get("/", response_class=PlainTextResponse, include_in_schema=False)
    def index() -> str:
        return "Policy Nudge is running."

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
