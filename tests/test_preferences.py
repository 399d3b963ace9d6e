"""Preferences without an account, in a real browser: each person opens the link in their own
digest's footer and sets one preference; the next week shows its effect."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import select

from service import reports, usecases
from service.doubles.canvas import CanvasDouble
from service.models import Delivery, Person
from service.web.app import create_app
from tests.conftest import LiveServer
from tests.readers import Clock
from tests.test_browser import browser, pytestmark  # noqa: F401 - the Chromium fixture and its skip rule

CHICAGO = ZoneInfo("America/Chicago")
MONDAY = date(2026, 11, 30)
WEDNESDAY_PERSON, ON_LEAVE, CANVAS_ONLY = ("chloe.martin@example.org", "kwame.asante@example.org",
                                           "maria.okafor@example.org")


def local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), CHICAGO).astimezone(UTC)


def digests(factory, week: str) -> dict[str, int]:
    with factory() as s:
        return dict(s.execute(select(Person.email, Delivery.id).join(Person, Person.id == Delivery.person_id)
                              .where(Delivery.kind == "digest", Delivery.period_key == week)).tuples().all())


def footer_link(outbox: Path, delivery_id: int) -> str:
    message = email.message_from_bytes((outbox / "digest" / f"{delivery_id:08d}.eml").read_bytes(),
                                       policy=email.policy.default)
    return re.search(r"Your email preferences \(digest day, leave, Canvas only\): (\S+)",
                     message.get_body(("plain",)).get_content()).group(1)


def test_each_preference_set_through_the_footer_link_shows_in_the_next_week(factory, loaded, web_settings,
                                                                            browser) -> None:
    with CanvasDouble() as canvas:
        canvas.add_course(101)
        settings = web_settings.model_copy(update={
            "canvas_api_url": canvas.url, "canvas_api_key": SecretStr(canvas.token), "canvas_course_ids": [101]})
        clock = Clock(local(MONDAY, 8))
        dispatcher = usecases.dispatcher(factory, settings, clock=clock)

        def week_at(moment: datetime) -> None:
            clock.now = moment
            usecases.send_week(factory, settings, moment)
            dispatcher.drain()

        week_at(local(MONDAY, 8))
        first = digests(factory, "2026-W49")
        outbox = Path(settings.outbox_dir)
        with LiveServer(create_app(settings, factory, clock=clock)) as live:
            page = browser.new_page()
            choices = {
                WEDNESDAY_PERSON: lambda: page.select_option("#digest_day", "wednesday"),
                ON_LEAVE: lambda: page.fill("#leave_until", "2026-12-11"),
                CANVAS_ONLY: lambda: page.check("#canvas_only"),
            }
            for who, choose in choices.items():
                page.goto(footer_link(outbox, first[who]).replace(settings.base_url, live.url))
                assert who in page.inner_text("main")
                choose()
                page.get_by_role("button", name="Save my preferences").click()
                assert page.inner_text("#saved").startswith("Saved")
            page.goto(live.url + "/prefs/not-a-token")
            assert "This link is not valid" in page.inner_text("body")  # a forged link changes nothing

        next_monday = MONDAY + timedelta(weeks=1)
        week_at(local(next_monday, 8))
        monday_digests = digests(factory, "2026-W50")
        assert len(monday_digests) == len(first) - 3  # the three wait, pause, or read Canvas
        assert not {WEDNESDAY_PERSON, ON_LEAVE, CANVAS_ONLY} & set(monday_digests)
        assert len(canvas.announcements(101)) == 2  # the Canvas-only reader's tips are there
        week_at(local(next_monday + timedelta(days=2), 8))
        assert WEDNESDAY_PERSON in digests(factory, "2026-W50")  # Wednesday, as chosen
        dispatcher.close()
    with factory() as s:
        rows = {r.email: r for r in reports.engagement(s, reports.Window.week("2026-W50", CHICAGO), new_hire_days=14)}
    assert rows[ON_LEAVE].status == "on leave" and not rows[ON_LEAVE].reachable
    with factory() as s:  # what the supervisor reads in the weekly summary
        lead = s.scalar(select(Person).where(Person.email == "aiko.tanaka@example.org"))
        payload = reports.summary_payload(s, lead, "2026-W50", CHICAGO, next_monday + timedelta(days=4),
                                          new_hire_days=14)
    assert {p["email"]: p["why"] for p in payload["people"]}[ON_LEAVE] == "on leave"
    week_at_three = MONDAY + timedelta(weeks=2)
    usecases.send_week(factory, settings, local(week_at_three, 8))
    assert ON_LEAVE in digests(factory, "2026-W51")  # back from leave: the digests resume
