"""Tracking endpoints over real HTTP: pixel, click redirect, acknowledge page, tokens."""

import base64
import re
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from service import canvas
from service.weeks import SchoolCalendar
from service.digests import compose
from service import usecases
from service.usecases import dispatcher as make_dispatcher
from service.models import Acknowledgement, AppSecret, Delivery, EngagementEvent, Person, utcnow
from service.engagement import ACK, CLICK, OPEN, Links, Rules, Signer, TokenData, signing_keys
from tests.conftest import REPO

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
HUMAN = {"User-Agent": CHROME}
WEEK = "2026-W49"


@pytest.fixture
def sent(factory, loaded, web_settings):
    """This week's digests, composed and sent an hour ago (to the outbox folder)."""
    an_hour_ago = utcnow() - timedelta(hours=1)
    with factory() as s, s.begin():
        compose(s, web_settings, an_hour_ago, SchoolCalendar(), week=WEEK)
    make_dispatcher(factory, web_settings, clock=lambda: an_hour_ago).drain()
    with factory() as s:
        return {p.email: d.id for d, p in s.execute(select(Delivery, Person).join(Person, Person.id == Delivery.person_id))}


@pytest.fixture
def links(web_settings) -> Links:
    return Links(web_settings.base_url, Signer(web_settings.secret_keys))


def local(url: str, live) -> str:
    return url.replace("http://nudge.test", live.url)


def events(factory, live=None) -> list[EngagementEvent]:
    if live is not None:
        live.app.state.opens.flush()  # opens are written in batches
    with factory() as s:
        return list(s.scalars(select(EngagementEvent).order_by(EngagementEvent.id)))


def test_the_email_links_are_signed_tracking_links(sent, web_settings, tmp_path) -> None:
    eml = next((tmp_path / "outbox" / "digest").glob("*.eml")).read_text()
    urls = re.findall(r"http://nudge\.test/[^\s\"<>]+", eml)
    assert any("/o/" in u for u in urls) and any("/c/" in u for u in urls) and any("/ack/" in u for u in urls)
    assert not any("@" in u or "%40" in u for u in urls)  # no email in any URL


def test_pixel_records_an_open_and_always_answers_a_gif(factory, sent, links, live) -> None:
    delivery = sent["chloe.martin@example.org"]
    good = httpx.get(local(links.pixel(delivery), live), headers=HUMAN)
    assert good.status_code == 200 and good.headers["content-type"] == "image/gif"
    assert good.headers["cache-control"].startswith("no-store") and good.content.startswith(b"GIF89a")
    for bad in ("/o/garbage.gif", "/o/" + links.signer.sign(TokenData(CLICK, delivery, "https://x")) + ".gif",
                local(links.pixel(delivery), live).replace(".gif", "x.gif")):
        answer = httpx.get(bad if bad.startswith("http") else live.url + bad, headers=HUMAN)
        assert (answer.status_code, answer.content) == (200, good.content)  # no oracle
    stored = events(factory, live)
    assert [(e.kind, e.is_machine, e.delivery_id) for e in stored] == [("open", False, delivery)]
    assert stored[0].ip_hash and "127.0.0.1" not in stored[0].ip_hash


def test_proxy_and_head_requests_are_machine_opens(factory, sent, links, live) -> None:
    url = local(links.pixel(sent["chloe.martin@example.org"]), live)
    httpx.get(url, headers={"User-Agent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"})
    httpx.head(url, headers=HUMAN)
    assert [(e.is_machine, e.reason) for e in events(factory, live)] == [
        (True, "Gmail image proxy"), (True, "HEAD request")]


def test_click_redirects_to_the_signed_target_only(factory, sent, links, live) -> None:
    delivery = sent["chloe.martin@example.org"]
    target = "http://nudge.test/policies/social-media#references"
    answer = httpx.get(local(links.click(delivery, target), live), headers=HUMAN)
    assert answer.status_code == 302 and answer.headers["location"] == target
    body, tag = links.click(delivery, target).rsplit("/", 1)[1].split(".")
    forged_body = base64.urlsafe_b64encode(f"c{delivery}|https://evil.example".encode()).rstrip(b"=").decode()
    for attempt in (f"/c/{forged_body}.{tag}", "/c/https:%2F%2Fevil.example", "/c/", f"/c/{body}",
                    "/c/" + links.signer.sign(TokenData(CLICK, delivery, "javascript:alert(1)")),
                    "/c/" + Signer(["someone-else"]).sign(TokenData(CLICK, delivery, "https://evil.example"))):
        answer = httpx.get(live.url + attempt, headers=HUMAN)
        assert answer.status_code == 404 and "location" not in answer.headers, attempt
    assert [(e.kind, e.target) for e in events(factory)] == [("click", target)]


