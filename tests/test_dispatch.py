"""Dispatching the outbox through each email channel, with retries and concurrency."""

import email
import re
import threading
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
from sqlalchemy import func, select, update

from service.channels.sendgrid import SendGridChannel
from service.weeks import SchoolCalendar
from service.digests import compose
from service.usecases import dispatcher as make_dispatcher
from service.doubles.sendgrid import Fault
from service.models import Delivery, Person, Tip
from tests.conftest import REPO, add_people, store_policy
from tests.test_rendering import _Tags

WEEK = "2026-W49"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def prepare(factory, settings, people: int, role: str = "teacher", now: datetime = NOW) -> None:
    with factory() as s, s.begin():
        store_policy(s)
    add_people(factory, people, role)
    with factory() as s, s.begin():
        compose(s, settings, now, SchoolCalendar(), week=WEEK)


def statuses(factory) -> dict[str, int]:
    with factory() as s:
        return dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).tuples().all())


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_sendgrid_sends_1000_digests_in_at_most_two_calls(factory, sendgrid_settings, sendgrid_double) -> None:
    prepare(factory, sendgrid_settings, 1000)
    dispatcher = make_dispatcher(factory, sendgrid_settings, clock=Clock(NOW))
    stats = dispatcher.drain()
    assert stats.sent == 1000
    assert len(sendgrid_double.requests) <= 2
    assert len(sendgrid_double.emails) == 1000
    assert len({e.to_email for e in sendgrid_double.emails}) == 1000
    for body in sendgrid_double.requests:
        tracking = body["tracking_settings"]
        assert tracking["click_tracking"]["enable"] is False and tracking["open_tracking"]["enable"] is False
        assert len(body["personalizations"]) <= 1000
    with factory() as s:
        rows = {d.id: d for d in s.scalars(select(Delivery).where(Delivery.status == "sent"))}
        emails = {p.id: p.email for p in s.scalars(select(Person))}
    assert len(rows) == 1000 and all(d.provider_message_id for d in rows.values())
    for received in sendgrid_double.emails:
        delivery = rows[int(received.custom_args["delivery_id"])]
        assert emails[delivery.person_id] == received.to_email
        assert received.custom_args["kind"] == "digest"


def test_the_email_sendgrid_delivers_is_exactly_the_local_rendering(factory, sendgrid_settings, sendgrid_double) -> None:
    prepare(factory, sendgrid_settings, 5)
    make_dispatcher(factory, sendgrid_settings, clock=Clock(NOW)).drain()
    from service.digests import preview

    for received in sendgrid_double.emails:
        with factory() as s, s.begin():
            local = preview(s, sendgrid_settings, received.to_email, NOW, week=WEEK).message
        assert received.subject == local.subject
        assert received.html == local.html
        assert received.text == local.text
        assert "-pn_" not in received.html and "-pn_" not in received.text


def test_429_then_success_honours_retry_after(factory, sendgrid_settings, sendgrid_double) -> None:
    prepare(factory, sendgrid_settings, 20)
    sendgrid_double.inject(Fault(status=429, retry_after=120))
    clock = Clock(NOW)
    dispatcher = make_dispatcher(factory, sendgrid_settings, clock=clock)
    first = dispatcher.drain()
    assert (first.sent, first.retried) == (0, 20)
    with factory() as s:
        row = s.scalars(select(Delivery)).first()
        assert row.status == "pending" and "429" in row.last_error
        assert row.next_attempt_at >= NOW + timedelta(seconds=120)
    assert dispatcher.drain().claimed == 0  # not yet due
    clock.now = NOW + timedelta(seconds=121)
    assert dispatcher.drain().sent == 20
    assert len(sendgrid_double.emails) == 20
    assert statuses(factory) == {"sent": 20}


def test_500_and_dropped_connections_retry_until_delivered_once(factory, sendgrid_settings, sendgrid_double) -> None:
    prepare(factory, sendgrid_settings, 10)
    sendgrid_double.inject(Fault(status=500), Fault(drop=True), Fault(status=503))
    clock = Clock(NOW)
    dispatcher = make_dispatcher(factory, sendgrid_settings, clock=clock)
    for _ in range(5):
        dispatcher.drain()
        clock.now += timedelta(hours=1)
    assert statuses(factory) == {"sent": 10}
    assert sorted(e.to_email for e in sendgrid_double.emails) == sorted({e.to_email for e in sendgrid_double.emails})
    with factory() as s:
        assert set(s.scalars(select(Delivery.attempts))) == {4}


