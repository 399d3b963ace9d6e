"""The admin dashboard: server-rendered pages over the same SQL queries as the emails and CSVs.

Sign-in with NUDGE_ADMIN_TOKEN sets a signed, HttpOnly, SameSite=Strict
cookie; without a configured token the dashboard is disabled and says so.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import deque
import time as clock
from datetime import date, datetime, timedelta
from typing import NamedTuple

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, select
from service.db import in_ids
from sqlalchemy.orm import Session

from service import reports
from service.charts import trend_svg
from service.engagement import Rate
from service.models import AdminSession, Delivery, EngagementEvent, Notice, Person
from service.web.context import Paging, Web, current, is_row_id
from service.web.context import private_page as page
from service.weeks import week_key

COOKIE = "nudge_admin"
SESSION_SECONDS = 12 * 3600


class SessionCookie:
    """Signed cookie values "session-id.expiry.tag" (HMAC under a dashboard-only key); the session
    itself is a row, so logout revokes it for every process."""

    def __init__(self, keys: list[str]):
        self.keys = [hashlib.sha256(f"dashboard:{k}".encode()).digest() for k in keys]

    def _tag(self, key: bytes, body: str) -> str:
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()

    def issue(self, session: Session, now: datetime) -> str:
        sid, expires = secrets.token_urlsafe(24), int(clock.time()) + SESSION_SECONDS
        session.add(AdminSession(id=sid, created_at=now, expires_at=now + timedelta(seconds=SESSION_SECONDS)))
        body = f"{sid}.{expires}"
        return f"{body}.{self._tag(self.keys[0], body)}"

    def session_id(self, value: str | None) -> str | None:
        """The session a genuine, unexpired cookie names (not yet checked against revocation)."""
        parts = (value or "").split(".")
        if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) < clock.time():
            return None
        body = f"{parts[0]}.{parts[1]}"
        return parts[0] if any(hmac.compare_digest(self._tag(k, body), parts[2]) for k in self.keys) else None

    def valid(self, session: Session, value: str | None) -> bool:
        sid = self.session_id(value)
        row = session.get(AdminSession, sid) if sid else None
        return row is not None and row.revoked_at is None


router = APIRouter(prefix="/admin", include_in_schema=False)


def denied(web: Web, request: Request) -> Response | None:
    if not web.settings.admin_enabled:
        return page("admin_disabled", 503)
    with web.unit_of_work() as session:
        signed_in = SessionCookie(web.keys).valid(session, request.cookies.get(COOKIE))
    if not signed_in:
        return RedirectResponse("/admin/login", status_code=303)
    return None


def this_week(web: Web) -> reports.Window:
    return reports.Window.week(week_key(web.clock().astimezone(web.zone).date()), web.zone)


@router.get("/", include_in_schema=False)
def with_slash() -> Response:
    return RedirectResponse("/admin", status_code=307)  # relative: never a host taken from the request


@router.get("/login", response_class=HTMLResponse)
def login_form(web: Web = Depends(current)) -> Response:
    if not web.settings.admin_enabled:
        return page("admin_disabled", 503)
    return page("admin_login")


class LoginThrottle:
    """At most ``limit`` wrong tokens per client address in ``window`` seconds (per process)."""

    def __init__(self, limit: int = 10, window: float = 300.0):
        self.limit, self.window = limit, window
        self.failures: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def wait(self, client: str) -> int:
        """Seconds this client must wait before trying again; 0 if it may try now."""
        now = clock.monotonic()
        with self.lock:
            recent = self.failures.get(client)
            while recent and recent[0] <= now - self.window:
                recent.popleft()
            if not recent or len(recent) < self.limit:
                return 0
            return max(1, int(recent[0] + self.window - now) + 1)

    def failed(self, client: str) -> None:
        with self.lock:
            if len(self.failures) > 10_000:  # a flood of addresses cannot grow it without bound
                self.failures.clear()
            self.failures.setdefault(client, deque()).append(clock.monotonic())


def throttle_of(request: Request) -> LoginThrottle:
    """The app's own throttle (each app, and so each test server, counts separately)."""
    state = request.app.state
    if not hasattr(state, "login_throttle"):
        state.login_throttle = LoginThrottle()
    return state.login_throttle


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: str = Form(default=""), web: Web = Depends(current)) -> Response:
    if not web.settings.admin_enabled:
        return page("admin_disabled", 503)
    client, throttle = web.signal_of(request).ip or "unknown", throttle_of(request)
    if wait := throttle.wait(client):
        response = page("admin_login", 429, error="Too many wrong tokens: try again later.")
        response.headers["Retry-After"] = str(wait)
        return response
    if not hmac.compare_digest(token.encode(), web.settings.admin_token.get_secret_value().encode()):
        throttle.failed(client)
        return page("admin_login", 401, error="That token is not right.")
    response = RedirectResponse("/admin", status_code=303)
    with web.unit_of_work() as session:
        cookie = SessionCookie(web.keys).issue(session, web.clock())
    response.set_cookie(COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True,
                        samesite="strict", secure=web.settings.base_url.startswith("https://"), path="/admin")
    return response


