"""Property: the aggregates and the weekly roll-up kept incrementally by the ingest paths equal
the ones rebuilt from the events, and the trend's weekly totals the roll-up's cells, for random
streams of digests, clicks (bursts too), acknowledgements, and SendGrid events that arrive late,
twice, or flagged as machine opens."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from sqlalchemy import func, select

from service import usecases
from service.engagement import Rules, Signal, record_ack, record_click, refresh, snapshot, weekly
from service.engagement.webhook import ingest
from service.models import Delivery, Person
from tests.conftest import store_policy
from tests.readers import CHROME, GATEWAY

START = datetime(2026, 9, 7, 13, tzinfo=UTC)
RULES = Rules()
examples = itertools.count()

person = st.integers(0, 2)
action = st.one_of(
    st.tuples(st.just("digest")),
    st.tuples(st.just("click"), person, st.sampled_from([CHROME, GATEWAY])),
    st.tuples(st.just("burst"), person, st.integers(2, 4), st.integers(1, 900)),  # clicks, ms apart
    st.tuples(st.just("ack"), person),
    st.tuples(st.just("webhook"), person, st.sampled_from(["open", "click"]), st.integers(0, 86_400),
              st.booleans(), st.booleans()),  # seconds late, machine open, sent twice
    st.tuples(st.just("settle")),
    st.tuples(st.just("wait"), st.integers(1, 3 * 86_400)),
)


def latest_digest(factory, email: str) -> int | None:
    with factory() as s:
        return s.scalar(select(Delivery.id).join(Person, Person.id == Delivery.person_id)
                        .where(Person.email == email, Delivery.kind == "digest").order_by(Delivery.id.desc()))


@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=st.lists(action, min_size=1, max_size=14))
def test_incremental_aggregates_equal_the_rebuilt_ones(factory, settings, tmp_path: Path, stream) -> None:
    n = next(examples)
    if n == 0:  # the policy first: a tip is sent only against a text that holds its quotes
        with factory() as s, s.begin():
            store_policy(s)
    emails = [f"p{i}-{n}@x.org" for i in range(3)]
    roster = tmp_path / f"roster-{n}.csv"
    roster.write_text("email,name,role,department,supervisor_email,timezone,canvas_user_id\n"
                      + "".join(f"{e},P {e},teacher,,,,\n" for e in emails))
    usecases.import_people(factory, roster, now=START - timedelta(days=60), partial=True)
    now = START + timedelta(weeks=60 * n)
    event_ids = itertools.count()
    last_event: dict | None = None
    for step in stream:
        kind = step[0]
        if kind == "digest":
            now += timedelta(weeks=1)
            usecases.send_week(factory, settings, now, week=f"{now.isocalendar()[0]}-W{now.isocalendar()[1]:02d}")
            usecases.dispatcher(factory, settings, clock=lambda moment=now: moment).drain()
            continue
        if kind == "settle":
            usecases.settle_signals(factory, settings, now)
            continue
        if kind == "wait":
            now += timedelta(seconds=step[1])
            continue
        delivery = latest_digest(factory, emails[step[1]])
        if delivery is None:
            continue
        with factory() as s, s.begin():
            if kind == "click":
                record_click(s, RULES, delivery, "https://example.org/a", Signal("GET", step[2], None, None, now))
            elif kind == "burst":
                for k in range(step[2]):
                    moment = now + timedelta(milliseconds=step[3] * k)
                    record_click(s, RULES, delivery, f"https://example.org/{k % 2}",
                                 Signal("GET", CHROME, None, None, moment))
            elif kind == "ack":
                record_ack(s, s.get(Delivery, delivery), f"delivery:{delivery}", s.get(Delivery, delivery).person_id,
                           Signal("POST", CHROME, None, None, now), default_zone=settings.timezone)
            else:
                _, _, event, late, machine, twice = step
                body = {"event": event, "sg_event_id": f"e{n}-{next(event_ids)}", "delivery_id": str(delivery),
                        "timestamp": int((now - timedelta(seconds=late)).timestamp()), "useragent": CHROME,
                        "sg_machine_open": machine, "url": "https://example.org/a"}
                batch = [body, body] if twice else [body]
                if last_event is not None and twice:
                    batch.append(last_event)  # SendGrid repeats an earlier batch's event
                ingest(s, RULES, json.dumps(batch).encode(), now)
                last_event = body
        now += timedelta(seconds=1)
    usecases.settle_signals(factory, settings, now + timedelta(minutes=1))
    with factory() as s:
        incremental, weeks = snapshot(s), weekly.snapshot(s)
        sent = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent"))
        assert trend_totals(s, weeks) == counted(weeks)
    assert sent or not any(step[0] == "digest" for step in stream)  # the digests really went out
    with factory() as s, s.begin():
        refresh(s)
        weekly.rebuild(s, settings.timezone, now, settings.retention_days)
    with factory() as s:
        assert snapshot(s) == incremental
        assert weekly.snapshot(s) == weeks
        assert trend_totals(s, weeks) == counted(weeks)
    usecases.weekly_summaries(factory, settings, now)  # hourly: folds the totals
    with factory() as s:
        assert trend_totals(s, weeks) == counted(weeks)


def counted(cells: dict) -> dict[str, tuple[int, int]]:
    """Per week: its delivered cells and, of them, the engaged, counted from the cells."""
    found: dict[str, tuple[int, int]] = {}
    for (_, week), (delivered, *_, engaged) in cells.items():
        if delivered:
            n, e = found.get(week, (0, 0))
            found[week] = (n + 1, e + int(engaged))
    return found


def trend_totals(s, cells: dict) -> dict[str, tuple[int, int]]:
    """The same, as the trend reads them from the totals the database keeps (weeks that add up to nothing left out)."""
    return {week: total for week, total in weekly.totals(s, sorted({week for _, week in cells})).items()
            if total != (0, 0)}