def test_400_fails_for_good_with_the_reason(factory, sendgrid_settings, sendgrid_double) -> None:
    prepare(factory, sendgrid_settings, 3)
    sendgrid_double.inject(*[Fault(status=400)] * 4)  # the batch, then each message alone
    clock = Clock(NOW)
    dispatcher = make_dispatcher(factory, sendgrid_settings, clock=clock)
    dispatcher.drain()
    clock.now += timedelta(days=1)
    dispatcher.drain()
    assert statuses(factory) == {"failed": 3}
    assert sendgrid_double.attempts == 4
    with factory() as s:
        assert "SendGrid 400" in s.scalars(select(Delivery.last_error)).first()


def test_a_batch_refused_with_400_is_sent_again_one_message_at_a_time(factory, sendgrid_settings,
                                                                       sendgrid_double) -> None:
    """One bad message makes SendGrid refuse the whole request: alone, the others go through."""
    prepare(factory, sendgrid_settings, 3)
    sendgrid_double.inject(Fault(status=400), Fault(), Fault(status=400))  # the batch; then the second alone
    make_dispatcher(factory, sendgrid_settings, clock=Clock(NOW)).drain()
    assert statuses(factory) == {"sent": 2, "failed": 1}
    assert sendgrid_double.attempts == 4


def test_wrong_api_key_pauses_email_and_keeps_the_rows(factory, sendgrid_settings, sendgrid_double) -> None:
    from service import outbox

    prepare(factory, sendgrid_settings, 2)
    sendgrid_double.api_key = "SG.other"
    make_dispatcher(factory, sendgrid_settings, clock=Clock(NOW)).drain()
    assert statuses(factory) == {"pending": 2}
    with factory() as s:
        assert "SENDGRID_API_KEY" in outbox.paused_reason(s, "email")
    assert sendgrid_double.attempts == 1  # one refused request, then the channel waits


def test_retries_are_bounded(factory, sendgrid_settings, sendgrid_double) -> None:
    prepare(factory, sendgrid_settings, 1)
    settings = sendgrid_settings.model_copy(update={"dispatch_max_attempts": 3})
    sendgrid_double.inject(*[Fault(status=500)] * 10)
    clock = Clock(NOW)
    dispatcher = make_dispatcher(factory, settings, clock=clock)
    for _ in range(6):
        dispatcher.drain()
        clock.now += timedelta(hours=2)
    assert statuses(factory) == {"failed": 1}
    assert sendgrid_double.attempts == 3


def test_outbox_backend_writes_multipart_eml_files(factory, settings, tmp_path) -> None:
    prepare(factory, settings, 3)
    make_dispatcher(factory, settings, clock=Clock(NOW)).drain()
    files = sorted((tmp_path / "outbox" / "digest").glob("*.eml"))
    assert len(files) == 3
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"].startswith("This week: ")
    assert parsed.get_content_type() == "multipart/alternative"
    html = parsed.get_body(("html",)).get_content()
    assert "Got it" in html and "/ack/" in html and "/o/" in html and 'style="' in html
    assert "@example.org" not in "".join(re.findall(r'(?:href|src)="([^"]+)"', html))


def test_every_email_has_date_a_stable_message_id_list_id_and_auto_submitted(factory, settings, tmp_path) -> None:
    settings = settings.model_copy(update={"from_email": "tips@school.example", "from_name": "Blake Staff Tips",
                                           "reply_to": "hr@school.example", "organisation": "The Blake School"})
    prepare(factory, settings, 1)
    folder = tmp_path / "outbox" / "digest"
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")  # the first attempt cannot write: the row is retried
    clock = Clock(NOW)
    dispatcher = make_dispatcher(factory, settings, clock=clock)
    dispatcher.drain()
    assert statuses(factory) == {"pending": 1}
    folder.unlink()
    clock.now = NOW + timedelta(hours=1)
    dispatcher.drain()
    [path] = folder.glob("*.eml")
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    with factory() as s:
        delivery = s.scalar(select(Delivery.id))
    assert parsed["Date"].datetime == NOW + timedelta(hours=1)  # when it was really sent
    assert parsed["Message-ID"] == f"<nudge.{delivery}.digest@school.example>"  # the same on any attempt
    assert parsed["List-Id"] == "The Blake School <policy-nudge.school.example>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert (parsed["From"], parsed["Reply-To"]) == ("Blake Staff Tips <tips@school.example>", "hr@school.example")


