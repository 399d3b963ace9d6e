"""SendGrid's signed Event Webhook, posted by the SendGrid double to the running app over HTTP."""

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from service.weeks import SchoolCalendar
from service.digests import compose
from service.usecases import dispatcher as make_dispatcher
from service.models import EngagementEvent, EngagementWeek, Person, utcnow
from tests.conftest import add_people, store_policy


@pytest.fixture
def delivered(factory, web_settings, sendgrid_double):
    """Ten digests sent through the SendGrid double an hour ago."""
    settings = web_settings.model_copy(update={"email_backend": "sendgrid", "sendgrid_host": sendgrid_double.url,
                                               "sendgrid_api_key": web_settings.secret_key})
    sendgrid_double.api_key = web_settings.secret_key.get_secret_value()
    from tests.conftest import REPO

    with factory() as s, s.begin():
        store_policy(s)
    add_people(factory, 10)
    an_hour_ago = utcnow() - timedelta(hours=1)
    with factory() as s, s.begin():
        compose(s, settings, an_hour_ago, SchoolCalendar(), week="2026-W49")
    make_dispatcher(factory, settings, clock=lambda: an_hour_ago).drain()
    assert len(sendgrid_double.emails) == 10
    return sendgrid_double.emails


def stored(factory) -> list[tuple[str, bool]]:
    with factory() as s:
        return sorted(s.execute(select(EngagementEvent.kind, EngagementEvent.is_machine)).tuples().all())


def test_a_signed_batch_with_duplicates_stores_each_event_once(factory, live, sendgrid_double, delivered) -> None:
    batch = sendgrid_double.events("delivered", delivered)
    opens = sendgrid_double.events("open", delivered[:4], useragent="Mozilla/5.0 (Windows NT 10.0) Chrome/131")
    machine = sendgrid_double.events("open", delivered[4:6], sg_machine_open=True, useragent="Mozilla/5.0")
    events = batch + opens + machine + batch[:3]  # SendGrid repeats itself
    status, answer = sendgrid_double.post_events(f"{live.url}/webhooks/sendgrid", events)
    assert status == 200 and answer["stored"] == 16 and answer["duplicates"] == 3 and answer["rejected"] == []
    status, answer = sendgrid_double.post_events(f"{live.url}/webhooks/sendgrid", events)  # a retry
    assert status == 200 and answer["stored"] == 0 and answer["duplicates"] == 19
    assert stored(factory) == sorted([("delivered", False)] * 10 + [("open", False)] * 4 + [("open", True)] * 2)


def test_an_open_repeated_within_one_batch_counts_once_in_the_weekly_roll_up(
        factory, live, sendgrid_double, delivered) -> None:
    """Found by the aggregates property test: the roll-up added every copy of a repeated open,
    though the event was stored once."""
    human = sendgrid_double.events("open", delivered[:1], useragent="Mozilla/5.0 (Windows NT 10.0) Chrome/131")
    machine = sendgrid_double.events("open", delivered[1:2], sg_machine_open=True, useragent="Mozilla/5.0")
    status, answer = sendgrid_double.post_events(f"{live.url}/webhooks/sendgrid", human + human + machine + machine)
    assert status == 200 and answer["stored"] == 2 and answer["duplicates"] == 2
    with factory() as s:
        opens = s.execute(select(func.sum(EngagementWeek.human_opens), func.sum(EngagementWeek.machine_opens))).one()
    assert tuple(opens) == (1, 1)