@router.post("/logout")
def logout(request: Request, web: Web = Depends(current)) -> Response:
    """Revokes the session server-side: a copy of the cookie kept elsewhere no longer works."""
    sid = SessionCookie(web.keys).session_id(request.cookies.get(COOKIE))
    if sid is not None:
        with web.unit_of_work() as session:
            row = session.get(AdminSession, sid)
            if row is not None and row.revoked_at is None:
                row.revoked_at = web.clock()
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/admin")
    return response


@router.get("", response_class=HTMLResponse)
def overview(request: Request, web: Web = Depends(current)) -> Response:
    if (stop := denied(web, request)) is not None:
        return stop
    window = this_week(web)
    week, start, end = window.first, window.start, window.end
    new_hire_days = web.settings.new_hire_days

    def staff(session: Session) -> tuple[dict[bool, int], int, reports.Tally]:
        active = dict(session.execute(select(Person.active, func.count()).group_by(Person.active)).tuples().all())
        undeliverable = session.scalar(select(func.count()).select_from(Person).where(
            Person.active.is_(True), Person.undeliverable_since.is_not(None)))
        return active, undeliverable, reports.tally(session, window, new_hire_days=new_hire_days)

    def around(session: Session) -> tuple[list, list[reports.TrendPoint], list[reports.NoticeProgress], list]:
        by_status = session.execute(
            select(Delivery.channel, Delivery.status, func.count())
            .where(Delivery.created_at >= start, Delivery.created_at < end)
            .group_by(Delivery.channel, Delivery.status).order_by(Delivery.channel, Delivery.status)
        ).all()
        trend = reports.since_first_digest(reports.weekly_trend(
            session, reports.last_weeks(week, 8, web.zone), None, new_hire_days=new_hire_days))
        notices = reports.notice_progress(session, None, web.clock().astimezone(web.zone).date())
        return by_status, trend, notices, reports.sections_of(session)

    (active, undeliverable, tally), (by_status, trend, notices, sections) = web.side_by_side(staff, around)
    checks = [{"section": s.section, "school": str(s)} for s in sections if s.answered]
    return page("admin_overview", week=week, active=active.get(True, 0), inactive=active.get(False, 0),
                undeliverable=undeliverable, by_status=by_status, notices=notices, rate=tally.rate,
                checks=checks, misunderstood=reports.most_misunderstood(sections),
                chart=trend_svg([p.label for p in trend], [p.rate for p in trend]), trend=trend)


class TeamNode(NamedTuple):
    """A team in the tree. A tuple, not a dict: Jinja reads a dict's keys only after a failed
    attribute lookup, and a district's tree is 5,000 teams (190 ms of rendering, not 50)."""

    id: int
    name: str
    size: int
    rate: Rate
    children: list[TeamNode]


@router.get("/teams", response_class=HTMLResponse)
def teams(request: Request, web: Web = Depends(current)) -> Response:
    if (stop := denied(web, request)) is not None:
        return stop
    window = this_week(web)
    week = window.first
    with web.unit_of_work() as session:
        tallies = reports.team_tallies(session, window, new_hire_days=web.settings.new_hire_days)
        managers = session.execute(select(Person.id, Person.name, Person.supervisor_id).where(
            in_ids(session, Person.id, list(tallies)), Person.active.is_(True)).order_by(Person.name)).all()
    shown = {manager.id for manager in managers}
    children: dict[int | None, list] = {}
    for manager in managers:  # a manager whose own manager is not shown (left, or nobody active below) is a root
        children.setdefault(manager.supervisor_id if manager.supervisor_id in shown else None, []).append(manager)

    def tree(parent: int | None) -> list[TeamNode]:
        return [TeamNode(m.id, m.name, *tallies[m.id], tree(m.id)) for m in children.get(parent, [])]

    forest = tree(None)
    return page("admin_teams", week=week, forest=forest)


