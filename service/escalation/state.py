"""Loading what one escalation pass needs to decide: plain values, read in a few queries.

Nothing here decides; :mod:`service.escalation.decide` does, without a database. The load
leaves out what cannot change the decision: on a district's ordinary day most people who have
not confirmed a notice already have today's reminder (:func:`.decide.notice_step` names it),
and deciding on them, their rungs and their rows would step nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, exists, func, null, or_, select
from sqlalchemy.orm import Session, aliased

from service.config import Settings
from service.db import NOTICE_ROWS, in_ids
from service.escalation.decide import notice_step
from service.escalation.facts import (
    NEVER_ENGAGED, NOTICE_REASONS, NOTICE_REMINDER, NoticeFacts, Rung, StaffMember, State, notice_in,
)
from service.models import Acknowledgement, Delivery, DeliveryItem, Escalation, Notice, Person, Policy, PolicyVersion
from service.weeks import SchoolCalendar

STAFF = (Person.id, Person.email, Person.name, Person.supervisor_id, Person.active, Person.joined_at,
         Person.undeliverable_since, Person.undeliverable_reason, Person.last_engaged_at, Person.silent_digests,
         Person.silent_since, Person.leave_until)
RUNG = (Escalation.person_id, Escalation.reason, Escalation.subject, Escalation.level, Escalation.opened_at,
        Escalation.notified_person_id, Escalation.notified_email, Escalation.notified_at, Escalation.resolved_at,
        Escalation.resolution)


def load(session: Session, settings: Settings, as_of: datetime, calendar: SchoolCalendar) -> State:
    """Read the state of the ladder and of everyone the pass may act on as of ``as_of``. Core
    statements, rows as tuples: the ORM's handling of a district's rows was most of a pass."""
    db = session.connection()
    zone = ZoneInfo(settings.timezone)
    notices = {row[0]: NoticeFacts(*row) for row in db.execute(
        select(Notice.id, Notice.created_at, Notice.due_on, Policy.title)
        .join(PolicyVersion, PolicyVersion.id == Notice.policy_version_id).join(Policy)).all()}
    today = as_of.astimezone(zone).date()
    steps = {notice_id: notice_step(notice, today, zone, calendar, settings.reminder_days)
             for notice_id, notice in notices.items()}
    unconfirmed = _unconfirmed(db, {notice_id: step.subject for notice_id, step in steps.items()
                                    if step is not None and step.reason == NOTICE_REMINDER})
    confirmed = _confirmed(db)
    named = {p for people in unconfirmed.values() for p in people} | {p for p, _ in confirmed}
    # every rung that can move (a supervisor's, a nudge's) and every rung of the people named
    rungs = [Rung((person_id, reason, subject, level), *rest) for person_id, reason, subject, level, *rest in
             db.execute(select(*RUNG).where(or_(Escalation.level >= 1, Escalation.reason == NEVER_ENGAGED,
                                                 in_ids(db, Escalation.person_id, sorted(named))))
                        .order_by(Escalation.id)).all()]
    people = _people(db, settings.never_engaged_digests,
                     named | {r.person_id for r in rungs} | {r.notified_person_id for r in rungs} - {None})
    open_rungs = [r for r in rungs if r.resolved_at is None]
    nudged = {r.person_id for r in open_rungs if r.reason == NEVER_ENGAGED and r.level == 0}
    silent = [p for p in people.values()
              if p.silent_digests >= settings.never_engaged_digests and p.silent_since and p.id not in nudged]
    return State(
        people=people,
        all_keys={r.key for r in rungs},
        open_rungs=open_rungs,
        notified_rungs=[r for r in rungs if r.level >= 1],
        notices=notices,
        unconfirmed=unconfirmed,
        confirmed=confirmed,
        digests_since_nudge=_digests_since_nudge(db),
        digests_since_silence=_digests_since_silence(db, silent),
    )


def _people(db: Connection, never_engaged_digests: int, named: set[int]) -> dict[int, StaffMember]:
    """The people named, everyone's supervisors (the chain up), the silent long enough for a nudge
    and the undeliverable (the admin's list)."""
    report = aliased(Person)
    people = {row[0]: StaffMember(*row) for row in db.execute(select(*STAFF).where(or_(
        Person.id.in_(select(report.supervisor_id).where(report.supervisor_id.is_not(None))),
        Person.silent_digests >= never_engaged_digests,
        Person.active.is_(True) & Person.undeliverable_since.is_not(None)))).all()}
    rest = sorted(named - people.keys())
    if rest:
        people |= {row[0]: StaffMember(*row) for row in db.execute(
            select(*STAFF).where(in_ids(db, Person.id, rest))).all()}
    return people


def _unconfirmed(db: Connection, reminded: dict[int, str]) -> dict[int, list[int]]:
    """Who got each notice and has not confirmed it, less those who already have today's reminder
    of it (``reminded``: notice -> that rung's subject), in order. A notice's email is the row keyed
    "notice:<id>" and its confirmation is subject "notice:<id>": two anti-joins the database hashes."""
    d = Delivery
    confirmed = exists().where(Acknowledgement.person_id == d.person_id, Acknowledgement.subject == d.period_key)
    todays_subject = case({f"notice:{notice_id}": subject for notice_id, subject in reminded.items()},
                          value=d.period_key) if reminded else null()
    reminded_today = exists().where(Escalation.person_id == d.person_id, Escalation.reason == NOTICE_REMINDER,
                                    Escalation.level == 0, Escalation.subject == todays_subject)
    found: dict[int, list[int]] = defaultdict(list)
    for key, person_id in db.execute(
        select(d.period_key, d.person_id)
        .where(NOTICE_ROWS, d.person_id.is_not(None), d.status != "failed", ~confirmed, ~reminded_today)
        .order_by(d.period_key, d.person_id)
    ).all():
        found[notice_in(key)].append(person_id)  # in order: the pass goes through them in order
    return dict(found)


def _confirmed(db: Connection) -> set[tuple[int, int]]:
    """The open notice rungs' (person, notice) that are confirmed now: only those can close (a
    district-wide notice is confirmed by tens of thousands who have nothing open)."""
    rung, ack = Escalation, Acknowledgement
    return {(person_id, notice_in(subject)) for person_id, subject in db.execute(
        select(rung.person_id, rung.subject).join(ack, and_(
            ack.person_id == rung.person_id, ack.notice_id.is_not(None),
            or_(ack.subject == rung.subject, rung.subject.startswith(ack.subject + ":"))))  # "notice:3:d7"
        .where(rung.resolved_at.is_(None), rung.reason.in_(NOTICE_REASONS))).all()}


def _digests_since_nudge(db: Connection) -> dict[int, int]:
    nudged = select(Escalation.person_id, Escalation.opened_at).where(
        Escalation.reason == NEVER_ENGAGED, Escalation.level == 0, Escalation.resolved_at.is_(None)).subquery()
    return dict(db.execute(
        select(Delivery.person_id, func.count())
        .join(nudged, (nudged.c.person_id == Delivery.person_id) & (Delivery.sent_at > nudged.c.opened_at))
        .where(Delivery.kind == "digest", Delivery.status == "sent")
        .group_by(Delivery.person_id)
    ).tuples().all())


def _digests_since_silence(db: Connection, silent: list[StaffMember]) -> dict[int, list[tuple[datetime, int, int]]]:
    sent: dict[int, list[tuple[datetime, int, int]]] = defaultdict(list)
    for start in range(0, len(silent), 5000):
        chunk = silent[start:start + 5000]
        for person_id, position, sent_at, tip_id in db.execute(
            select(Delivery.person_id, DeliveryItem.position, Delivery.sent_at, DeliveryItem.tip_id)
            .join(Delivery)
            .where(in_ids(db, Delivery.person_id, [p.id for p in chunk]), Delivery.kind == "digest",
                   Delivery.status == "sent", Delivery.sent_at >= min(p.silent_since for p in chunk),
                   DeliveryItem.tip_id.is_not(None))
        ).all():
            sent[person_id].append((sent_at, position, tip_id))
    return dict(sent)
