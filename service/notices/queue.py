"""Policy-update notices: who must confirm them, and queuing them by email and in Canvas at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.outbox import NoticeRef, OutboxMessage, enqueue
from service import canvas
from service.config import Settings
from service.models import Notice, Person


def audience_of(session: Session, notice: Notice) -> list[Person]:
    query = select(Person).where(Person.active.is_(True)).order_by(Person.id)
    if "all" not in notice.audience:
        query = query.where(Person.role.in_(notice.audience))
    return list(session.scalars(query))


@dataclass
class NoticeQueued:
    emails: int = 0
    canvas_posts: int = 0


def queue_notice(session: Session, settings: Settings, notice: Notice, now: datetime) -> NoticeQueued:
    """Queue a notice at once (not on Monday): an email to everyone in the audience, a post per course.

    Both go through the outbox, at least once, keyed by the notice: queuing twice sends nothing twice.
    """
    version = notice.policy_version
    subject = f"{version.policy.title} has changed: please confirm by {notice.due_on:%-d %B}"
    inserted = enqueue(session, [
        OutboxMessage("notice", f"notice:{notice.id}", now, person_id=person.id, subject=subject,
                      payload={"notice_id": notice.id}, items=(NoticeRef(notice.id),))
        for person in audience_of(session, notice)
    ])
    queued = NoticeQueued(emails=len(inserted))
    if settings.canvas_enabled:
        for course_id in settings.canvas_course_ids:
            queued.canvas_posts += canvas.add_post(
                session, course_id, "notice", f"notice:{notice.id}", now,
                payload={"notice_id": notice.id, "section_ids": []},
                subject=f"Policy update: {version.policy.title} (version {version.label})", notice_id=notice.id,
            )
    return queued
