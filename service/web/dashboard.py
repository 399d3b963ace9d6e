"""The admin dashboard: server-rendered pages over the same SQL queries as the emails and CSVs.

Sign-in with NUDGE_ADMIN_TOKEN sets a signed, HttpOnly, SameSite=Strict
cookie; without a configured token the dashboard is disabled and says so.
"""

from __future__ import annotations

import hashlib
import hmac
import time as clock
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service import reports
from service.charts import trend_svg
from service.config import Settings
from service.db import transaction
from service.weeks import week_key
from service.models import Delivery, EngagementEvent, Notice, Person, utcnow
from service.rendering import template_env
from service.engagement import TEAM, Signer

COOKIE = "nudge_admin"
SESSION_SECONDS = 12 * 3600


class AdminSession:
    """Signed cookie values: "expiry.tag", the tag an HMAC of the expiry under a dashboard-only key."""

    def __init__(self, keys: list[str]):
        self.keys = [hashlib.sha256(f"dashboard:{k}".encode()).digest() for k in keys]

    def _tag(self, key: bytes, expires: str) -> str:
        return hmac.new(key, expires.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        expires = str(int(clock.time()) + SESSION_SECONDS)
        return f"{expires}.{self._tag(self.keys[0], expires)}"

    def valid(self, value: str | None) -> bool:
        if not value or "." not in value:
            return False
        expires, tag = value.split(".", 1)
        if not expires.isdigit() or int(expires) < clock.time():
            return False
        return any(hmac.compare_digest(self._tag(k, expires), tag) for k in self.keys)


def render(name: str, status: int = 200, **context: object) -> HTMLResponse:
    html = template_env().get_template(f"web/{name}.html.j2").render(**context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def dashboard_router(settings: Settings, factory: sessionmaker[Session], keys: list[str],
                     clock: Callable[[], datetime] = utcnow) -> APIRouter:
    router = APIRouter(prefix="/admin", include_in_schema=False)
    sessions = AdminSession(keys)
    zone = ZoneInfo(settings.timezone)
    secure = settings.base_url.startswith("https://")

    def denied(request: Request) -> Response | None:
        if settings.admin_token is None:
            return render("admin_disabled", 503)
        if not sessions.valid(request.cookies.get(COOKIE)):
            return RedirectResponse("/admin/login", status_code=303)
        return None

    def this_week() -> tuple[str, datetime, datetime]:
        key = week_key(clock().astimezone(zone).date())
        return (key, *reports.week_bounds(key, zone))

    @router.get("/login", response_class=HTMLResponse)
    def login_form() -> Response:
        if settings.admin_token is None:
            return render("admin_disabled", 503)
        return render("admin_login")

    @router.post("/login", response_class=HTMLResponse)
    def login(token: str = Form(default="")) -> Response:
        if settings.admin_token is None:
            return render("admin_disabled", 503)
        if not hmac.compare_digest(token.encode(), settings.admin_token.get_secret_value().encode()):
            return render("admin_login", 401, error="That token is not right.")
        response = RedirectResponse("/admin", status_code=303)
        response.set_cookie(COOKIE, sessions.issue(), max_age=SESSION_SECONDS, httponly=True, samesite="strict",
                            secure=secure, path="/admin")
        return response

    @router.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(COOKIE, path="/admin")
        return response

    @router.get("", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        if (stop := denied(request)) is not None:
            return stop
        week, start, end = this_week()
        with transaction(factory) as session:
            people = dict(session.execute(select(Person.active, func.count()).group_by(Person.active)).tuples().all())
            undeliverable = session.scalar(select(func.count()).select_from(Person).where(
                Person.active.is_(True), Person.undeliverable_since.is_not(None)))
            by_status = session.execute(
                select(Delivery.channel, Delivery.status, func.count())
                .where(Delivery.created_at >= start, Delivery.created_at < end)
                .group_by(Delivery.channel, Delivery.status).order_by(Delivery.channel, Delivery.status)
            ).all()
            trend = reports.weekly_trend(session, reports.last_weeks(week, 8, zone), None)
            notices = reports.notice_progress(session, None, clock().astimezone(zone).date())
            rows = reports.engagement(session, start, end)
        engaged, reachable = reports.reach(rows)
        return render("admin_overview", week=week, active=people.get(True, 0), inactive=people.get(False, 0),
                      undeliverable=undeliverable, by_status=by_status, notices=notices,
                      rate=reports.rate(rows), engaged=engaged, reachable=reachable,
                      chart=trend_svg([p.week for p in trend], [p.rate for p in trend]), trend=trend)

    @router.get("/teams", response_class=HTMLResponse)
    def teams(request: Request) -> Response:
        if (stop := denied(request)) is not None:
            return stop
        week, start, end = this_week()
        with transaction(factory) as session:
            rows = reports.engagement(session, start, end)
        children: dict[int | None, list] = {}
        for row in rows:
            children.setdefault(row.supervisor_id, []).append(row)

        def members(person_id: int) -> list:
            found = []
            for child in children.get(person_id, []):
                found += [child, *members(child.id)]
            return found

        def tree(parent: int | None) -> list[dict]:
            nodes = []
            for row in children.get(parent, []):
                if row.id in children:
                    team = members(row.id)
                    nodes.append({"id": row.id, "name": row.name, "size": len(team), "rate": reports.rate(team),
                                  "children": tree(row.id)})
            return nodes

        roots = [r for r in rows if r.supervisor_id is None or r.supervisor_id not in {x.id for x in rows}]
        forest = []
        for root in roots:
            if root.id in children:
                team = members(root.id)
                forest.append({"id": root.id, "name": root.name, "size": len(team), "rate": reports.rate(team),
                               "children": tree(root.id)})
        return render("admin_teams", week=week, forest=forest)

    @router.get("/teams/{person_id}", response_class=HTMLResponse)
    def team(person_id: int, request: Request) -> Response:
        if (stop := denied(request)) is not None:
            return stop
        week, start, end = this_week()
        with transaction(factory) as session:
            lead = session.get(Person, person_id)
            if lead is None:
                return render("admin_missing", 404, what="team")
            rows = reports.engagement(session, start, end, reports.subtree(session, person_id))
        engaged, reachable = reports.reach(rows)
        return render("admin_team", week=week, lead=lead, rows=rows, rate=reports.rate(rows),
                      engaged=engaged, reachable=reachable, zone=zone)

    @router.get("/people/{person_id}", response_class=HTMLResponse)
    def person(person_id: int, request: Request) -> Response:
        if (stop := denied(request)) is not None:
            return stop
        with transaction(factory) as session:
            who = session.get(Person, person_id)
            if who is None:
                return render("admin_missing", 404, what="person")
            deliveries = session.scalars(select(Delivery).where(Delivery.person_id == person_id)
                                         .order_by(Delivery.created_at.desc()).limit(200)).all()
            events = session.scalars(select(EngagementEvent).where(EngagementEvent.person_id == person_id)
                                     .order_by(EngagementEvent.at.desc()).limit(500)).all()
            supervisor = session.get(Person, who.supervisor_id) if who.supervisor_id else None
            timeline = sorted(
                [("delivery", d.created_at, d) for d in deliveries] + [("event", e.at, e) for e in events],
                key=lambda item: item[1], reverse=True)
        return render("admin_person", who=who, supervisor=supervisor, timeline=timeline, zone=zone,
                      human=sum(1 for e in events if not e.is_machine), machine=sum(1 for e in events if e.is_machine))

    @router.get("/notices", response_class=HTMLResponse)
    def notices(request: Request) -> Response:
        if (stop := denied(request)) is not None:
            return stop
        with transaction(factory) as session:
            progress = reports.notice_progress(session, None, clock().astimezone(zone).date() - timedelta(days=3650))
        return render("admin_notices", notices=progress)

    @router.get("/notices/{notice_id}", response_class=HTMLResponse)
    def notice(notice_id: int, request: Request) -> Response:
        if (stop := denied(request)) is not None:
            return stop
        with transaction(factory) as session:
            found = session.get(Notice, notice_id)
            if found is None:
                return render("admin_missing", 404, what="notice")
            people = reports.notice_people(session, notice_id)
            title = f"{found.policy_version.policy.title} — version {found.policy_version.label}"
            due = found.due_on
        return render("admin_notice", title=title, due=due, people=people, zone=zone,
                      done=sum(1 for p in people if p["acknowledged_at"]))

    @router.get("/deliveries", response_class=HTMLResponse)
    def deliveries(request: Request) -> Response:
        if (stop := denied(request)) is not None:
            return stop
        with transaction(factory) as session:
            rows = list(reports.delivery_rows(session, problems_only=True, limit=500))
        return render("admin_deliveries", rows=rows)

    @router.get("/export/{name}.csv")
    def export(name: str, request: Request) -> Response:
        if (stop := denied(request)) is not None:
            return stop
        if name == "engagement":
            columns = reports.ENGAGEMENT_COLUMNS

            def rows(session: Session):
                return reports.engagement_rows(session, datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC")))
        elif name == "deliveries":
            columns = reports.DELIVERY_COLUMNS
            rows = reports.delivery_rows
        else:
            return render("admin_missing", 404, what="export")

        def stream():  # streamed from one read transaction: a year of deliveries is millions of rows
            with transaction(factory) as session:
                yield from reports.csv_chunks(rows(session), columns)

        return StreamingResponse(stream(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.csv"',
                                          "Cache-Control": "no-store"})

    return router


TEAM_LINK_DAYS = 35  # five weekly summaries: an old forwarded email stops showing names


def team_router(settings: Settings, factory: sessionmaker[Session], signer: Signer,
                clock: Callable[[], datetime] = utcnow) -> APIRouter:
    """A supervisor's read-only view of their own subtree, reached by the signed link in their
    weekly summary: no account, no admin token, nothing outside their team."""
    router = APIRouter()
    zone = ZoneInfo(settings.timezone)

    @router.get("/team/{token}", response_class=HTMLResponse)
    def team_view(token: str) -> Response:
        data = signer.verify(token)
        if data is None or data.kind != TEAM:
            return render("not_found", 404)
        now = clock()
        with transaction(factory) as session:
            summary = session.get(Delivery, data.delivery_id)
            lead = session.get(Person, summary.person_id) if summary and summary.person_id else None
            if summary is None or summary.kind != "summary" or lead is None or not lead.active:
                return render("not_found", 404)
            if summary.created_at < now - timedelta(days=TEAM_LINK_DAYS):
                return render("team_expired", 410)
            week = week_key(now.astimezone(zone).date())
            start, end = reports.week_bounds(week, zone)
            scope = reports.subtree_select(lead.id)
            rows = reports.engagement(session, start, end, scope)
            trend = reports.weekly_trend(session, reports.last_weeks(week, 8, zone), scope)
            notices = reports.notice_progress(session, scope, now.astimezone(zone).date())
        rollup = any(r.supervisor_id != lead.id for r in rows)
        engaged, reachable = reports.reach(rows)
        response = render("team_view", lead=lead, week=week, rate=reports.rate(rows), rollup=rollup,
                          engaged=engaged, reachable=reachable, notices=notices,
                          rows=[r for r in rows if r.status in reports.ATTENTION] if rollup else rows, zone=zone,
                          chart=trend_svg([p.week for p in trend], [p.rate for p in trend]))
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Robots-Tag"] = "noindex"
        return response

    return router
