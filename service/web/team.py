"""A supervisor's read-only view of their own subtree, reached by the signed link in their
weekly summary: no account, no admin token, nothing outside their team."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from service import reports
from service.charts import trend_svg
from service.engagement import TEAM
from service.models import Delivery, Person
from service.weeks import week_key
from service.web.context import Paging, Web, current
from service.web.context import private_page as page

TEAM_LINK_DAYS = 35  # five weekly summaries: an old forwarded email stops showing names


router = APIRouter()


@router.get("/team/{token}", response_class=HTMLResponse)
def team_view(token: str, request: Request, web: Web = Depends(current)) -> Response:
    data = web.signer.verify(token)
    if data is None or data.kind != TEAM:
        return page("not_found", 404)
    now, zone = web.clock(), web.zone
    with web.unit_of_work() as session:
        summary = session.get(Delivery, data.delivery_id)
        lead = session.get(Person, summary.person_id) if summary and summary.person_id else None
        if summary is None or summary.kind != "summary" or lead is None or not lead.active:
            return page("not_found", 404)
        if summary.created_at < now - timedelta(days=TEAM_LINK_DAYS):
            return page("team_expired", 410)
        week = week_key(now.astimezone(zone).date())
        scope = reports.team_of(session, lead.id)
        rollup = reports.has_managers(session, lead.id, scope)
    window = reports.Window.week(week, zone)
    new_hire_days = web.settings.new_hire_days

    def people(session: Session) -> tuple[reports.Tally, Paging, list[reports.PersonEngagement]]:
        tally = reports.tally(session, window, scope, new_hire_days=new_hire_days)
        statuses = reports.ATTENTION if rollup else None  # a manager of managers sees who needs a check-in
        listed = sum(tally.counts[s] for s in statuses) if statuses else tally.people
        paging = Paging.of(request.query_params.get("page"), listed)
        return tally, paging, reports.engagement(session, window, scope, new_hire_days=new_hire_days,
                                                 statuses=statuses, offset=paging.offset, limit=paging.size)

    def around(session: Session) -> tuple[list[reports.TrendPoint], list[reports.NoticeProgress], list[dict]]:
        trend = reports.since_first_digest(reports.weekly_trend(
            session, reports.last_weeks(week, 8, zone), scope, new_hire_days=new_hire_days))
        return (trend, reports.notice_progress(session, scope, now.astimezone(zone).date()),
                reports.knowledge_checks(session, scope, reports.sections_of(session)))

    (tally, paging, rows), (trend, notices, checks) = web.side_by_side(people, around)
    response = page("team_view", lead=lead, week=week, rate=tally.rate, rollup=rollup, notices=notices, checks=checks,
                    rows=rows, zone=zone, paging=paging,
                    chart=trend_svg([p.label for p in trend], [p.rate for p in trend]))
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response

