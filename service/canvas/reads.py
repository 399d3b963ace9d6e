"""Canvas read receipts, roster matching, and the settings check that resumes a paused channel."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session


from service.channels.canvas import CanvasAPI, CanvasConfigError, CanvasUnavailable
from service.config import Settings
from service.models import (
    CanvasAnnouncement,
    Delivery,
    EngagementEvent,
    Person,
)
from service.outbox import resume
from service.engagement import refresh, weekly
from service.canvas.posts import CHANNEL


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


@dataclass
class ReadSync:
    checked: int = 0
    recorded: int = 0
    errors: list[str] = field(default_factory=list)


def sync_reads(
    session: Session, settings: Settings, api: CanvasAPI, week: str, now: datetime, *, sleep=time.sleep
) -> ReadSync:
    """Record a ``canvas_read`` event once per person and posted announcement of ``week``.

    Needs a token that may masquerade (``as_user_id``): Canvas only reports
    ``read_state`` for the calling user. Calls are spread out to stay under
    the throttle.
    """
    result, readers = ReadSync(), set()
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
                                            provider_event_id=event_id, at=now))
                known.add(event_id)
                result.recorded += 1
                readers.add(person_id)
            sleep(settings.canvas_sync_interval)
    session.flush()
    refresh(session, readers)
    weekly.recount(session, [(reader, now) for reader in readers], settings.timezone)
    return result


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
