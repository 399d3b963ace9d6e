"""Read-only summaries of what is stored, computed in SQL."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from service.models import Delivery, EngagementEvent, Person, Policy, PolicyVersion, Tip


@dataclass
class Status:
    people_by_role: list[tuple[str, int, int]]  # role, active, inactive
    teams: list[tuple[str, str, int]]  # supervisor name, email, active reports
    tips_by_section: list[tuple[str, str, int, int]]  # policy slug, section, active, inactive
    policies: list[tuple[str, str, int, str | None]]  # slug, title, versions, latest label
    deliveries: list[tuple[str, str, int]]  # kind, status, count
    engagement: list[tuple[str, bool, int]]  # kind, is_machine, count
    undeliverable: list[tuple[str, str | None]]  # email, reason


def status_summary(session: Session) -> Status:
    people_by_role = [
        (role, int(active or 0), int(total - (active or 0)))
        for role, active, total in session.execute(
            select(
                Person.role,
                func.sum(case((Person.active.is_(True), 1), else_=0)),
                func.count(),
            )
            .group_by(Person.role)
            .order_by(Person.role)
        )
    ]
    report = aliased(Person)
    teams = list(
        session.execute(
            select(Person.name, Person.email, func.count(report.id))
            .join(report, report.supervisor_id == Person.id)
            .where(report.active.is_(True))
            .group_by(Person.id, Person.name, Person.email)
            .order_by(Person.name)
        ).tuples()
    )
    tips_by_section = [
        (slug, section, int(active or 0), int(total - (active or 0)))
        for slug, section, active, total in session.execute(
            select(
                Policy.slug,
                Tip.section,
                func.sum(case((Tip.active.is_(True), 1), else_=0)),
                func.count(),
            )
            .join(Policy, Tip.policy_id == Policy.id)
            .group_by(Policy.slug, Tip.section)
            .order_by(Policy.slug, func.min(Tip.position))
        )
    ]
    latest_label = (
        select(PolicyVersion.label)
        .where(PolicyVersion.policy_id == Policy.id)
        .order_by(PolicyVersion.sequence.desc())
        .limit(1)
        .correlate(Policy)
        .scalar_subquery()
    )
    version_count = (
        select(func.count(PolicyVersion.id)).where(PolicyVersion.policy_id == Policy.id).scalar_subquery()
    )
    policies = list(
        session.execute(
            select(Policy.slug, Policy.title, version_count, latest_label).order_by(Policy.slug)
        ).tuples()
    )
    deliveries = list(
        session.execute(
            select(Delivery.kind, Delivery.status, func.count())
            .group_by(Delivery.kind, Delivery.status)
            .order_by(Delivery.kind, Delivery.status)
        ).tuples()
    )
    engagement = list(
        session.execute(
            select(EngagementEvent.kind, EngagementEvent.is_machine, func.count())
            .group_by(EngagementEvent.kind, EngagementEvent.is_machine)
            .order_by(EngagementEvent.kind, EngagementEvent.is_machine)
        ).tuples()
    )
    undeliverable = list(
        session.execute(
            select(Person.email, Person.undeliverable_reason)
            .where(Person.active.is_(True), Person.undeliverable_since.is_not(None))
            .order_by(Person.email)
        ).tuples()
    )
    return Status(people_by_role, teams, tips_by_section, policies, deliveries, engagement, undeliverable)
