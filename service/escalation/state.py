"""Loading what one escalation pass needs to decide: plain values, read in a few queries.

Nothing here decides; :mod:`service.escalation.decide` does, without a database.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from service.db import NOTICE_ROWS, in_ids
from service.escalation.facts import (
    NEVER_ENGAGED, NOTICE_REASONS, NoticeFacts, Rung, StaffMember, State,
)
from service.models import Acknowledgement, Delivery, DeliveryItem, Escalation, Notice, Person, Policy, PolicyVersion



def load(session: Session, never_engaged_digests: int) -> State:
    """Read the state of the ladder and of everyone it may touch."""
    people = {row.id: StaffMember(*row) for row in session.execute(select(
        Person.id, Person.email, Person.name, Person.supervisor_id, Person.active, Person.joined_at,
        Person.undeliverable_since, Person.undeliverable_reason, Person.last_engaged_at, Person.silent_digests,
        Person.silent_since, Person.leave_until))}
    columns = (Escalation.person_id, Escalation.reason, Escalation.subject, Escalation.level, Escalation.opened_at,
               Escalation.notified_person_id, Escalation.notified_email, Escalation.notified_at,
               Escalation.resolved_at, Escalation.resolution)

    def rungs(*where) -> list[Rung]:
        return [Rung(tuple(row[:4]), *row[4:]) for row in
                session.execute(select(*columns).where(*where).order_by(Escalation.id))]

    open_rungs = rungs(Escalation.resolved_at.is_(None))
    nudged = {r.person_id for r in open_rungs if r.reason == NEVER_ENGAGED and r.level == 0}
    silent = [p for p in people.values()
              if p.silent_digests >= never_engaged_digests and p.silent_since and p.id not in nudged]
    return State(
        people=people,
        all_keys=set(session.execute(select(Escalation.person_id, Escalation.reason, Escalation.subject,
                                            Escalation.level)).tuples()),
        open_rungs=open_rungs,
        notified_rungs=rungs(Escalation.level >= 1),
        notices={row.id: NoticeFacts(*row) for row in session.execute(
            select(Notice.id, Notice.created_at, Notice.due_on, Policy.title)
            .join(PolicyVersion, PolicyVersion.id == Notice.policy_version_id).join(Policy))},
        unconfirmed=_unconfirmed(session),
        confirmed=_confirmed(session, {r.person_id for r in open_rungs if r.reason in NOTICE_REASONS}),
        digests_since_nudge=_digests_since_nudge(session),
        digests_since_silence=_digests_since_silence(session, silent),
    )


def _unconfirmed(session: Session) -> dict[int, set[int]]:
    confirmed_it = exists().where(Acknowledgement.person_id == Delivery.person_id,
                                  Acknowledgement.notice_id == DeliveryItem.notice_id)
    found: dict[int, set[int]] = defaultdict(set)
    for notice_id, person_id in session.execute(
        select(DeliveryItem.notice_id, Delivery.person_id).join(Delivery)
        .where(DeliveryItem.notice_id.is_not(None), NOTICE_ROWS, Delivery.person_id.is_not(None),
               Delivery.status != "failed", ~confirmed_it).distinct()
    ):
        found[notice_id].add(person_id)
    return dict(found)


def _confirmed(session: Session, people: set[int]) -> set[tuple[int, int]]:
    """Confirmations of people with an open notice rung only: a district-wide notice is confirmed by
    tens of thousands who have nothing open."""
    confirmed: set[tuple[int, int]] = set()
    ordered = sorted(people)
    for start in range(0, len(ordered), 5000):
        confirmed |= set(session.execute(
            select(Acknowledgement.person_id, Acknowledgement.notice_id)
            .where(in_ids(session, Acknowledgement.person_id, ordered[start:start + 5000]),
                   Acknowledgement.notice_id.is_not(None))).tuples())
    return confirmed


def _digests_since_nudge(session: Session) -> dict[int, int]:
    nudged = select(Escalation.person_id, Escalation.opened_at).where(
        Escalation.reason == NEVER_ENGAGED, Escalation.level == 0, Escalation.resolved_at.is_(None)).subquery()
    return dict(session.execute(
        select(Delivery.person_id, func.count())
        .join(nudged, (nudged.c.person_id == Delivery.person_id) & (Delivery.sent_at > nudged.c.opened_at))
        .where(Delivery.kind == "digest", Delivery.status == "sent")
        .group_by(Delivery.person_id)
    ).tuples().all())


def _digests_since_silence(session: Session, silent: list[StaffMember]) -> dict[int, list[tuple[datetime, int, int]]]:
    sent: dict[int, list[tuple[datetime, int, int]]] = defaultdict(list)
    for start in range(0, len(silent), 5000):
        chunk = silent[start:start + 5000]
        for person_id, position, sent_at, tip_id in session.execute(
            select(Delivery.person_id, DeliveryItem.position, Delivery.sent_at, DeliveryItem.tip_id)
            .join(Delivery)
            .where(in_ids(session, Delivery.person_id, [p.id for p in chunk]), Delivery.kind == "digest",
                   Delivery.status == "sent", Delivery.sent_at >= min(p.silent_since for p in chunk),
                   DeliveryItem.tip_id.is_not(None))
        ):
            sent[person_id].append((sent_at, position, tip_id))
    return dict(sent)
