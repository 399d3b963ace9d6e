"""Canvas announcements: what to post each week, read-state sync and roster matching.

Posts go through the outbox like email (channel ``canvas``, no person): one
row per course, kind and week, keyed in ``canvas_announcements``. The channel
module does the talking; this module decides what to say.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import digests, weeks
from service.config import Settings
from service.content import changed_section_tips
from service.models import (
    CanvasAnnouncement,
    Person,
    Tip,
)
from service.outbox import NoticeRef, OutboxMessage, TipRef, enqueue


log = logging.getLogger(__name__)
CHANNEL = "canvas"
CLOCK_SKEW = timedelta(days=1)  # ours and Canvas's clocks may disagree
RETRIED_FOR = timedelta(days=60)  # a post held (Canvas paused) or retried this long after it is due is found
COHORT_ROLE = "teacher"


def marker_for(kind: str, course_id: int, period: str) -> str:
    return f"pn-{kind}-{course_id}-{period}"


@dataclass
class CanvasCompose:
    composed: int = 0
    already: int = 0
    skipped: str | None = None
    kinds: list[str] = field(default_factory=list)


def featured_tip(session: Session, settings: Settings, week: str, role: str | None) -> Tip | None:
    """The tip most of a cohort leads with this week (teachers by default): what they all share."""
    query = select(Person).where(Person.active.is_(True))
    cohort = session.scalars(query.where(Person.role == (role or COHORT_ROLE))).all()
    if not cohort and role is None:
        cohort = session.scalars(query).all()
    if not cohort:
        return None
    tips = digests.tip_catalogue(session)
    monday = datetime.combine(weeks.parse_week(week), datetime.min.time(), ZoneInfo("UTC"))
    priority = changed_section_tips(session, monday - digests.PRIORITY_WINDOW)
    plans = digests.plan_digests(session, settings, cohort, {p.id: week for p in cohort}, tips, priority)
    leads = Counter(plan.tip_ids[0] for plan in plans if plan.tip_ids)
    if not leads:
        return None
    return tips[leads.most_common(1)[0][0]]


def compose_weekly(
    session: Session, settings: Settings, now: datetime, calendar: weeks.SchoolCalendar, *, week: str | None = None
) -> CanvasCompose:
    """One announcement per course per week (and per mapped role), posted at the local send time."""
    result = CanvasCompose()
    if not settings.canvas_enabled:
        result.skipped = "Canvas is not configured"
        return result
    zone = ZoneInfo(settings.timezone)
    key = week or weeks.week_key(now.astimezone(zone).date())
    blackout = calendar.blackout_on(weeks.send_day(key, settings))
    if blackout is not None:
        result.skipped = f"{key} is in {blackout.name}"
        return result
    post_at = weeks.send_moment(key, zone, settings)
    targets: list[tuple[str, str | None, list[int]]] = [("tip", None, [])]
    targets += [(f"tip-{role}", role, ids) for role, ids in sorted(settings.canvas_role_sections.items())]
    for kind, role, section_ids in targets:
        tip = featured_tip(session, settings, key, role)
        if tip is None:
            continue
        for course_id in settings.canvas_course_ids:
            created = add_post(
                session, course_id, kind, key, now, payload={"week": key, "section_ids": section_ids},
                subject=f"Tip of the week: {tip.title}", post_at=post_at if post_at > now else None, tip=tip,
            )
            result.composed += created
            result.already += not created
            result.kinds.append(kind)
    return result


def add_post(
    session: Session, course_id: int, kind: str, period: str, now: datetime, *,
    payload: dict[str, Any], subject: str, post_at: datetime | None = None,
    tip: Tip | None = None, notice_id: int | None = None,
) -> bool:
    """Add one post to the outbox unless (course, kind, period) exists; safe against a racing composer.

    Before posting, the channel looks for the post's marker among the course's announcements
    posted from a day before ``now`` to ``RETRIED_FOR`` after the post is due (``post_at``, or
    now): an earlier attempt is made at or after composing, or scheduled for ``post_at``, whatever
    week the post is for (a window around a past week's Monday missed a post made today, and the
    retry posted it twice).
    """
    marker = marker_for(kind, course_id, period)
    items = (TipRef(tip.id),) if tip is not None else (NoticeRef(notice_id),) if notice_id is not None else ()
    due = max(now, post_at or now)
    queued = enqueue(session, [OutboxMessage(
        kind, period, now, recipient=f"course:{course_id}", channel=CHANNEL, subject=subject,
        payload={**payload, "course_id": course_id, "marker": marker,
                 "post_at": post_at.isoformat() if post_at else None,
                 "search_from": (now - CLOCK_SKEW).isoformat(), "search_to": (due + RETRIED_FOR).isoformat()},
        items=items)])
    for row in queued:
        session.add(CanvasAnnouncement(course_id=course_id, kind=kind, period_key=period, marker=marker,
                                       delivery_id=row.delivery_id, section_ids=payload.get("section_ids") or [],
                                       tip_id=tip.id if tip else None, notice_id=notice_id, created_at=now))
    session.flush()
    return bool(queued)