def test_a_burst_of_clicks_is_a_scanner_even_on_one_url_and_counts_only_once_settled(
        factory, sent, links, live, web_settings) -> None:
    delivery = sent["chloe.martin@example.org"]
    for target in ("https://example.org/0", "https://example.org/0", "https://example.org/1"):
        httpx.get(local(links.click(delivery, target), live), headers=HUMAN)
    assert [(e.is_machine, e.settled) for e in events(factory)] == [(False, False)] * 3  # not judged yet
    usecases.settle_signals(factory, web_settings, utcnow() + timedelta(seconds=15))  # the settler's next round
    assert [(e.is_machine, e.settled) for e in events(factory)] == [(True, True)] * 3  # the first one too
    assert events(factory)[0].reason == "burst: 3 clicks within 2s"
    with factory() as s:
        assert s.scalar(select(Person.last_engaged_at).where(Person.email == "chloe.martin@example.org")) is None


def test_a_get_never_acknowledges_and_a_post_does_once(factory, sent, links, live) -> None:
    delivery = sent["chloe.martin@example.org"]
    url = local(links.ack(delivery), live)
    page = httpx.get(url, headers={"User-Agent": "Mozilla/5.0 (compatible; SafeLinks/1.0)"})
    assert page.status_code == 200 and "Yes, I've read it" in page.text and 'method="post"' in page.text
    httpx.get(url, headers=HUMAN)
    with factory() as s:
        assert s.scalars(select(Acknowledgement)).all() == []
    first = httpx.post(url, headers=HUMAN)
    second = httpx.post(url, headers=HUMAN)
    assert "Your confirmation is recorded" in first.text and "already had your confirmation" in second.text
    with factory() as s:
        acks = s.scalars(select(Acknowledgement)).all()
    assert [(a.subject, a.delivery_id) for a in acks] == [(f"delivery:{delivery}", delivery)]
    assert [(e.kind, e.is_machine) for e in events(factory)] == [("ack", False)]


def test_forged_ack_tokens_are_refused(factory, sent, links, live) -> None:
    delivery = sent["chloe.martin@example.org"]
    for token in ("nonsense", links.signer.sign(TokenData(OPEN, delivery)),
                  Signer(["x"]).sign(TokenData(ACK, delivery)), links.signer.sign(TokenData(ACK, 999999))):
        assert httpx.get(f"{live.url}/ack/{token}").status_code == 404
        assert httpx.post(f"{live.url}/ack/{token}").status_code == 404
    assert events(factory) == []


def test_a_shared_canvas_post_acknowledges_only_through_a_personal_link(factory, sent, web_settings, links,
                                                                       live) -> None:
    """Anyone can type a colleague's address on a shared page: it only ever sends that colleague a
    link of their own, and the page answers the same for known and unknown addresses."""
    with factory() as s, s.begin():
        settings = web_settings.model_copy(update={"canvas_api_url": "http://canvas", "canvas_course_ids": [101],
                                                   "canvas_api_key": web_settings.secret_key})
        canvas.compose_weekly(s, settings, utcnow() - timedelta(days=1), SchoolCalendar(), week=WEEK)
        post = s.scalar(select(Delivery).where(Delivery.channel == "canvas"))
    url = local(links.ack(post.id), live)
    assert 'type="email"' in httpx.get(url).text
    unknown = httpx.post(url, data={"email": "stranger@example.org"}, headers=HUMAN)
    known = httpx.post(url, data={"email": "Grace.Mbeki@example.org"}, headers=HUMAN)
    assert unknown.status_code == known.status_code == 200 and unknown.text == known.text
    assert "If this address is on our staff list" in known.text

    def confirmations() -> list[Delivery]:
        with factory() as s:
            return list(s.scalars(select(Delivery).where(Delivery.kind == "confirm")))

    deadline = time.monotonic() + 5
    while not confirmations() and time.monotonic() < deadline:
        time.sleep(0.1)
    [link] = confirmations()  # the known address only, and nothing acknowledged yet
    with factory() as s:
        assert s.get(Person, link.person_id).email == "grace.mbeki@example.org"
        assert s.scalars(select(Acknowledgement)).all() == []
    assert httpx.post(url, data={"email": "grace.mbeki@example.org"}, headers=HUMAN).status_code == 200
    time.sleep(1.5)
    assert len(confirmations()) == 1  # one a day per person and post

    make_dispatcher(factory, web_settings, clock=utcnow).drain()
    email = next(path for path in (Path(web_settings.outbox_dir) / "confirm").glob("*.eml"))
    personal = re.search(r"(http://nudge\.test/ack/\S+)", email.read_text()).group(1)
    assert httpx.post(local(personal, live), headers=HUMAN).status_code == 200
    with factory() as s:
        ack = s.scalars(select(Acknowledgement)).one()
        person = s.get(Person, ack.person_id)
    assert person.email == "grace.mbeki@example.org" and ack.subject == f"delivery:{post.id}"


