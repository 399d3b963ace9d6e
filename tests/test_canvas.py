"""Canvas announcements through the real canvasapi, against the Canvas double over HTTP."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from service import canvas
from service.channels.canvas import CanvasAPI, CanvasChannel
from service.channels.outbox import OutboxChannel
from service.weeks import SchoolCalendar, send_moment, week_key
from service.digests import compose
from service import usecases
from service.doubles.canvas import CanvasDouble
from service.models import ChannelPause, Delivery, EngagementEvent, Person, utcnow
from tests.helpers import run_cli

WEEK = "2026-W50"
BEFORE = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # Sunday before the week's send time
NO_BREAKS = SchoolCalendar()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def double():
    with CanvasDouble() as d:
        d.add_course(101, sections=[(11, "Teachers"), (12, "Coaches")])
        d.add_course(102)
        yield d


@pytest.fixture
def canvas_settings(settings, double):
    return settings.model_copy(update={
        "canvas_api_url": double.url, "canvas_api_key": SecretStr(double.token), "canvas_course_ids": [101, 102],
    })


def make_dispatcher(factory, settings, sleeps=None, clock=lambda: BEFORE):
    api = CanvasAPI(settings.canvas_api_url, settings.canvas_api_key.get_secret_value(),
                    sleep=sleeps if sleeps is not None else Sleeps())
    channels = {"email": OutboxChannel(settings), "canvas": CanvasChannel(settings, api)}
    return usecases.dispatcher(factory, settings, channels, clock=clock), api


def drain_two_hours_apart(factory, settings, start: datetime, rounds: int) -> None:
    """The dispatcher's rounds two hours apart on its clock, so retries come due."""
    clock = [start]
    dispatcher, _ = make_dispatcher(factory, settings, clock=lambda: clock[0])
    for _ in range(rounds):
        dispatcher.drain()
        clock[0] += timedelta(hours=2)


def compose_week(factory, settings, now=BEFORE):
    with factory() as s, s.begin():
        compose(s, settings, now, NO_BREAKS, week=WEEK)
        return canvas.compose_weekly(s, settings, now, NO_BREAKS, week=WEEK)


def canvas_rows(factory) -> list[Delivery]:
    with factory() as s:
        return list(s.scalars(select(Delivery).where(Delivery.channel == "canvas").order_by(Delivery.id)))


def test_one_announcement_per_course_per_week_and_reruns_post_nothing(factory, loaded, canvas_settings, double):
    result = compose_week(factory, canvas_settings)
    assert (result.composed, result.already) == (2, 0)
    dispatcher, _ = make_dispatcher(factory, canvas_settings)
    dispatcher.drain()
    assert [len(double.announcements(c)) for c in (101, 102)] == [1, 1]
    topic = double.announcements(101)[0]
    assert topic.title.startswith("Tip of the week: ")
    assert "/ack/" in topic.message and "Got it" in topic.message and "pn-tip-101-2026-W50" in topic.message
    assert topic.delayed_post_at == send_moment(WEEK, ZoneInfo("America/Chicago"), canvas_settings)  # appears Monday 07:30
    rows = canvas_rows(factory)
    assert {r.status for r in rows} == {"sent"}
    assert {r.provider_message_id for r in rows} == {str(t.id) for t in double.announcements()}
    # the featured tip is the one the teachers lead with this week
    with factory() as s, s.begin():
        featured = canvas.featured_tip(s, canvas_settings, WEEK, None)
    assert topic.title == f"Tip of the week: {featured.title}"
    # rerun: nothing new
    again = compose_week(factory, canvas_settings)
    assert (again.composed, again.already) == (0, 2)
    dispatcher.drain()
    assert len(double.announcements()) == 2 and len(double.discussions()) == 0


def test_a_crash_between_post_and_commit_does_not_double_post(factory, loaded, canvas_settings, double, monkeypatch):
    compose_week(factory, canvas_settings)
    clock = [BEFORE]
    dispatcher, _ = make_dispatcher(factory, canvas_settings, clock=lambda: clock[0])
    from service import outbox

    def crash(*args, **kwargs):
        raise RuntimeError("power cut after Canvas accepted the posts")

    with monkeypatch.context() as patch:
        patch.setattr(outbox, "record_results", crash)
        with pytest.raises(RuntimeError):
            dispatcher.drain()
    assert len(double.announcements()) == 2  # Canvas has them; our database does not know
    assert {r.status for r in canvas_rows(factory)} == {"sending"}
    clock[0] = BEFORE + timedelta(seconds=canvas_settings.dispatch_lease_seconds + 1)
    dispatcher.drain()
    assert len(double.announcements()) == 2  # found by their markers, not posted again
    rows = canvas_rows(factory)
    assert {r.status for r in rows} == {"sent"}
    assert {r.provider_message_id for r in rows} == {str(t.id) for t in double.announcements()}


