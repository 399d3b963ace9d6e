"""Composing digests: timing (DST, timezones), calendar blackouts, idempotency, new hires, preview."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from service.weeks import Blackout, SchoolCalendar, calendar_for, load_calendar, send_moment
from service.digests import compose, preview
from service.errors import InputErrors
from service.models import Delivery, DeliveryItem, Person
from service.roster import import_roster
from tests.conftest import REPO, store_policy

NO_BREAKS = SchoolCalendar()
ROSTER = (
    "email,name,role,department,supervisor_email,timezone,canvas_user_id\n"
    "chi@x.org,Chi Cago,teacher,,,America/Chicago,\n"
    "nyc@x.org,New York,coach,,chi@x.org,America/New_York,\n"
    "lon@x.org,Lon Don,staff,,chi@x.org,Europe/London,\n"
    "def@x.org,Dee Fault,staff,,chi@x.org,,\n"
)


@pytest.fixture
def small(factory, tmp_path: Path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    with factory() as s, s.begin():
        store_policy(s)
        import_roster(s, path)
    return factory


def tick_hourly(factory, settings, start: datetime, hours: int, calendar=NO_BREAKS) -> None:
    for hour in range(hours):
        with factory() as s, s.begin():
            compose(s, settings, start + timedelta(hours=hour), calendar)


def digests(factory) -> dict[str, list[tuple[str, datetime]]]:
    with factory() as s:
        rows = s.execute(
            select(Person.email, Delivery.period_key, Delivery.created_at)
            .join(Person, Person.id == Delivery.person_id)
            .where(Delivery.kind == "digest")
            .order_by(Delivery.period_key)
        ).all()
    out: dict[str, list[tuple[str, datetime]]] = {}
    for email, week, created in rows:
        out.setdefault(email, []).append((week, created))
    return out


@pytest.mark.parametrize(
    "start,weeks",
    [
        (datetime(2026, 3, 2, 6, tzinfo=UTC), ["2026-W10", "2026-W11"]),   # US spring forward, Sun 8 March
        (datetime(2026, 10, 26, 6, tzinfo=UTC), ["2026-W44", "2026-W45"]),  # US fall back, Sun 1 November
    ],
)
def test_dst_weeks_get_exactly_one_digest_at_local_send_time(small, settings, start, weeks) -> None:
    tick_hourly(small, settings, start, 14 * 24)
    got = digests(small)
    for email in ("chi@x.org", "nyc@x.org", "lon@x.org", "def@x.org"):
        assert [w for w, _ in got[email]] == weeks, email
    # each was composed at the first hourly tick at or after Monday 07:30 local
    for week, created in got["chi@x.org"]:
        moment = send_moment(week, ZoneInfo("America/Chicago"), settings)
        assert moment <= created < moment + timedelta(hours=1)
        local = created.astimezone(ZoneInfo("America/Chicago"))
        assert (local.weekday(), local.hour) == (0, 8)  # first whole-hour tick after 07:30


def test_timezones_decide_when_a_digest_is_due(small, settings) -> None:
    monday = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # 07:00 in London, 01:00 in Chicago
    with small() as s, s.begin():
        result = compose(s, settings, monday, NO_BREAKS)
    assert result.composed == 0 and result.not_due == 4
    with small() as s, s.begin():
        result = compose(s, settings, monday + timedelta(minutes=30), NO_BREAKS)  # 07:30 London
    assert result.composed == 1
    assert list(digests(small)) == ["lon@x.org"]


def test_blackout_weeks_are_skipped_without_catch_up(small, settings) -> None:
    calendar = load_calendar(REPO / "content" / "calendar.yaml")
    tick_hourly(small, settings, datetime(2026, 12, 14, 0, tzinfo=UTC), 4 * 7 * 24, calendar)
    got = digests(small)
    # ticking starts on Sunday evening in Chicago, after that week's send time: W50 is due at once
    assert [w for w, _ in got["chi@x.org"]] == ["2026-W50", "2026-W51", "2027-W01"]  # W52, W53: winter break


def test_rerun_is_harmless_and_new_hires_start_from_the_top(small, settings, tmp_path) -> None:
    week = "2026-W49"
    with small() as s, s.begin():
        first = compose(s, settings, datetime(2026, 12, 1, tzinfo=UTC), NO_BREAKS, week=week)
    with small() as s, s.begin():
        again = compose(s, settings, datetime(2026, 12, 1, tzinfo=UTC), NO_BREAKS, week=week)
    assert (first.composed, again.composed, again.already) == (4, 0, 4)
    with small() as s, s.begin():
        compose(s, settings, datetime(2026, 12, 8, tzinfo=UTC), NO_BREAKS, week="2026-W50")
        hire = tmp_path / "hire.csv"
        hire.write_text(ROSTER.splitlines()[0] + "\nnew@x.org,New Hire,staff,,chi@x.org,,\n", encoding="utf-8")
        import_roster(s, hire, partial=True)
    with small() as s, s.begin():
        compose(s, settings, datetime(2026, 12, 15, tzinfo=UTC), NO_BREAKS, week="2026-W51")
    with small() as s:
        def tips_of(email: str, week: str) -> list[int]:
            return list(s.scalars(
                select(DeliveryItem.tip_id).join(Delivery).join(Person, Person.id == Delivery.person_id)
                .where(Person.email == email, Delivery.period_key == week, DeliveryItem.tip_id.is_not(None))
                .order_by(DeliveryItem.position)
            ))
        # same role, so the new hire's first digest is the veteran's first digest
        assert tips_of("new@x.org", "2026-W51") == tips_of("def@x.org", "2026-W49")
        assert tips_of("def@x.org", "2026-W51") != tips_of("def@x.org", "2026-W49")
        assert len(tips_of("def@x.org", "2026-W51")) == settings.tips_per_digest


def test_dry_run_counts_and_writes_nothing(small, settings) -> None:
    with small() as s, s.begin():
        result = compose(s, settings, datetime(2026, 12, 1, tzinfo=UTC), NO_BREAKS, week="2026-W49", dry_run=True)
        s.rollback()
    assert result.composed == 4
    with small() as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0


def test_role_specific_tips_only_reach_their_roles(small, settings) -> None:
    for n in range(12):
        with small() as s, s.begin():
            monday = date(2026, 9, 7) + timedelta(weeks=n)
            compose(s, settings, datetime.combine(monday, datetime.min.time(), UTC), NO_BREAKS,
                    week=f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}")
    with small() as s:
        rows = s.execute(
            select(Person.role, DeliveryItem.tip_id)
            .join(Delivery, Delivery.person_id == Person.id).join(DeliveryItem).where(DeliveryItem.tip_id.is_not(None))
        ).all()
        from service.models import Tip
        tips = {t.id: t for t in s.scalars(select(Tip))}
    for role, tip_id in rows:
        assert tips[tip_id].is_for(role)
    staff_tips = {t for r, t in rows if r == "staff"}
    assert not any(tips[t].key == "team-group-chats" for t in staff_tips)  # a coaches-only tip


def test_preview_equals_the_composed_digest(small, settings) -> None:
    with small() as s, s.begin():
        before = preview(s, settings, "CHI@x.org", datetime(2026, 12, 1, tzinfo=UTC), week="2026-W49")
    assert "not composed yet" in before.note
    with small() as s, s.begin():
        compose(s, settings, datetime(2026, 12, 1, tzinfo=UTC), NO_BREAKS, week="2026-W49")
    with small() as s, s.begin():
        after = preview(s, settings, "chi@x.org", datetime(2026, 12, 1, tzinfo=UTC), week="2026-W49")
    assert "is composed" in after.note
    assert after.message.subject == before.message.subject
    assert after.message.subject.startswith("This week: ")
    # the same tips and question in the same order (only token values differ before composing)
    import re
    strip = lambda html: re.sub(r"/(o|c|ack|prefs|q)/[A-Za-z0-9_.-]+", "/TOKEN", html)  # noqa: E731
    assert strip(after.message.html) == strip(before.message.html)


def test_calendar_errors_name_the_entry(tmp_path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text("blackouts:\n  - {name: Oops, start: 2026-12-21, end: 2026-12-01}\n  - {name: Bad}\n")
    with pytest.raises(InputErrors) as info:
        load_calendar(path)
    assert info.value.problems == [
        "blackout #1 (Oops): end is before start",
        "blackout #2: needs name, start and end dates (YYYY-MM-DD)",
    ]


def test_the_shipped_calendar_loads(settings) -> None:
    calendar = calendar_for(settings)
    assert calendar.blackout_on(date(2026, 12, 28)) == Blackout("Winter break 2026", date(2026, 12, 21), date(2027, 1, 1))
    assert calendar.blackout_on(date(2026, 11, 30)) is None
