"""People's engagement aggregates: the last engagement and the silent streak since.

They are derived values: :func:`refresh` computes them from the events (and the monthly
archive of pruned ones) and the sent digests, for some people or for everyone (`nudge
engagement rebuild`). Every path that settles an engaging signal refreshes its people;
a sent digest only lengthens a streak (:func:`note_digests_sent`), which is what a
refresh would compute, since no engagement can come after a digest sent now.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from service.db import in_ids
from service.engagement.definition import ENGAGING_KINDS, OPEN
from service.models import Delivery, EngagementArchive, EngagementEvent, Person

CHUNK = 5000


def engaging(event=EngagementEvent) -> ColumnElement[bool]:
    """SQL: the event is engagement, a settled human signal of an engaging kind
    (:mod:`service.engagement.definition`). Reports and aggregates all filter with it."""
    return and_(event.kind.in_(ENGAGING_KINDS), event.is_machine.is_(False), event.settled.is_(True))


def human_open(event=EngagementEvent) -> ColumnElement[bool]:
    return and_(event.kind == OPEN, event.is_machine.is_(False))


def _last_kept():
    """Per person (correlated): the latest engaging event still stored."""
    return select(func.max(EngagementEvent.at)).where(EngagementEvent.person_id == Person.id, engaging()) \
        .scalar_subquery()


def _last_pruned():
    """Per person (correlated): the latest engaging event summed into the archive by the prune."""
    return select(func.max(EngagementArchive.last_at)).where(
        EngagementArchive.person_id == Person.id, EngagementArchive.kind.in_(ENGAGING_KINDS),
        EngagementArchive.is_machine.is_(False)).scalar_subquery()


def _silent_digests():
    """Digests sent to the person since their last engagement (all of them if they never engaged)."""
    return and_(Delivery.person_id == Person.id, Delivery.kind == "digest", Delivery.status == "sent",
                or_(Person.last_engaged_at.is_(None), Delivery.sent_at >= Person.last_engaged_at))


def refresh(session: Session, person_ids: Collection[int] | None = None) -> int:
    """Recompute the aggregates of ``person_ids`` (everyone when None) from what is stored.

    Returns how many people were refreshed."""
    if person_ids is not None and not person_ids:
        return 0
    chunks = [None] if person_ids is None else [
        sorted(person_ids)[start:start + CHUNK] for start in range(0, len(person_ids), CHUNK)]
    touched = 0
    for chunk in chunks:
        which = [] if chunk is None else [in_ids(session, Person.id, chunk)]
        touched += session.execute(update(Person).where(*which).values(last_engaged_at=_last_kept())
                                   .execution_options(synchronize_session=False)).rowcount or 0
        pruned = _last_pruned()
        session.execute(update(Person).where(*which, pruned.is_not(None), or_(
            Person.last_engaged_at.is_(None), pruned > Person.last_engaged_at)).values(last_engaged_at=pruned)
            .execution_options(synchronize_session=False))
        session.execute(update(Person).where(*which).values(
            silent_digests=select(func.count()).where(_silent_digests()).scalar_subquery(),
            silent_since=select(func.min(Delivery.sent_at)).where(_silent_digests()).scalar_subquery(),
        ).execution_options(synchronize_session=False))
    return touched


def note_digests_sent(session: Session, person_ids: list[int], at: datetime) -> None:
    """A sent digest lengthens its reader's silent streak (until an engagement ends it)."""
    if not person_ids:
        return
    session.execute(
        update(Person).where(in_ids(session, Person.id, person_ids))
        .values(silent_digests=Person.silent_digests + 1, silent_since=func.coalesce(Person.silent_since, at))
        .execution_options(synchronize_session=False))


def snapshot(session: Session) -> dict[int, tuple[datetime | None, int, datetime | None]]:
    """Every person's aggregates, for comparing an incremental state with a rebuilt one."""
    return {pid: (last, silent, since) for pid, last, silent, since in session.execute(
        select(Person.id, Person.last_engaged_at, Person.silent_digests, Person.silent_since))}
