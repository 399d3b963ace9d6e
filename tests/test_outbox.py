"""Outbox leases and per-kind semantics, at the level of the claim functions."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from service import outbox
from service.models import Delivery, DeliveryItem, Notice, Person, Policy, PolicyVersion, Tip
from service.outbox import NoticeRef, OutboxMessage, TipRef

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def make_rows(session, kinds: list[str]) -> list[int]:
    person = Person(email="p@x.org", name="P", role="staff", joined_at=T0)
    session.add(person)
    session.flush()
    rows = [Delivery(person_id=person.id, kind=k, period_key=f"k{i}", channel="email", next_attempt_at=T0)
            for i, k in enumerate(kinds)]
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


def claim_ids(session, worker: str, now, limit: int) -> list[int]:
    return [row.id for row in outbox.claim(session, worker, now, limit, 60, {"email"})]


def test_claim_leases_rows_once(session) -> None:
    ids = make_rows(session, ["digest"] * 5)
    first = claim_ids(session, "a", T0, 3)
    second = claim_ids(session, "b", T0, 10)
    assert len(first) == 3 and sorted(first + second) == ids
    assert claim_ids(session, "c", T0, 10) == []


def test_expired_leases_follow_the_kind_semantics(session) -> None:
    digest, notice, unsent = make_rows(session, ["digest", "notice", "digest"])
    claimed = outbox.claim(session, "dead", T0, 10, 60, {"email"})
    assert [(row.id, row.kind, row.channel, row.attempts) for row in claimed] == [
        (digest, "digest", "email", 0), (notice, "notice", "email", 0), (unsent, "digest", "email", 0)]
    assert outbox.mark_sending(session, [digest, notice], "dead", T0, 60) == [digest, notice]
    later = T0 + timedelta(seconds=61)
    assert outbox.give_up_unconfirmed(session, later) == 1
    reclaimed = outbox.claim(session, "alive", later, 10, 60, {"email"})
    # at least once: the notice goes again; the unsent digest too
    assert [(row.id, row.attempts) for row in reclaimed] == [(notice, 1), (unsent, 0)]
    rows = {d.id: d for d in session.scalars(select(Delivery).execution_options(populate_existing=True))}
    assert rows[digest].status == "unconfirmed" and "at most once" in rows[digest].last_error
    assert rows[notice].attempts == 1  # counted when the dead dispatcher started sending


def test_results_only_touch_rows_still_owned(session) -> None:
    (row,) = make_rows(session, ["notice"])
    outbox.claim(session, "old", T0, 1, 60, {"email"})
    outbox.mark_sending(session, [row], "old", T0, 60)
    outbox.claim(session, "new", T0 + timedelta(seconds=61), 1, 60, {"email"})
    outbox.mark_sending(session, [row], "new", T0 + timedelta(seconds=61), 60)
    from service.channels import Result

    counts, sent = outbox.record_results(session, [(row, Result.sent("late"))], {row: 1}, "old", T0, 8)
    assert counts == {"sent": 0} and sent == []  # the row belongs to "new" now: untouched
    status = session.scalar(select(Delivery.status).where(Delivery.id == row))
    assert status == "sending"


def test_backoff_grows_with_jitter_and_respects_retry_after() -> None:
    rng = random.Random(1)
    delays = [outbox.backoff_seconds(n, rng=rng) for n in range(1, 9)]
    assert 15 <= delays[0] <= 30
    assert all(b >= a * 0.9 or b >= 1800 for a, b in zip(delays, delays[1:]))
    assert max(delays) <= outbox.BACKOFF_CAP_SECONDS
    assert outbox.backoff_seconds(1, retry_after=600, rng=rng) == 600


def tip_and_notice(session) -> tuple[int, int]:
    policy = Policy(slug="p", title="P")
    version = PolicyVersion(policy=policy, label="1", sequence=1, text="t", content_hash="h")
    tip = Tip(key="t", policy=policy, section="S", title="T", body="b", position=0)
    session.add_all([tip, version])
    session.flush()
    notice = Notice(policy_version_id=version.id, due_on=T0.date())
    session.add(notice)
    session.flush()
    return tip.id, notice.id


def test_enqueue_writes_mixed_items_once_and_ignores_a_second_queueing(session) -> None:
    tip, notice = tip_and_notice(session)
    person = Person(email="p@x.org", name="P", role="staff", joined_at=T0)
    session.add(person)
    session.flush()
    messages = [OutboxMessage("reminder", "notice:1:d7", T0, person_id=person.id, items=(NoticeRef(notice),)),
                OutboxMessage("nudge", "nudge:1", T0, person_id=person.id, items=(TipRef(tip), TipRef(tip))),
                OutboxMessage("escalation", "2026-W49", T0, recipient="admin:a@x.org")]
    queued = outbox.enqueue(session, messages + messages[:1])
    assert [q.message.kind for q in queued] == ["reminder", "nudge", "escalation"]
    assert outbox.enqueue(session, messages) == []  # the unique keys decide
    items = session.execute(select(Delivery.kind, DeliveryItem.position, DeliveryItem.tip_id, DeliveryItem.notice_id)
                            .join(DeliveryItem).order_by(Delivery.id, DeliveryItem.position)).all()
    assert items == [("reminder", 0, None, notice), ("nudge", 0, tip, None), ("nudge", 1, tip, None)]


def test_a_message_goes_to_a_person_or_a_recipient() -> None:
    with pytest.raises(ValueError):
        OutboxMessage("digest", "2026-W49", T0)
    with pytest.raises(ValueError):
        OutboxMessage("digest", "2026-W49", T0, person_id=1, recipient="admin:a@x.org")
    with pytest.raises(TypeError):
        OutboxMessage("digest", "2026-W49", T0, person_id=1, items=(7,))


@pytest.mark.parametrize("refs", [{}, {"both": True}])
def test_delivery_items_refuse_both_or_neither_reference(session, refs) -> None:
    tip, notice = tip_and_notice(session)
    [delivery] = make_rows(session, ["digest"])
    values = {"delivery_id": delivery, "position": 0} | ({"tip_id": tip, "notice_id": notice} if refs else {})
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.execute(insert(DeliveryItem).values(**values))


def test_a_send_that_outlives_its_dispatcher_on_every_attempt_is_quarantined(session) -> None:
    """A message that kills each dispatcher sending it (at least once) is resent only while it has
    attempts left, then failed with the reason; at-most-once rows are never resent at all."""
    [notice] = make_rows(session, ["notice"])
    now = T0
    for worker in range(3):
        assert outbox.quarantine_dead_sends(session, now, 3) == 0
        assert claim_ids(session, f"w{worker}", now, 10) == [notice]
        assert outbox.mark_sending(session, [notice], f"w{worker}", now, 60) == [notice]
        now += timedelta(seconds=61)  # the dispatcher died during the send
    assert outbox.quarantine_dead_sends(session, now, 3) == 1
    assert claim_ids(session, "w3", now, 10) == []
    row = session.get(Delivery, notice)
    session.refresh(row)
    assert (row.status, row.attempts) == ("failed", 3) and "quarantined" in row.last_error
