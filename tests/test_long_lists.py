"""Pages over long lists: a district's team or notice reaches thousands, so they show 200 people
at a time, with figures counted by the database for everyone (not for the page shown)."""

from __future__ import annotations

import email
import re
from email import policy
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from service import reports, usecases
from service.channels.outbox import OutboxChannel
from service.engagement import is_engaged, is_reachable
from service.models import Delivery, Person
from service.paths import CONTENT_DIR
from service.web.app import create_app
from service.web.context import Paging
from tests.conftest import LiveServer, store_policy

ADMIN_TOKEN = "t0ken-long-enough-for-a-dashboard"
NOW = datetime(2026, 11, 24, 16, tzinfo=UTC)
PEOPLE = 449


def test_paging_keeps_to_the_list() -> None:
    assert (Paging.of("3", 449).offset, Paging.of("3", 449).shown) == (400, "401–449 of 449")
    assert [Paging.of(asked, 449).number for asked in (None, "", "0", "x", "-1", "9" * 30, "99")] == [1, 1, 1, 1, 1,
                                                                                                       1, 3]
    assert Paging.of(None, 0).shown == "0 of 0" and Paging.of(None, 0).last == 1


def test_a_big_team_and_a_notice_are_paged_with_counts_for_everyone(factory, settings, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("email,name,role,department,supervisor_email,timezone,canvas_user_id\n"
                      "head@x.org,Hana Head,administrator,,,,\n"
                      + "".join(f"t{i:03d}@x.org,Teacher {i:03d},teacher,,head@x.org,,\n" for i in range(PEOPLE - 1)))
    usecases.import_people(factory, roster, now=datetime(2026, 1, 5, tzinfo=UTC))
    with factory() as s, s.begin():
        store_policy(s)
    usecases.publish_policy_version(factory, settings, CONTENT_DIR / "policies" / "social-media-v2.txt",
                                    slug="social-media", label="2", now=NOW)
    admin = settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN), "secret_key": SecretStr("k")})
    with factory() as s:
        head = s.scalar(select(Person.id).where(Person.email == "head@x.org"))
    with LiveServer(create_app(admin, factory)) as server, \
            httpx.Client(base_url=server.url, follow_redirects=True) as client:
        assert client.post("/admin/login", data={"token": ADMIN_TOKEN}).status_code == 200
        first = client.get(f"/admin/teams/{head}").text
        assert "Showing 1–200 of 448" in first and first.count('href="/admin/people/') == 200
        assert 'id="team-reachable">448<' in first  # the rate counts the whole team, not the page
        last = client.get(f"/admin/teams/{head}", params={"page": "3"}).text
        assert "Showing 401–448 of 448" in last and last.count('href="/admin/people/') == 48
        assert "Teacher 447" in last and "Teacher 000" not in last
        assert "Showing 1–200 of 448" in client.get(f"/admin/teams/{head}", params={"page": "x"}).text
        notice = client.get("/admin/notices/1")
        assert notice.status_code == 200 and "0 of 449 confirmed" in notice.text
        assert "Showing 201–400 of 449" in client.get("/admin/notices/1", params={"page": 2}).text
        assert len(re.findall(r"not yet", client.get("/admin/notices/1", params={"page": 3}).text)) == 49


def test_a_district_heads_summary_lists_the_lowest_teams_and_the_most_pressing_people(
        factory, settings, tmp_path: Path) -> None:
    """60 leads with a teacher each: the head's email shows 50 teams, lowest first, and 50 people,
    and says how many more the team page has (a district's 5,000 teams once went in whole)."""
    roster = tmp_path / "roster.csv"
    roster.write_text("email,name,role,department,supervisor_email,timezone,canvas_user_id\n"
                      "head@x.org,Hana Head,administrator,,,,\n"
                      + "".join(f"l{i:02d}@x.org,Lead {i:02d},administrator,,head@x.org,,\n"
                                f"t{i:02d}@x.org,Teacher {i:02d},teacher,,l{i:02d}@x.org,,\n" for i in range(60)))
    usecases.import_people(factory, roster, now=datetime(2026, 1, 5, tzinfo=UTC))
    with factory() as s, s.begin():
        store_policy(s)
    usecases.publish_policy_version(factory, settings, CONTENT_DIR / "policies" / "social-media-v2.txt",
                                    slug="social-media", label="2", now=NOW)  # pending: there is something to say
    usecases.dispatcher(factory, settings, {"email": OutboxChannel(settings)}, clock=lambda: NOW).drain()
    friday, monday = datetime(2026, 11, 27, 22, tzinfo=UTC), datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert "head@x.org" in usecases.weekly_summaries(factory, settings, friday).recipients
    usecases.dispatcher(factory, settings, {"email": OutboxChannel(settings)}, clock=lambda: monday).drain()
    with factory() as s:
        head = s.scalar(select(Delivery.id).join(Person).where(Delivery.kind == "summary",
                                                                Person.email == "head@x.org"))
    message = email.message_from_bytes((Path(settings.outbox_dir) / "summary" / f"{head:08d}.eml").read_bytes(),
                                       policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    assert "By team, lowest first:" in text and "And 10 more teams: see them all on your team page." in text
    assert len(re.findall(r"^  Lead \d\d \(1 person\)", text, re.M)) == 50
    assert len(re.findall(r"^  - (Lead|Teacher) \d\d:", text, re.M)) == 50  # nobody has engaged: all 120 listed
    assert "And 70 more people: see everyone on your team page." in text
    html = message.get_body(("html",)).get_content()
    assert "And 70 more people" in html and html.count("<td>Lead ") + html.count("<td>Teacher ") == 100


def test_the_database_judges_engaged_and_reachable_as_the_one_definition_does(factory, settings, team) -> None:
    """Reports judge each person in SQL; the escalation rules use the Python definition: they agree."""
    with factory() as s:
        rows = reports.engagement(s, reports.Window.week(WEEK, CHICAGO), new_hire_days=14, active_only=False)
        joined = dict(s.execute(select(Person.id, Person.joined_at)).tuples().all())
        active = dict(s.execute(select(Person.id, Person.active)).tuples().all())
    assert len(rows) == 9 and {r.status for r in rows} >= {"engaged", "opened only", "undeliverable", "escalated"}
    for row in rows:
        assert row.engaged == is_engaged(clicks=row.clicks, acks=row.acks, canvas_reads=row.canvas_reads, answers=row.answers)
        assert row.reachable == is_reachable(active=active[row.id], undeliverable=row.undeliverable,
                                             joined_at=joined[row.id], as_of=WEEK_END, new_hire_days=14,
                                             on_leave=row.on_leave)


from tests.test_reports import CHICAGO, WEEK, at, team  # noqa: E402,F401 - the hand-made week of signals

WEEK_END = at(7, 0)
