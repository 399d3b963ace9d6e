"""Canvas announcements: what to post each week, read-state sync and roster matching.

Posts go through the outbox like email (channel ``canvas``, no person): one
row per course, kind and week, keyed in ``canvas_announcements``. The channel
module does the talking; this module decides what to say.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import digest
from service.channels import Message, Skeleton
from service.channels.canvas import CanvasAPI, CanvasConfigError, CanvasUnavailable
from service.config import Settings
from service.policies import changed_section_tips
from service.models import (
    CanvasAnnouncement,
    Delivery,
    DeliveryItem,
    EngagementEvent,
    Person,
    Tip,
    utcnow,
)
from service.rendering import render_markdown, safe_summary, section_url, template_env
from service.outbox import NoticeRef, OutboxMessage, TipRef, enqueue, resume
from service.tracking import Links, note_human_signals

log = logging.getLogger(__name__)

CHANNEL = "canvas"
COHORT_ROLE = "teacher"


def marker_for(kind: str, course_id: int, period: str) -> str:
    return f"pn-{kind}-{course_id}-{period}"


# ------------------------------------------------------------------ checking


def check_and_resume(session: Session, settings: Settings, api: CanvasAPI) -> list[str]:
    """Verify every configured course (and mapped section); clear the pause if all is well."""
    problems: list[str] = []
    for course_id in settings.canvas_course_ids:
        try:
            api.course_name(course_id)
            wanted = {s for ids in settings.canvas_role_sections.values() for s in ids}
            if wanted:
                have = {s.id for s in api.sections(course_id)}
                missing = sorted(wanted - have)
                if missing:
                    problems.append(f"course {course_id}: no section(s) {missing} (NUDGE_CANVAS_ROLE_SECTIONS)")
        except (CanvasConfigError, CanvasUnavailable) as exc:
            problems.append(f"course {course_id}: {exc}")
    if not problems:
        resume(session, CHANNEL)
    return problems


# ------------------------------------------------------------------ composing


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
    tips = digest.tip_catalogue(session)
    monday = datetime.combine(digest.parse_week(week), datetime.min.time(), ZoneInfo("UTC"))
    priority = changed_section_tips(session, monday - digest.PRIORITY_WINDOW)
    plans = digest.plan_digests(session, settings, cohort, {p.id: week for p in cohort}, tips, priority)
    leads = Counter(plan.tip_ids[0] for plan in plans if plan.tip_ids)
    if not leads:
        return None
    return tips[leads.most_common(1)[0][0]]


def compose_weekly(
    session: Session, settings: Settings, now: datetime, calendar: digest.SchoolCalendar, *, week: str | None = None
) -> CanvasCompose:
    """One announcement per course per week (and per mapped role), posted at the local send time."""
    result = CanvasCompose()
    if not settings.canvas_enabled:
        result.skipped = "Canvas is not configured"
        return result
    zone = ZoneInfo(settings.timezone)
    key = week or digest.week_key(now.astimezone(zone).date())
    blackout = calendar.blackout_on(digest.send_day(key, settings))
    if blackout is not None:
        result.skipped = f"{key} is in {blackout.name}"
        return result
    post_at = digest.send_moment(key, zone, settings)
    targets: list[tuple[str, str | None, list[int]]] = [("tip", None, [])]
    targets += [(f"tip-{role}", role, ids) for role, ids in sorted(settings.canvas_role_sections.items())]
    for kind, role, section_ids in targets:
        tip = featured_tip(session, settings, key, role)
        if tip is None:
            continue
        for course_id in settings.canvas_course_ids:
            monday = datetime.combine(digest.parse_week(key), datetime.min.time(), ZoneInfo("UTC"))
            created = add_post(
                session, course_id, kind, key, now,
                payload={"week": key, "post_at": post_at.isoformat() if post_at > now else None,
                         "section_ids": section_ids},
                subject=f"Tip of the week: {tip.title}",
                tip=tip,
                search_from=monday - timedelta(days=7),
                search_to=monday + timedelta(days=14),
            )
            result.composed += created
            result.already += not created
            result.kinds.append(kind)
    return result


def add_post(
    session: Session, course_id: int, kind: str, period: str, now: datetime, *,
    payload: dict[str, Any], subject: str, search_from: datetime, search_to: datetime,
    tip: Tip | None = None, notice_id: int | None = None,
) -> bool:
    """Add one post to the outbox unless (course, kind, period) exists; safe against a racing composer.

    ``search_from``/``search_to`` bound where the channel looks for the post's marker before posting.
    """
    marker = marker_for(kind, course_id, period)
    items = (TipRef(tip.id),) if tip is not None else (NoticeRef(notice_id),) if notice_id is not None else ()
    queued = enqueue(session, [OutboxMessage(
        kind, period, now, recipient=f"course:{course_id}", channel=CHANNEL, subject=subject,
        payload={**payload, "course_id": course_id, "marker": marker, "search_from": search_from.isoformat(),
                 "search_to": search_to.isoformat()},
        items=items)])
    for row in queued:
        session.add(CanvasAnnouncement(course_id=course_id, kind=kind, period_key=period, marker=marker,
                                       delivery_id=row.delivery_id, section_ids=payload.get("section_ids") or [],
                                       tip_id=tip.id if tip else None, notice_id=notice_id, created_at=now))
    session.flush()
    return bool(queued)


# ------------------------------------------------------------------ rendering


class CanvasRenderer:
    """Turns a Canvas outbox row into the announcement's title and HTML body."""

    def __init__(self, base_url: str, links: Links):
        self.base_url = base_url
        self.links = links

    def render(self, delivery: Delivery) -> Message:
        payload = delivery.payload
        if delivery.kind == "notice":
            body = self._notice_body(delivery)
        else:
            body = self._tip_body(delivery)
        post_at = payload.get("post_at")
        return Message(
            delivery_id=delivery.id,
            kind=delivery.kind,
            to_email="",
            to_name=f"course {payload['course_id']}",
            skeleton=Skeleton(subject=delivery.subject, html=body, text=""),
            options={
                "course_id": payload["course_id"],
                "marker": payload["marker"],
                "section_ids": payload.get("section_ids") or [],
                "post_at": datetime.fromisoformat(post_at) if post_at else None,
                "search_from": datetime.fromisoformat(payload["search_from"]),
                "search_to": datetime.fromisoformat(payload["search_to"]),
            },
        )

    def _tip_body(self, delivery: Delivery) -> str:
        tips = [item.tip for item in delivery.items if item.tip is not None]
        if not tips:
            raise ValueError("a Canvas tip post without a tip")
        tip = tips[0]
        refs = [r for r in tip.refs if r != tip.section]
        return template_env().get_template("canvas/announcement.html.j2").render(
            headline=tip.title,
            body_html=Markup(render_markdown(tip.body)),
            citation=" · ".join([tip.section, *refs]),
            section_link=self.links.click(delivery.id, section_url(self.base_url, tip.policy.slug, tip.section)),
            ack_url=self.links.ack(delivery.id),
            marker=delivery.payload["marker"],
        )

    def _notice_body(self, delivery: Delivery) -> str:
        notice = next((item.notice for item in delivery.items if item.notice is not None), None)
        if notice is None:
            raise ValueError("a Canvas notice post without a notice")
        version = notice.policy_version
        return template_env().get_template("canvas/notice.html.j2").render(
            policy_title=version.policy.title,
            version=version.label,
            due_on=f"{notice.due_on.day} {notice.due_on:%B %Y}",
            summary=safe_summary(notice.summary),
            policy_link=self.links.click(delivery.id, f"{self.base_url}/policies/{version.policy.slug}"),
            ack_url=self.links.ack(delivery.id, f"notice:{notice.id}"),
            marker=delivery.payload["marker"],
        )


