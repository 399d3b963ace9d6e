"""Clicks settle before they count.

A link scanner clicks every link of a message within a second, often with a browser's
user agent, so a single click cannot be judged when it arrives: it is stored unsettled,
and once its message has had no new click for ``settle_seconds`` the message's clicks are
judged together by :func:`service.engagement.rules.judge` (pure). Only then do the
people's aggregates and weeks move (:mod:`service.engagement.aggregates`, :mod:`.weekly`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from service.db import in_ids
from service.engagement.aggregates import human_open, refresh
from service.engagement.weekly import recount
from service.engagement.rules import BURST, NOT_A_BROWSER, Click, Rules, Verdict, judge
from service.models import EngagementEvent


@dataclass
class Settled:
    messages: int = 0
    clicks: int = 0
    machine: int = 0
    people: int = 0


def settle(session: Session, rules: Rules, now: datetime) -> Settled:
    """Judge every message whose clicks have been quiet for the settling window; refresh its people."""
    e = EngagementEvent
    unsettled = ~e.settled  # "NOT settled": the partial index's own predicate ("IS false" read 15 million rows)
    quiet_since = now - timedelta(seconds=rules.settle_seconds)
    due = list(session.scalars(  # in id order, so two settlers lock rows in the same order (no deadlock)
        select(e.delivery_id).where(unsettled, e.delivery_id.is_not(None))
        .group_by(e.delivery_id).having(func.max(e.at) <= quiet_since).order_by(e.delivery_id)))
    result = Settled()
    for start in range(0, len(due), 2000):
        chunk = due[start:start + 2000]
        _settle_messages(session, rules, chunk, result)
    # a click with no delivery (its row was pruned) has no message to be judged with
    session.execute(update(e).where(unsettled, e.delivery_id.is_(None), e.at <= quiet_since)
                    .values(settled=True).execution_options(synchronize_session=False))
    return result


def _settle_messages(session: Session, rules: Rules, deliveries: list[int], result: Settled) -> None:
    e = EngagementEvent
    clicks: dict[int, list[Click]] = {}
    stored: dict[int, tuple[bool, str | None, bool, int | None, datetime]] = {}
    for row in session.execute(
        select(e.id, e.delivery_id, e.person_id, e.at, e.user_agent, e.is_machine, e.reason, e.settled)
        .where(in_ids(session, e.delivery_id, deliveries), e.kind == "click").order_by(e.id)
    ):
        own = _request_verdict(row.is_machine, row.reason)
        clicks.setdefault(row.delivery_id, []).append(Click(row.id, row.at, row.user_agent, own))
        stored[row.id] = (row.is_machine, row.reason, row.settled, row.person_id, row.at)
    opens: dict[int, list[datetime]] = {}
    for delivery_id, at in session.execute(
        select(e.delivery_id, e.at).where(in_ids(session, e.delivery_id, deliveries), human_open())
    ):
        opens.setdefault(delivery_id, []).append(at)
    changes, people, cells = [], set(), []
    for delivery_id, message_clicks in clicks.items():
        for click_id, verdict in judge(rules, message_clicks, opens.get(delivery_id, [])).items():
            was_machine, was_reason, was_settled, person_id, at = stored[click_id]
            if not was_settled or (was_machine, was_reason) != (verdict.is_machine, verdict.reason):
                changes.append({"cid": click_id, "machine": verdict.is_machine, "why": verdict.reason})
                people.add(person_id)
                cells.append((person_id, at))
                result.clicks += 1
                result.machine += verdict.is_machine
    if changes:
        changes.sort(key=lambda change: change["cid"])
        table = e.__table__
        session.execute(update(table).where(table.c.id == bindparam("cid"))
                        .values(is_machine=bindparam("machine"), reason=bindparam("why"), settled=True), changes)
    people.discard(None)
    result.messages += len(clicks)
    result.people += refresh(session, people)
    recount(session, cells, rules.timezone)


def _request_verdict(is_machine: bool, reason: str | None) -> Verdict:
    """A click's verdict from its request alone: what its message's judgement gave it (a burst,
    a client before any open; given only to clicks whose request looked human) is judged again."""
    if is_machine and reason is not None and (reason == NOT_A_BROWSER or reason.startswith(BURST)):
        return Verdict(False)
    return Verdict(is_machine, reason)