def test_sendgrid_requests_say_what_the_email_is(factory, sendgrid_settings, sendgrid_double) -> None:
    prepare(factory, sendgrid_settings, 1)
    make_dispatcher(factory, sendgrid_settings.model_copy(update={"reply_to": "hr@x.org"}), clock=Clock(NOW)).drain()
    [request] = sendgrid_double.requests
    assert request["headers"] == {"List-Id": "Staff Guidelines <policy-nudge.localhost>",
                                  "Auto-Submitted": "auto-generated"}
    assert request["reply_to"] == {"email": "hr@x.org"} and request["from"]["name"] == "Policy Nudge"


def test_unsafe_markup_in_a_tip_never_reaches_an_email(factory, settings, tmp_path) -> None:
    prepare(factory, settings, 1)
    with factory() as s, s.begin():
        s.execute(update(Tip).values(body="Hi <script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=y>"))
    make_dispatcher(factory, settings, clock=Clock(NOW)).drain()
    raw = next((tmp_path / "outbox" / "digest").glob("*.eml")).read_text()
    parsed = email.message_from_string(raw, policy=policy.default)
    html = parsed.get_body(("html",)).get_content()
    tags = _Tags()
    tags.feed(html)
    assert "script" not in {tag for tag, _ in tags.seen}
    for tag, attrs in tags.seen:
        for name, value in attrs:
            assert not name.startswith("on")
            assert not (value or "").lower().startswith("javascript:")
    assert len([t for t, _ in tags.seen if t == "img"]) == 1  # only our open pixel