@pytest.mark.parametrize("how", ["bad signature", "other key", "old timestamp", "future timestamp", "unsigned"])
def test_unverifiable_batches_store_nothing(factory, live, sendgrid_double, delivered, how) -> None:
    import httpx

    events = sendgrid_double.events("delivered", delivered)
    url = f"{live.url}/webhooks/sendgrid"
    body = json.dumps(events).encode()
    now = int(time.time())
    if how == "unsigned":
        status = httpx.post(url, content=body).status_code
    elif how == "bad signature":
        status, _ = sendgrid_double.post_events(url, events, signature="MEUCIQDtamperedtampered")
    elif how == "other key":
        from service.doubles.sendgrid import SendGridDouble

        stranger = SendGridDouble()
        status, _ = sendgrid_double.post_events(url, events, signature=stranger.sign(body, str(now)))
    elif how == "old timestamp":
        status, _ = sendgrid_double.post_events(url, events, timestamp=now - 11 * 60)
    else:
        status, _ = sendgrid_double.post_events(url, events, timestamp=now + 11 * 60)
    assert status == 403
    assert stored(factory) == []


def test_a_body_changed_after_signing_is_refused(factory, live, sendgrid_double, delivered) -> None:
    import httpx

    events = sendgrid_double.events("delivered", delivered)
    stamp = str(int(time.time()))
    signature = sendgrid_double.sign(json.dumps(events).encode(), stamp)
    events[0]["event"] = "spamreport"
    answer = httpx.post(f"{live.url}/webhooks/sendgrid", content=json.dumps(events).encode(), headers={
        "X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": stamp})
    assert answer.status_code == 403 and stored(factory) == []


def test_one_malformed_event_does_not_spoil_the_batch(factory, live, sendgrid_double, delivered) -> None:
    events = sendgrid_double.events("delivered", delivered[:3])
    events.insert(1, {"event": "delivered", "timestamp": "yesterday"})
    events.append("not an object")
    events.append({**sendgrid_double.events("delivered", delivered[3:4])[0], "delivery_id": "999999"})
    events.append({**sendgrid_double.events("unsubscribe", delivered[4:5])[0]})
    status, answer = sendgrid_double.post_events(f"{live.url}/webhooks/sendgrid", events)
    assert status == 200 and answer["stored"] == 3 and answer["ignored"] == 1
    assert [r["index"] for r in answer["rejected"]] == [1, 4, 5]
    assert "no delivery for delivery_id '999999'" in answer["rejected"][2]["error"]


def test_bounces_mark_people_undeliverable_until_a_later_delivery(factory, live, sendgrid_double, delivered) -> None:
    url = f"{live.url}/webhooks/sendgrid"
    bounce = sendgrid_double.events("bounce", delivered[:1], type="bounce", reason="550 5.1.1 user unknown")
    dropped = sendgrid_double.events("dropped", delivered[1:2], reason="Bounced Address")
    spam = sendgrid_double.events("spamreport", delivered[2:3])
    soft = sendgrid_double.events("bounce", delivered[3:4], type="blocked", reason="421 try later")
    sendgrid_double.post_events(url, bounce + dropped + spam + soft)
    with factory() as s:
        flagged = dict(s.execute(select(Person.email, Person.undeliverable_reason)
                                 .where(Person.undeliverable_since.is_not(None))).tuples().all())
    assert set(flagged) == {e.to_email for e in delivered[:3]}
    assert flagged[delivered[0].to_email].startswith("bounce: bounce: 550")
    later = sendgrid_double.events("delivered", delivered[:1], at=time.time() + 5)
    sendgrid_double.post_events(url, later)
    with factory() as s:
        still = s.scalar(select(func.count()).select_from(Person).where(Person.undeliverable_since.is_not(None)))
    assert still == 2


def test_no_public_key_configured_rejects_everything(factory, web_settings, sendgrid_double, delivered) -> None:
    from service.web.app import create_app
    from tests.conftest import LiveServer

    with LiveServer(create_app(web_settings.model_copy(update={"sendgrid_webhook_public_key": None}), factory)) as srv:
        status, answer = sendgrid_double.post_events(f"{srv.url}/webhooks/sendgrid",
                                                     sendgrid_double.events("delivered", delivered))
    assert status == 403 and "not configured" in answer["error"]
    assert stored(factory) == []