# ------------------------------------------------------------------ read receipts


@dataclass
class ReadSync:
    checked: int = 0
    recorded: int = 0
    errors: list[str] = field(default_factory=list)


def sync_reads(
    session: Session, settings: Settings, api: CanvasAPI, week: str, *, sleep=time.sleep
) -> ReadSync:
    """Record a ``canvas_read`` event once per person and posted announcement of ``week``.

    Needs a token that may masquerade (``as_user_id``): Canvas only reports
    ``read_state`` for the calling user. Calls are spread out to stay under
    the throttle.
    """
    result = ReadSync()
    posts = session.execute(
        select(Delivery.id, Delivery.provider_message_id, CanvasAnnouncement.course_id)
        .join(CanvasAnnouncement, CanvasAnnouncement.delivery_id == Delivery.id)
        .where(Delivery.channel == CHANNEL, Delivery.status == "sent", CanvasAnnouncement.period_key == week)
    ).all()
    people = session.execute(
        select(Person.id, Person.canvas_user_id).where(Person.active.is_(True), Person.canvas_user_id.is_not(None))
    ).all()
    known = set(session.scalars(
        select(EngagementEvent.provider_event_id).where(EngagementEvent.provider_event_id.like("canvas-read:%"))
    ))
    for delivery_id, topic_id, course_id in posts:
        for person_id, user_id in people:
            event_id = f"canvas-read:{topic_id}:{user_id}"
            if event_id in known:
                continue
            try:
                state = api.read_state(course_id, int(topic_id), int(user_id))
            except CanvasConfigError as exc:
                result.errors.append(str(exc))
                return result
            except CanvasUnavailable as exc:
                result.errors.append(str(exc))
                continue
            result.checked += 1
            if state == "read":
                session.add(EngagementEvent(delivery_id=delivery_id, person_id=person_id, kind="canvas_read",
                                            source="canvas", is_machine=False, reason="read_state via as_user_id",
                                            provider_event_id=event_id, at=utcnow()))
                known.add(event_id)
                result.recorded += 1
                note_human_signals(session, [(person_id, utcnow())])
            sleep(settings.canvas_sync_interval)
    session.flush()
    return result


# ------------------------------------------------------------------ roster


@dataclass
class RosterMatch:
    matched: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def match_roster(session: Session, settings: Settings, api: CanvasAPI) -> RosterMatch:
    """Fill missing canvas_user_ids by finding roster emails among the account's users."""
    result = RosterMatch()
    people = session.scalars(
        select(Person).where(Person.active.is_(True), Person.canvas_user_id.is_(None)).order_by(Person.email)
    ).all()
    for person in people:
        found = [u for u in api.find_users(settings.canvas_account_id, person.email)
                 if person.email in (u.login_id.lower(), u.email.lower())]
        if len(found) == 1:
            person.canvas_user_id = found[0].id
            result.matched.append(person.email)
        else:
            result.unmatched.append(person.email)
    session.flush()
    return result