def test_permission_trap_deletes_the_discussion_pauses_canvas_and_email_goes_on(
    factory, loaded, canvas_settings, double
):
    double.can_post_announcements = False
    compose_week(factory, canvas_settings)
    dispatcher, api = make_dispatcher(factory, canvas_settings)
    stats = dispatcher.drain()
    assert stats.sent == 40  # every digest email went out
    assert double.announcements() == [] and double.discussions() == []  # the stray discussion was deleted
    with factory() as s:
        pause = s.get(ChannelPause, "canvas")
    assert "may not post announcements in course 101" in pause.reason and "it was deleted" in pause.reason
    assert {r.status for r in canvas_rows(factory)} == {"pending"}  # waiting, not failed
    created = sum(1 for method, path, _ in double.requests if method == "POST")
    dispatcher.drain()
    assert sum(1 for method, path, _ in double.requests if method == "POST") == created  # paused: no more tries
    # the admin fixes the token's role and checks: the channel resumes and posts once
    double.can_post_announcements = True
    with factory() as s, s.begin():
        assert canvas.check_and_resume(s, canvas_settings, api) == []
    dispatcher.drain()
    assert [len(double.announcements(c)) for c in (101, 102)] == [1, 1]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"canvas_api_key": SecretStr("wrong")}, "Canvas rejected CANVAS_API_KEY (401)"),
        ({"canvas_course_ids": [101, 999]}, "could not find course 999 (404)"),
    ],
)
def test_configuration_errors_pause_canvas_with_one_clear_message(factory, loaded, canvas_settings, double,
                                                                  change, message):
    settings = canvas_settings.model_copy(update=change)
    compose_week(factory, settings)
    dispatcher, _ = make_dispatcher(factory, settings)
    stats = dispatcher.drain()
    assert stats.sent >= 40  # email unaffected
    with factory() as s:
        assert message in s.get(ChannelPause, "canvas").reason


def test_a_throttling_storm_still_posts_exactly_once_per_course(factory, loaded, canvas_settings, double):
    double.throttle_every = 3
    compose_week(factory, canvas_settings)
    sleeps = Sleeps()
    dispatcher, api = make_dispatcher(factory, canvas_settings, sleeps)
    dispatcher.drain()
    assert [len(double.announcements(c)) for c in (101, 102)] == [1, 1]
    assert api.throttled >= 1 and sleeps
    assert {r.status for r in canvas_rows(factory)} == {"sent"}


def test_server_errors_retry_and_post_once(factory, loaded, canvas_settings, double):
    double.fail_next = 2  # the first calls fail outright: retried with backoff
    double.fail_after_create = 1  # and one post is made but answered with a 502
    compose_week(factory, canvas_settings)
    drain_two_hours_apart(factory, canvas_settings, BEFORE, rounds=6)
    assert [len(double.announcements(c)) for c in (101, 102)] == [1, 1]
    assert {r.status for r in canvas_rows(factory)} == {"sent"}
    assert any("Canvas failed during an announcement" in (r.last_error or "") or r.attempts > 1
               for r in canvas_rows(factory))


def test_a_past_week_posted_today_is_posted_once(factory, loaded, canvas_settings, double):
    """An earlier week's tip posted today (Canvas was away, or the admin catches up): a post made
    but answered with a 502 is found by its marker on the retry. The marker was looked for around
    the week's Monday only, so the retry posted it again."""
    now = utcnow()
    double.fail_after_create = 1
    with factory() as s, s.begin():
        canvas.compose_weekly(s, canvas_settings, now, NO_BREAKS, week=week_key((now - timedelta(weeks=8)).date()))
    drain_two_hours_apart(factory, canvas_settings, now, rounds=4)
    assert [len(double.announcements(c)) for c in (101, 102)] == [1, 1]
    assert {r.status for r in canvas_rows(factory)} == {"sent"}


def test_low_rate_limit_remaining_slows_down_before_throttling(double):
    double.bucket, double.refill_per_second = 180.0, 0.0  # below the low-water mark after the first call
    sleeps = Sleeps()
    api = CanvasAPI(double.url, double.token, sleep=sleeps)
    api.course_name(101)
    assert sleeps == []
    api.course_name(101)
    assert sleeps == [api.backoff_seconds]