@router.get("/teams/{person_id}", response_class=HTMLResponse)
def team(person_id: int, request: Request, web: Web = Depends(current)) -> Response:
    if (stop := denied(web, request)) is not None:
        return stop
    window = this_week(web)
    week = window.first
    with web.unit_of_work() as session:
        lead = session.get(Person, person_id) if is_row_id(person_id) else None
        if lead is None:
            return page("admin_missing", 404, what="team")
        scope = reports.team_of(session, person_id)
        tally = reports.tally(session, window, scope, new_hire_days=web.settings.new_hire_days)
        paging = Paging.of(request.query_params.get("page"), tally.people)
        rows = reports.engagement(session, window, scope, new_hire_days=web.settings.new_hire_days,
                                  offset=paging.offset, limit=paging.size)
        checks = reports.knowledge_checks(session, scope, reports.sections_of(session))
    return page("admin_team", week=week, lead=lead, rows=rows, rate=tally.rate, zone=web.zone, paging=paging,
                checks=checks)


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person(person_id: int, request: Request, web: Web = Depends(current)) -> Response:
    if (stop := denied(web, request)) is not None:
        return stop
    with web.unit_of_work() as session:
        who = session.get(Person, person_id) if is_row_id(person_id) else None
        if who is None:
            return page("admin_missing", 404, what="person")
        deliveries = session.scalars(select(Delivery).where(Delivery.person_id == person_id)
                                     .order_by(Delivery.created_at.desc()).limit(200)).all()
        events = session.scalars(select(EngagementEvent).where(EngagementEvent.person_id == person_id)
                                 .order_by(EngagementEvent.at.desc()).limit(500)).all()
        supervisor = session.get(Person, who.supervisor_id) if who.supervisor_id else None
        timeline = sorted(
            [("delivery", d.created_at, d) for d in deliveries] + [("event", e.at, e) for e in events],
            key=lambda item: item[1], reverse=True)
    return page("admin_person", who=who, supervisor=supervisor, timeline=timeline, zone=web.zone,
                human=sum(1 for e in events if not e.is_machine), machine=sum(1 for e in events if e.is_machine))


@router.get("/notices", response_class=HTMLResponse)
def notices(request: Request, web: Web = Depends(current)) -> Response:
    if (stop := denied(web, request)) is not None:
        return stop
    with web.unit_of_work() as session:
        progress = reports.notice_progress(session, None, web.clock().astimezone(web.zone).date() - timedelta(days=3650))
    return page("admin_notices", notices=progress)


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice(notice_id: int, request: Request, web: Web = Depends(current)) -> Response:
    if (stop := denied(web, request)) is not None:
        return stop
    with web.unit_of_work() as session:
        found = session.get(Notice, notice_id) if is_row_id(notice_id) else None
        if found is None:
            return page("admin_missing", 404, what="notice")
        sent, done = reports.notice_counts(session, notice_id)
        paging = Paging.of(request.query_params.get("page"), sent)
        people = reports.notice_people(session, notice_id, paging.offset, paging.size)
        title = f"{found.policy_version.policy.title} — version {found.policy_version.label}"
        due = found.due_on
    return page("admin_notice", title=title, due=due, people=people, zone=web.zone, done=done, sent=sent,
                paging=paging)


@router.get("/deliveries", response_class=HTMLResponse)
def deliveries(request: Request, web: Web = Depends(current)) -> Response:
    if (stop := denied(web, request)) is not None:
        return stop
    with web.unit_of_work() as session:
        rows = list(reports.delivery_rows(session, problems_only=True, limit=500))
        undeliverable = reports.undeliverable_people(session)
    return page("admin_deliveries", rows=rows, undeliverable=undeliverable)


@router.get("/export/{name}.csv")
def export(name: str, request: Request, web: Web = Depends(current)) -> Response:
    if (stop := denied(web, request)) is not None:
        return stop
    if name == "engagement":
        columns = reports.ENGAGEMENT_COLUMNS

        def rows(session: Session):
            return reports.engagement_rows(session, reports.Window.since(date(2000, 1, 3), web.zone), web.clock(),
                                           new_hire_days=web.settings.new_hire_days)
    elif name == "deliveries":
        columns = reports.DELIVERY_COLUMNS
        rows = reports.delivery_rows
    else:
        return page("admin_missing", 404, what="export")

    def stream():  # streamed from one read transaction: a year of deliveries is millions of rows
        with web.unit_of_work() as session:
            yield from reports.csv_chunks(rows(session), columns)

    return StreamingResponse(stream(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}.csv"',
                                      "Cache-Control": "no-store"})