def test_health_metrics_and_policy_page(factory, sent, links, live) -> None:
    from service.content import import_version

    with factory() as s, s.begin():
        import_version(s, REPO / "content" / "policies" / "social-media-v1.txt", slug="social-media", label="1")
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok", "database": "ok"}
    httpx.get(local(links.pixel(sent["chloe.martin@example.org"]), live), headers=HUMAN)
    live.app.state.opens.flush()
    metrics = httpx.get(f"{live.url}/metrics").text
    assert 'nudge_tracking_signals_total{kind="open",machine="false"} 1.0' in metrics
    assert re.search(r'nudge_open_queue\{process="\d+"\} 0\.0', metrics)  # the pixel's write queue, observed
    assert re.search(r'nudge_opens_written\{process="\d+"\} 1\.0', metrics)
    policy = httpx.get(f"{live.url}/policies/social-media")
    assert policy.status_code == 200 and 'id="employee-student-relations"' in policy.text
    assert httpx.get(f"{live.url}/policies/nope").status_code == 404


# ------------------------------------------------------------------ tokens

SIGNER = Signer(["current-key", "previous-key"])
TOKENS = st.builds(TokenData, st.sampled_from([OPEN, CLICK, ACK]), st.integers(1, 10**9),
                   st.sampled_from(["", "https://example.org/a?b=c", "notice:7"]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=TOKENS, position=st.integers(0, 200), replacement=st.characters(codec="ascii"))
def test_a_mutated_token_is_never_accepted(data, position, replacement) -> None:
    token = SIGNER.sign(data)
    assert SIGNER.verify(token) == data
    index = position % len(token)
    mutated = token[:index] + replacement + token[index + 1 :]
    if mutated != token:
        verified = SIGNER.verify(mutated)
        # base64 padding bits can absorb a change in the last character; then the data is identical
        assert verified is None or verified == data


@given(junk=st.text(max_size=200))
def test_junk_never_verifies(junk) -> None:
    assert SIGNER.verify(junk) is None


def test_rotation_old_tokens_still_verify_new_ones_use_the_first_key() -> None:
    old = Signer(["previous-key"]).sign(TokenData(OPEN, 5))
    assert SIGNER.verify(old) == TokenData(OPEN, 5)
    assert Signer(["previous-key"]).verify(SIGNER.sign(TokenData(OPEN, 5))) is None
    assert Signer(["gone"]).verify(old) is None


def test_without_a_configured_key_one_is_generated_once(session, settings, caplog) -> None:
    first = signing_keys(session, settings)
    second = signing_keys(session, settings)
    assert first == second and len(first[0]) >= 32
    assert len(session.scalars(select(AppSecret)).all()) == 1
    assert "NUDGE_SECRET_KEY is not set" in caplog.text


def test_queued_opens_survive_a_failed_write_and_are_written_on_stop(factory, sent, web_settings) -> None:
    from service.web.opens import OpenRecorder, PendingOpen

    recorder = OpenRecorder(factory, Rules.from_settings(web_settings), interval=60)
    delivery = sent["chloe.martin@example.org"]
    recorder.queue.append(PendingOpen(delivery, "GET", CHROME, "198.51.100.1", "h", utcnow()))
    original = recorder._write
    recorder._write = lambda batch: (_ for _ in ()).throw(RuntimeError("database restarting"))
    with pytest.raises(RuntimeError):
        recorder.flush()
    assert len(recorder.queue) == 1  # kept for the next try
    recorder._write = original
    recorder.add(PendingOpen(delivery, "GET", CHROME, "198.51.100.1", "h", utcnow()))
    recorder.add(PendingOpen(999999, "GET", CHROME, "198.51.100.1", "h", utcnow()))  # no such delivery
    recorder.stop()
    assert recorder.written == 2 and not recorder.queue
    assert [(e.kind, e.is_machine) for e in events(factory)] == [("open", False), ("open", False)]