def test_role_sections_get_their_own_announcement(factory, loaded, canvas_settings, double):
    settings = canvas_settings.model_copy(update={"canvas_role_sections": {"coach": [12]}, "canvas_course_ids": [101]})
    result = compose_week(factory, settings)
    assert sorted(result.kinds) == ["tip", "tip-coach"]
    dispatcher, _ = make_dispatcher(factory, settings)
    dispatcher.drain()
    by_sections = {tuple(t.section_ids): t for t in double.announcements(101)}
    assert set(by_sections) == {(), (12,)}
    with factory() as s, s.begin():
        coach_tip = canvas.featured_tip(s, settings, WEEK, "coach")
    assert coach_tip.is_for("coach")
    assert by_sections[(12,)].title == f"Tip of the week: {coach_tip.title}"


def test_read_state_sync_records_each_read_once(factory, loaded, canvas_settings, double):
    compose_week(factory, canvas_settings)
    make_dispatcher(factory, canvas_settings)[0].drain()
    topic = double.announcements(101)[0]
    double.mark_read(topic.id, 2001)  # Chloé Martin's Canvas id in the sample roster
    double.mark_read(topic.id, 2007)
    api = CanvasAPI(double.url, double.token, sleep=Sleeps())
    synced_at = utcnow()
    with factory() as s, s.begin():
        first = canvas.sync_reads(s, canvas_settings, api, WEEK, synced_at, sleep=lambda _: None)
    with factory() as s, s.begin():
        second = canvas.sync_reads(s, canvas_settings, api, WEEK, utcnow(), sleep=lambda _: None)
    assert first.recorded == 2 and second.recorded == 0
    assert any(path.endswith(f"/discussion_topics/{topic.id}") and params.get("as_user_id") == "2001"
               for _, path, params in double.requests)
    with factory() as s:
        events = s.execute(select(Person.email, EngagementEvent.kind, EngagementEvent.is_machine)
                           .join(Person, Person.id == EngagementEvent.person_id)).all()
    assert sorted(events) == [("chloe.martin@example.org", "canvas_read", False),
                              ("kwame.asante@example.org", "canvas_read", False)]
    with factory() as s:  # a Canvas read is engagement: the readers' aggregates moved, nobody else's
        engaged = dict(s.execute(select(Person.email, Person.last_engaged_at)).tuples().all())
    assert {email for email, at in engaged.items() if at is not None} == {"chloe.martin@example.org",
                                                                          "kwame.asante@example.org"}
    assert engaged["chloe.martin@example.org"] == synced_at


def test_roster_sync_fills_missing_canvas_ids(factory, loaded, canvas_settings, double):
    double.add_user(9001, "zoe.park@example.org", "Zoë Park")
    double.add_user(9002, "someone.else@example.org", "Not on roster", login_id="LEA.DUBOIS@example.org")
    api = CanvasAPI(double.url, double.token, sleep=Sleeps())
    with factory() as s, s.begin():
        result = canvas.match_roster(s, canvas_settings, api)
    assert result.matched == ["lea.dubois@example.org", "zoe.park@example.org"]
    assert "sean.murphy@example.org" in result.unmatched
    with factory() as s:
        ids = dict(s.execute(select(Person.email, Person.canvas_user_id)).tuples().all())
    assert ids["zoe.park@example.org"] == 9001 and ids["lea.dubois@example.org"] == 9002


def test_cli_digest_send_posts_to_canvas_once(cli_env, capsys, monkeypatch, double):
    from tests.conftest import REPO

    monkeypatch.setenv("CANVAS_API_URL", double.url)
    monkeypatch.setenv("CANVAS_API_KEY", double.token)
    monkeypatch.setenv("NUDGE_CANVAS_COURSE_IDS", "101,102")
    for step in (("content", "import", str(REPO / "content" / "social_media.yaml")),
                 ("policy", "import", str(REPO / "content" / "policies" / "social-media-v1.txt"),
                  "--policy", "social-media", "--version", "1"),
                 ("roster", "import", str(REPO / "content" / "sample_roster.csv"))):
        assert run_cli(capsys, *step)[0] == 0
    code, out, err = run_cli(capsys, "digest", "send", "--week", WEEK)
    assert code == 0, err
    assert "Canvas: composed 2 announcement(s)" in out and "(canvas, email)" in out
    code, out, _ = run_cli(capsys, "digest", "send", "--week", WEEK)
    assert code == 0 and "Canvas: composed 0 announcement(s), 2 already composed" in out
    assert [len(double.announcements(c)) for c in (101, 102)] == [1, 1]
    code, out, _ = run_cli(capsys, "canvas", "check")
    assert code == 0 and "Canvas OK" in out
    monkeypatch.setenv("CANVAS_API_KEY", "wrong")
    code, _, err = run_cli(capsys, "canvas", "check")
    assert code == 1 and "Canvas rejected CANVAS_API_KEY (401)" in err
