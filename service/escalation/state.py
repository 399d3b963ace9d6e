"""Loading what one escalation pass needs to decide: plain values, read in a few queries.

Nothing here decides; :mod:`service.escalation.decide` does, without a database.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.orm import Session

from service.db import NOTICE_ROWS, in_ids
from service.escalation.facts import (
    NEVER_ENGAGED, NOTICE_REASONS, NoticeFacts, Rung, StaffMember, State, notice_in,
)
from service.models import Acknowledgement, Delivery, DeliveryItem, Escalation, Notice, Person, Policy, PolicyVersion


def load(session: Session, never_engaged_digests: int) -> State:
    """Read the state of the ladder and of everyone it may touch. Core statements, rows as
    tuples: a district's pass reads a few hundred thousand rows, and the ORM's handling of
    them was most of a steady day's pass."""
    db = session.connection()
    people = {row[0]: StaffMember(*row) for row in db.execute(select(
        Person.id, Person.email, Person.name, Person.supervisor_id, Person.active, Person.joined_at,
        Person.undeliverable_since, Person.undeliverable_reason, Person.last_engaged_at, Person.silent_digests,
        Person.silent_since, Person.leave_until)).all()}
    rungs = db.execute(select(
        Escalation.person_id, Escalation.reason, Escalation.subject, Escalation.level, Escalation.opened_at,
        Escalation.notified_person_id, Escalation.notified_email, Escalation.notified_at, Escalation.resolved_at,
        Escalation.resolution).order_by(Escalation.id)).all()
    every_rung = [Rung((person_id, reason, subject, level), *rest) for person_id, reason, subject, level, *rest in rungs]
    open_rungs = [r for r in every_rung if r.resolved_at is None]
    nudged = {r.person_id for r in open_rungs if r.reason == NEVER_ENGAGED and r.level == 0}
    silent = [p for p in people.values()
              if p.silent_digests >= never_engaged_digests and p.silent_since and p.id not in nudged]
    return State(
        people=people,
        all_keys={r.key for r in every_rung},
        open_rungs=open_rungs,
        notified_rungs=[r for r in every_rung if r.level >= 1],
        notices={row[0]: NoticeFacts(*row) for row in db.execute(
            select(Notice.id, Notice.created_at, Notice.due_on, Policy.title)
            .join(PolicyVersion, PolicyVersion.id == Notice.policy_version_id).join(Policy)).all()},
        unconfirmed=_unconfirmed(db),
        confirmed=_confirmed(db),
        digests_since_nudge=_digests_since_nudge(db),
        digests_since_silence=_digests_since_silence(db, silent),
    )


def _unconfirmed(db: Connection) -> dict[int, list[int]]:
    """Who got each notice and has not confirmed it: everyone sent it, except the confirmations
    (one set difference; probing the confirmations once per recipient took twice as long)."""
    found: dict[int, list[int]] = defaultdict(list)
    sent = (select(DeliveryItem.notice_id, Delivery.person_id).join(Delivery)
            .where(DeliveryItem.notice_id.is_not(None), NOTICE_ROWS, Delivery.person_id.is_not(None),
                   Delivery.status != "failed"))
    confirmed = select(Acknowledgement.notice_id, Acknowledgement.person_id).where(
        Acknowledgement.notice_id.is_not(None))
    unconfirmed = sent.except_(confirmed).subquery()
    for notice_id, person_id in db.execute(select(unconfirmed).order_by(*unconfirmed.c)).all():
        found[notice_id].append(person_id)  # in order: the pass goes through them in order
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