@pytest.mark.parametrize("count,batch,people", [(2, 25, 600), (4, 4, 800)])
def test_dispatchers_at_once_send_each_row_once_on_its_first_attempt(factory, sendgrid_settings, sendgrid_double,
                                                                      count, batch, people) -> None:
    """Several dispatchers at once (four on 4-row batches: many claims meet rows another has just
    marked sending): every row is claimed and sent once, on its first attempt (none re-claimed
    from a dispatcher that was only slow), each person gets their digest once, all take part."""
    prepare(factory, sendgrid_settings, people)
    settings = sendgrid_settings.model_copy(update={"dispatch_batch_size": batch, "dispatch_lease_seconds": 30})
    sendgrid_double.inject(*[Fault(delay=0.01)] * (people // batch))
    dispatchers = [make_dispatcher(factory, settings, worker=f"w{i}", clock=Clock(NOW)) for i in range(count)]
    totals = []
    threads = [threading.Thread(target=lambda d=d: totals.append(d.drain())) for d in dispatchers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(t.sent for t in totals) == people
    assert all(t.sent > 0 for t in totals), "every dispatcher should have taken part"
    with factory() as s:
        assert set(s.scalars(select(Delivery.attempts))) == {1}
    addresses = [e.to_email for e in sendgrid_double.emails]
    assert len(addresses) == people and len(set(addresses)) == people
    assert statuses(factory) == {"sent": people}


def test_a_claim_that_outlives_its_lease_behind_a_slow_send_is_still_sent_once(factory, sendgrid_settings,
                                                                              sendgrid_double) -> None:
    """While a slow request carries one batch, the next waits claimed, past its lease here: the
    pass ends normally and each person gets their digest once."""
    prepare(factory, sendgrid_settings, 30)
    settings = sendgrid_settings.model_copy(update={"dispatch_batch_size": 10, "dispatch_lease_seconds": 1})
    sendgrid_double.inject(Fault(delay=2.0))
    stats = make_dispatcher(factory, settings, clock=Clock(NOW)).drain()
    addresses = [e.to_email for e in sendgrid_double.emails]
    assert stats.sent == 30 and len(addresses) == 30 and len(set(addresses)) == 30
    assert statuses(factory) == {"sent": 30}


@pytest.mark.parametrize("oversized", ["x" * 11_000, "é" * 6_000], ids=["ascii", "6000 characters, 12000 bytes"])
def test_sendgrid_channel_sends_oversized_values_alone(sendgrid_settings, sendgrid_double, oversized) -> None:
    """SendGrid's limit is on bytes: text whose characters fit but whose UTF-8 does not goes alone too."""
    from service.channels import Message, Skeleton

    skeleton = Skeleton(subject="-pn_s-", html="<p>-pn_body-</p>", text="-pn_body-")
    small = Message(1, "digest", "a@x.org", "A", skeleton, {"-pn_s-": "Hi", "-pn_body-": "short"}, {"delivery_id": "1"})
    big = Message(2, "digest", "b@x.org", "B", skeleton, {"-pn_s-": "Hi", "-pn_body-": oversized}, {"delivery_id": "2"})
    results = SendGridChannel(sendgrid_settings).send([small, big])
    assert [r.status for r in results] == ["sent", "sent"]
    assert len(sendgrid_double.requests) == 2
    solo = next(r for r in sendgrid_double.requests if "substitutions" not in r["personalizations"][0])
    assert oversized in solo["content"][1]["value"]
    assert {e.to_email: e.html for e in sendgrid_double.emails}["a@x.org"] == "<p>short</p>"


@pytest.mark.parametrize("count", [0, 1001])
def test_double_rejects_bad_personalization_counts(sendgrid_double, count) -> None:
    import httpx

    body = {"from": {"email": "a@x.org"}, "subject": "s", "content": [{"type": "text/plain", "value": "x"}],
            "personalizations": [{"to": [{"email": f"p{i}@x.org"}]} for i in range(count)]}
    response = httpx.post(f"{sendgrid_double.url}/v3/mail/send", json=body,
                          headers={"Authorization": f"Bearer {sendgrid_double.api_key}"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "personalizations"


def test_a_notice_to_many_shares_one_rendering_and_keeps_each_readers_name_and_links(
    factory, sendgrid_settings, sendgrid_double
) -> None:
    from service.content import import_version
    from service.notices import queue_notice
    from service.engagement import make_links

    policies = REPO / "content" / "policies"
    prepare(factory, sendgrid_settings, 600)
    with factory() as s, s.begin():
        s.execute(update(Person).where(Person.email == "p000007@example.org").values(name="<b>Zo&ë</b> O'Brien"))
        import_version(s, policies / "social-media-v1.txt", slug="social-media", label="1", now=NOW - timedelta(days=90))
        notice = import_version(s, policies / "social-media-v2.txt", slug="social-media", label="2", now=NOW).notice
        queue_notice(s, sendgrid_settings, notice, NOW)
        s.execute(update(Delivery).where(Delivery.kind == "digest").values(status="skipped"))
    settings = sendgrid_settings.model_copy(update={"dispatch_batch_size": 1000})
    assert make_dispatcher(factory, settings, clock=Clock(NOW)).drain().sent == 600
    assert len(sendgrid_double.requests) == 1  # one rendering, 600 personalizations
    with factory() as s:
        links = make_links(s, settings)
        ids = dict(s.execute(select(Person.email, Delivery.id).join(Delivery, Delivery.person_id == Person.id)
                             .where(Delivery.kind == "notice")).tuples().all())
    emails = {e.to_email: e for e in sendgrid_double.emails}
    assert len(emails) == 600
    for address in ("p000007@example.org", "p000123@example.org"):
        sent, delivery_id = emails[address], ids[address]
        assert links.ack(delivery_id, f"notice:{notice.id}") in sent.html
        assert links.ack(delivery_id, f"notice:{notice.id}") in sent.text
        assert links.pixel(delivery_id) in sent.html
        assert "-pn_" not in sent.html + sent.text
    assert "Hi &lt;b&gt;Zo&amp;ë&lt;/b&gt;," in emails["p000007@example.org"].html  # a first name, escaped
    assert "Hi <b>Zo&ë</b>," in emails["p000007@example.org"].text
    assert "Hi Person," in emails["p000123@example.org"].text
