"""The weekly supervisor summary: what it says, and queuing it at the supervisor's local time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config import WEEKDAYS
from service.weeks import week_key
from service.models import (
    Delivery,
    Person,
)
from service.outbox import OutboxMessage, enqueue
from service.db import side_by_side
from service.reports.figures import (
    AllBut, ATTENTION, NoticeProgress, PersonEngagement, RollUp, Tally, TrendPoint, Window, engagement, has_managers,
    last_weeks, notice_progress, overdue_notices, roll_up, since_first_digest, tally, team_of, weekly_trend,
)
from service.reports.questions import SectionFigures, sections_of


SUMMARY_ROWS = 50  # an email's lists stop here: Gmail clips a message over 102 KB, and a district has 5,000 teams


@dataclass
class SummaryResult:
    composed: int = 0
    already: int = 0
    nothing_to_report: int = 0
    not_due: int = 0
    recipients: list[str] = field(default_factory=list)


def _display(row: PersonEngagement, zone: ZoneInfo, overdue: dict[int, list[tuple[str, date]]]
             ) -> dict[str, object]:
    return {"name": row.name, "email": row.email, "status": row.status, "why": reason_in_words(row, overdue),
            "last_engaged": row.last_engaged.astimezone(zone).date().isoformat() if row.last_engaged else None}


def reason_in_words(row: PersonEngagement, overdue: dict[int, list[tuple[str, date]]]) -> str:
    """What a busy head needs to know about a person, in words."""
    late = [f"overdue: {title} update, due {due:%b} {due.day}" for title, due in overdue.get(row.id, [])]
    if late:
        return "; ".join(late)
    if row.status in ("engaged", "undeliverable", "on leave", "new hire"):
        return row.status
    weeks = row.silent_digests
    quiet = f"no engagement for {weeks} week{'s' if weeks != 1 else ''}" if weeks else "no engagement this week"
    return quiet + ("" if row.status == "no signal" else f" ({row.status})")


def knowledge_checks(session: Session, scope, school: list[SectionFigures]) -> list[dict[str, str]]:
    """Per section with answers: right the first time in the team, beside the whole school. The
    team of a whole district's head is the school less the head's own answers (not a second count
    of half a million)."""
    if isinstance(scope, AllBut):
        own = {s.section: s for s in sections_of(session, [scope.person_id])}
        team = {s.section: s.less(own.get(s.section)) for s in school}
    else:
        team = {s.section: s for s in sections_of(session, scope)}
    return [{"section": s.section, "team": str(team[s.section]) if s.section in team else "–", "school": str(s)}
            for s in school if s.answered]


def summary_payload(session: Session, supervisor: Person, week: str, zone: ZoneInfo, today: date, *,
                    new_hire_days: int, school_checks: list[SectionFigures] | None = None
                    ) -> dict[str, object] | None:
    """What one supervisor's weekly summary says, or None when there is nothing to report.
    ``school_checks``: the school-wide knowledge-check figures, if already counted for this run.
    The email's lists stop at ``SUMMARY_ROWS``: a manager of managers reads the lowest teams and
    the most pressing people first (the team page has everyone)."""
    scope = team_of(session, supervisor.id)
    window = Window.week(week, zone)
    rollup = has_managers(session, supervisor.id, scope)

    def figures_of(s: Session) -> RollUp | Tally:
        return (roll_up(s, window, supervisor.id, scope, new_hire_days=new_hire_days) if rollup
                else tally(s, window, scope, new_hire_days=new_hire_days))

    def around(s: Session) -> tuple[list[NoticeProgress], list[TrendPoint], list[PersonEngagement]]:
        notices = notice_progress(s, scope, today)
        trend = since_first_digest(weekly_trend(s, last_weeks(week, 8, zone), scope, new_hire_days=new_hire_days))
        return notices, trend, engagement(s, window, scope, new_hire_days=new_hire_days, limit=SUMMARY_ROWS,
                                          statuses=ATTENTION if rollup else None,  # a roll-up: who needs attention
                                          pressing=rollup)

    figures, (notices, trend, listed) = side_by_side(session, figures_of, around)
    everyone = figures.everyone if isinstance(figures, RollUp) else figures
    if not everyone.people:
        return None
    if (not trend or trend[-1].reached == 0) and not notices:
        return None  # no tips went out to this team this week and nothing is pending
    overdue = overdue_notices(session, [r.id for r in listed], today)
    payload: dict[str, object] = {
        "week": week,
        "rate": everyone.rate.as_payload(),
        "trend": [{"week": p.week, "label": p.label, "engaged": p.engaged, "reached": p.reached} for p in trend],
        "notices": [{"policy": n.policy, "version": n.version, "due_on": n.due_on.isoformat(),
                     "acknowledged": n.acknowledged, "audience": n.audience} for n in notices],
        "counts": everyone.counts,
        "people": [_display(r, zone, overdue) for r in listed],
        "people_total": sum(everyone.counts[s] for s in ATTENTION) if rollup else everyone.people,
        "rollup": rollup,
        "checks": knowledge_checks(session, scope, school_checks if school_checks is not None
                                   else sections_of(session)),
    }
    if isinstance(figures, RollUp):  # a line per direct team: the direct reports themselves, then each one's people
        direct = session.execute(select(Person.id, Person.name).where(
            Person.supervisor_id == supervisor.id, Person.active.is_(True))).all()
        own = figures.direct_reports
        teams = sorted(((name, *figures.teams[person_id]) for person_id, name in direct if person_id in figures.teams),
                       key=lambda team: (_lowest_first(team[2]), team[0]))
        payload["teams"] = [{"name": "Your direct reports", "size": own.people, "rate": own.rate.as_payload()}] + [
            {"name": name, "size": size, "rate": rate.as_payload()} for name, size, rate in teams[:SUMMARY_ROWS]]
        payload["teams_total"] = len(teams)
    return payload


def _lowest_first(rate) -> float:
    return 2.0 if rate.share is None else rate.share  # teams nobody can be reached in go last


def compose_summaries(session: Session, settings, now: datetime, *, week: str | None = None,
                      dry_run: bool = False) -> SummaryResult:
    """Queue each active supervisor's weekly summary (default Friday 15:00 their time), at most once a week."""
    result = SummaryResult()
    supervisors = session.scalars(
        select(Person).where(Person.active.is_(True), Person.id.in_(
            select(Person.supervisor_id).where(Person.active.is_(True), Person.supervisor_id.is_not(None))))
        .order_by(Person.id)
    ).all()
    weekday = WEEKDAYS.index(settings.summary_weekday)
    school_checks = None  # counted once a run, when the first summary is due
    for supervisor in supervisors:
        zone = ZoneInfo(supervisor.timezone or settings.timezone)
        local_today = now.astimezone(zone).date()
        key = week or week_key(local_today)
        monday = date.fromisocalendar(int(key[:4]), int(key[6:]), 1)
        due = datetime.combine(monday + timedelta(days=weekday), settings.summary_time, zone)
        if week is None and now < due:
            result.not_due += 1
            continue
        exists = session.scalar(select(Delivery.id).where(Delivery.person_id == supervisor.id,
                                                          Delivery.kind == "summary", Delivery.period_key == key))
        if exists:
            result.already += 1
            continue
        if school_checks is None:
            school_checks = sections_of(session)
        payload = summary_payload(session, supervisor, key, zone, local_today, new_hire_days=settings.new_hire_days,
                                  school_checks=school_checks)
        if payload is None:
            result.nothing_to_report += 1
            continue
        team_rate = payload["rate"]
        subject = (f"Your team this week: {team_rate['percent']} engaged "
                   f"({team_rate['engaged']} of {team_rate['reachable']} reachable)"
                   if team_rate["reachable"] else "Your team this week")
        if dry_run:
            result.composed += 1
            result.recipients.append(supervisor.email)
            continue
        inserted = enqueue(session, [OutboxMessage("summary", key, now, person_id=supervisor.id, subject=subject,
                                                   payload=payload)])
        result.composed += len(inserted)
        result.recipients += [supervisor.email] * len(inserted)
    return result
