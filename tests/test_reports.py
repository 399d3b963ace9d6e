"""Supervisor summaries and engagement reports: figures computed in SQL equal a hand count."""

import csv
import email
import re
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select, update

from service.channels.outbox import OutboxChannel
from service.weeks import SchoolCalendar
from service.digests import compose
from service.usecases import dispatcher as make_dispatcher
from service.engagement import weekly
from service.models import Delivery, EngagementEvent, EngagementWeek, EngagementWeekTotal, Escalation, Person
from service.reports import (
    STATUS_ORDER, Tally, Window, compose_summaries, engagement, subtree, summary_payload, weekly_trend, last_weeks,
)
from service.roster import import_roster
from service import usecases
from tests.conftest import REPO, store_policy
from tests.helpers import run_cli
from tests.readers import PROXY, Doors

SCANNER = "Mozilla/5.0 (compatible; SafeLinks/1.0)"

ADMIN_TOKEN = "t0ken-long-enough-for-a-dashboard"
CHICAGO = ZoneInfo("America/Chicago")
WEEK = "2026-W49"  # Monday 30 November 2026
MONDAY = date(2026, 11, 30)
ROSTER = """email,name,role,department,supervisor_email,timezone,canvas_user_id
head@x.org,Hana Head,administrator,,,,
div@x.org,Dev Division,administrator,,head@x.org,,
ann@x.org,Ann Clicks,teacher,,div@x.org,,
bob@x.org,Bob Opens,teacher,,div@x.org,,
cat@x.org,Cat Scanned,teacher,,div@x.org,,
dan@x.org,Dan Silent,teacher,,div@x.org,,
eve@x.org,Eve Bounced,teacher,,div@x.org,,
ops@x.org,Ops Lead,staff,,head@x.org,,
sam@x.org,Sam Staff,staff,,ops@x.org,,
"""


def at(day: int, hour: int) -> datetime:
    return datetime.combine(MONDAY + timedelta(days=day), time(hour), CHICAGO).astimezone(UTC)


@pytest.fixture
def team(factory, settings, tmp_path: Path):
    """Two weeks of digests and a hand-made week of signals."""
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER)
    with factory() as s, s.begin():
        store_policy(s)
        import_roster(s, path, now=datetime(2026, 1, 5, tzinfo=UTC))
    for week, monday in (("2026-W48", at(-7, 8)), (WEEK, at(0, 8))):
        with factory() as s, s.begin():
            compose(s, settings, monday, SchoolCalendar(), week=week)
        make_dispatcher(factory, settings, {"email": OutboxChannel(settings)}, clock=lambda m=monday: m).drain()
    with factory() as s:  # closed at once: an open read would block the next test's TRUNCATE on PostgreSQL
        ids = {p.email: p.id for p in s.scalars(select(Person))}
        digest = {(pid, week): d for d, pid, week in s.execute(select(Delivery.id, Delivery.person_id,
                                                                      Delivery.period_key))}
    doors = Doors(settings, factory)  # every signal through the real doors, as a reader would
    doors.open("digest", digest[ids["ann@x.org"], WEEK], at(0, 9))
    doors.click("digest", digest[ids["ann@x.org"], WEEK], at(0, 9) + timedelta(minutes=1))
    doors.open("digest", digest[ids["bob@x.org"], WEEK], at(1, 10))  # opened only: not engagement
    doors.open("digest", digest[ids["cat@x.org"], WEEK], at(0, 8) + timedelta(seconds=30), PROXY)
    doors.click("digest", digest[ids["cat@x.org"], WEEK], at(0, 8) + timedelta(seconds=31), SCANNER)
    doors.acknowledge("digest", digest[ids["sam@x.org"], WEEK], at(2, 11))
    doors.click("digest", digest[ids["dan@x.org"], "2026-W48"], at(-6, 9))  # last week only
    usecases.settle_signals(factory, settings, at(3, 0))  # what the web process does every few seconds
    with factory() as s, s.begin():
        s.execute(Person.__table__.update().where(Person.email == "eve@x.org")
                  .values(undeliverable_since=at(0, 9), undeliverable_reason="bounce"))
        s.add(Escalation(person_id=ids["dan@x.org"], reason="never_engaged", subject="since:x", level=1,
                         notified_person_id=ids["div@x.org"], notified_email="div@x.org", opened_at=at(0, 12)))
    return ids


def test_statuses_and_rate_equal_a_hand_count(factory, settings, team) -> None:
    with factory() as s:
        rows = {r.email: r for r in engagement(s, Window.week(WEEK, CHICAGO), subtree(s, team["div@x.org"]),
                                               new_hire_days=14)}
    assert {e: r.status for e, r in rows.items()} == {
        "ann@x.org": "engaged", "bob@x.org": "opened only", "cat@x.org": "machine signals only",
        "dan@x.org": "escalated", "eve@x.org": "undeliverable"}
    assert (rows["cat@x.org"].machine_opens, rows["cat@x.org"].machine_signals, rows["cat@x.org"].clicks) == (1, 2, 0)
    assert rows["dan@x.org"].last_engaged == at(-6, 9) and rows["bob@x.org"].last_engaged is None
    with factory() as s, s.begin():
        payload = summary_payload(s, s.get(Person, team["div@x.org"]), WEEK, CHICAGO, MONDAY, new_hire_days=14)
    # ann only (bob opened, which is not engagement), of the four who can be reached (eve bounced)
    assert (payload["rate"]["engaged"], payload["rate"]["reachable"]) == (1, 4)
    assert payload["counts"]["engaged"] == 1
    assert payload["rollup"] is False
    assert [p["name"] for p in payload["people"]] == ["Ann Clicks", "Bob Opens", "Cat Scanned", "Dan Silent",
                                                      "Eve Bounced"]
    # the digest's reachable readers: eve's address bounces now, so she is in no week's denominator
    assert payload["trend"] == [{"week": "2026-W48", "label": "Nov 23", "engaged": 1, "reached": 4},
                                {"week": WEEK, "label": "Nov 30", "engaged": 1, "reached": 4}]  # from the first digest


def test_a_rate_is_read_off_the_status_counts() -> None:
    """Undeliverable, on leave and new hires are the active people no rate counts; "engaged" is
    the status of exactly the reachable who engaged."""
    tally = Tally(dict(zip(STATUS_ORDER, (1, 2, 3, 4, 5, 6, 7, 8))))
    assert tally.people == 36
    assert (tally.rate.engaged, tally.rate.reachable) == (4, 30)
    assert Tally(dict.fromkeys(STATUS_ORDER, 0)).rate.share is None


def test_a_manager_of_managers_gets_a_roll_up(factory, team) -> None:
    with factory() as s, s.begin():
        payload = summary_payload(s, s.get(Person, team["head@x.org"]), WEEK, CHICAGO, MONDAY, new_hire_days=14)
    assert payload["rollup"] is True
    assert [(t["name"], t["size"], t["rate"]["text"]) for t in payload["teams"]] == [
        ("Your direct reports", 2, "0% (0 of 2 reachable)"),  # div and ops themselves
        ("Dev Division", 5, "25% (1 of 4 reachable)"), ("Ops Lead", 1, "100% (1 of 1 reachable)")]
    assert {p["name"]: p["why"] for p in payload["people"]}["Cat Scanned"] == \
        "no engagement for 2 weeks (machine signals only)"
    assert sorted(p["name"] for p in payload["people"]) == ["Cat Scanned", "Dan Silent", "Dev Division",
                                                            "Eve Bounced", "Ops Lead"]
    assert payload["rate"]["text"] == "29% (2 of 7 reachable)"  # ann and sam of the 7 reachable below head


def test_trend_is_counted_in_sql_per_week(factory, team) -> None:
    with factory() as s:
        trend = weekly_trend(s, last_weeks(WEEK, 3, CHICAGO), None, new_hire_days=14)
    assert [(p.week, p.engaged, p.reached) for p in trend] == [("2026-W47", 0, 0), ("2026-W48", 1, 8),
                                                              (WEEK, 2, 8)]


def test_summaries_once_a_week_only_with_something_to_report(factory, settings, team) -> None:
    friday = at(4, 16)
    with factory() as s, s.begin():
        early = compose_summaries(s, settings, at(4, 14))
    assert (early.composed, early.not_due) == (0, 3)
    with factory() as s, s.begin():
        first = compose_summaries(s, settings, friday)
    with factory() as s, s.begin():
        again = compose_summaries(s, settings, friday + timedelta(hours=1))
    assert sorted(first.recipients) == ["div@x.org", "head@x.org", "ops@x.org"] and again.composed == 0
    with factory() as s, s.begin():
        quiet = compose_summaries(s, settings, at(4 + 28, 16))  # a week with no digests and nothing pending
    assert quiet.composed == 0 and quiet.nothing_to_report == 3
    make_dispatcher(factory, settings, {"email": OutboxChannel(settings)}, clock=lambda: friday).drain()
    files = list((Path(settings.outbox_dir) / "summary").glob("*.eml"))
    assert len(files) == 3
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        html = message.get_body(("html",)).get_content()
        assert 'src="cid:trend-' in html and 'alt="Engagement by week:' in html
        images = [part for part in message.walk() if part.get_content_type() == "image/png"]
        assert len(images) == 1 and images[0]["Content-ID"].startswith("<trend-")
        assert images[0].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "Engagement by week (the week's Monday):\n  Nov 23:" in message.get_body(("plain",)).get_content()


def test_cli_reports(cli_env, capsys, factory, team) -> None:
    out_csv = cli_env / "engagement.csv"
    code, out, _ = run_cli(capsys, "report", "engagement", "--csv", str(out_csv), "--since", "2026-11-30",
                           "--team", "div@x.org")
    assert code == 0 and "wrote 5 people" in out
    rows = {r["email"]: r for r in csv.DictReader(out_csv.open())}
    assert {k: rows["cat@x.org"][k] for k in ("human_opens", "machine_opens", "clicks", "acks")} == {
        "human_opens": "0", "machine_opens": "1", "clicks": "0", "acks": "0"}
    assert rows["ann@x.org"]["clicks"] == "1" and rows["ann@x.org"]["last_human_signal"].startswith("2026-11-30")
    code, out, _ = run_cli(capsys, "report", "deliveries", "--csv", str(cli_env / "deliveries.csv"))
    assert code == 0 and "wrote 18 deliveries" in out
    code, out, _ = run_cli(capsys, "report", "supervisors", "--week", WEEK, "--dry-run")
    assert code == 0 and "would compose 3 supervisor summary(ies)" in out
    assert run_cli(capsys, "report", "engagement", "--csv", str(out_csv), "--team", "nobody@x.org")[0] == 1


def test_delivery_problems_page_and_streamed_csv(factory, settings, team) -> None:
    import httpx
    from pydantic import SecretStr

    from service.web.app import create_app
    from tests.conftest import LiveServer

    with factory() as s, s.begin():
        rows = s.scalars(select(Delivery).order_by(Delivery.id)).all()
        rows[0].status, rows[0].last_error = "failed", "SendGrid 400: invalid email"
        rows[1].status, rows[1].last_error = "unconfirmed", "dispatcher stopped during the send"
        rows[2].attempts = 3  # sent after retries
        problems = {rows[0].id, rows[1].id, rows[2].id}
        total = len(rows)
    admin = settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN), "secret_key": SecretStr("k")})
    with LiveServer(create_app(admin, factory)) as live, httpx.Client(base_url=live.url, follow_redirects=True) as client:
        assert client.post("/admin/login", data={"token": ADMIN_TOKEN}).status_code == 200
        page = client.get("/admin/deliveries").text
        listed = {int(i) for i in re.findall(r'data-delivery="(\d+)"', page)}
        assert listed == problems
        assert "SendGrid 400: invalid email" in page
        exported = client.get("/admin/export/deliveries.csv")
        assert exported.headers["content-type"].startswith("text/csv")
        csv_rows = list(csv.DictReader(exported.text.splitlines()))
        assert len(csv_rows) == total and {int(r["id"]) for r in csv_rows} == {r.id for r in rows}


def test_the_summary_links_to_a_read_only_view_of_that_team(factory, settings, team) -> None:
    import httpx
    from pydantic import SecretStr

    from service.engagement import make_links
    from service.web.app import create_app
    from tests.conftest import LiveServer

    settings = settings.model_copy(update={"secret_key": SecretStr("k")})
    friday = at(4, 16)
    with factory() as s, s.begin():
        compose_summaries(s, settings, friday)
    make_dispatcher(factory, settings, {"email": OutboxChannel(settings)}, clock=lambda: friday).drain()
    texts = {}
    for path in (Path(settings.outbox_dir) / "summary").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        texts[message["To"].addresses[0].addr_spec] = message.get_body(("plain",)).get_content()
    link = re.search(r"(http\S+/team/\S+)", texts["div@x.org"]).group(1)
    now = [friday]
    with LiveServer(create_app(settings, factory, clock=lambda: now[0])) as live:
        url = link.replace(settings.base_url, live.url)
        page = httpx.get(url)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        shown = set(re.findall(r'data-person="(\d+)"', page.text))
        assert shown == {str(team[e]) for e in ("ann@x.org", "bob@x.org", "cat@x.org", "dan@x.org", "eve@x.org")}
        assert "Sam Staff" not in page.text and "Ops Lead" not in page.text  # someone else's team
        assert re.search(r'id="team-rate">(\d+)%', page.text).group(1) == "25"  # Ann of 4 reachable
        head = httpx.get(re.search(r"(http\S+/team/\S+)", texts["head@x.org"]).group(1)
                         .replace(settings.base_url, live.url))
        assert "Your area" in head.text and "Sam Staff" not in head.text  # roll-up: only who needs a check-in
        assert "Dan Silent" in head.text
        assert httpx.get(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")).status_code == 404
        with factory() as s:
            digest_id = s.scalar(select(Delivery.id).where(Delivery.kind == "digest"))
            ack = make_links(s, settings).ack(digest_id)
        assert httpx.get(live.url + "/team/" + ack.rsplit("/", 1)[1]).status_code == 404  # not a team token
        now[0] = friday + timedelta(days=36)
        assert httpx.get(url).status_code == 410


def test_reports_read_the_weekly_roll_up_so_pruned_weeks_still_count(factory, settings, team) -> None:
    """The summary and trend read the roll-up, not the raw events: once the retention prune has
    deleted a week's events, the week still says who engaged (it said 0 of 4 when read from events)."""
    usecases.prune_engagement(factory, settings, at(7, 0) + timedelta(days=settings.retention_days + 1))
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(EngagementEvent)) == 0
        payload = summary_payload(s, s.get(Person, team["div@x.org"]), WEEK, CHICAGO, MONDAY, new_hire_days=14)
    assert payload["rate"]["text"] == "25% (1 of 4 reachable)"
    assert [(p["week"], p["engaged"], p["reached"]) for p in payload["trend"]] == [("2026-W48", 1, 4), (WEEK, 1, 4)]


def test_the_migration_backfills_the_roll_up_and_a_rebuild_agrees(engine, cli_env, capsys, factory, team) -> None:
    """What the ingest paths kept is what the migration's backfill computes from the events and
    what `nudge engagement rebuild` recounts; so is the district's trend, read from its totals."""
    from alembic import command

    from service.db.migrate import alembic_config, upgrade

    def trend(s):
        return [(p.week, p.engaged, p.reached) for p in weekly_trend(s, last_weeks(WEEK, 3, CHICAGO), None,
                                                                      new_hire_days=14)]

    district = [("2026-W47", 0, 0), ("2026-W48", 1, 8), (WEEK, 2, 8)]
    with factory() as s:
        kept = weekly.snapshot(s)
        assert trend(s) == district
    assert kept[team["ann@x.org"], WEEK][:6] == (True, 1, 0, 0, 1, 0)  # delivered, opens, machine, signals, clicks
    assert kept[team["cat@x.org"], WEEK][:6] == (True, 0, 1, 2, 0, 0)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
    upgrade(engine)
    with factory() as s:
        assert weekly.snapshot(s) == kept
        assert trend(s) == district
    code, out, _ = run_cli(capsys, "engagement", "rebuild")
    assert code == 0 and ", 0 of them changed" in out.split(";")[1]
    with factory() as s:
        assert weekly.snapshot(s) == kept
        assert trend(s) == district


def test_the_trend_totals_follow_every_write_of_a_cell(factory, team) -> None:
    """The database keeps the totals: any statement that writes cells moves them (here plain SQL,
    as a path written later might), an update that changes neither flag appends nothing, and a
    fold leaves one row a week that adds up to the same."""
    w, week = EngagementWeek, "2030-W01"
    ann, bob, cat = team["ann@x.org"], team["bob@x.org"], team["cat@x.org"]

    def cell(person_id: int, *, delivered: bool, clicks: int) -> dict:
        return {"person_id": person_id, "week": week, "delivered": delivered, "human_opens": 0, "machine_opens": 0,
                "machine_signals": 0, "clicks": clicks, "acks": 0, "canvas_reads": 0, "answers": 0,
                "engaged": clicks > 0}

    def totals(s) -> tuple[int, int]:
        counted = s.execute(select(func.count(), func.count().filter(w.engaged)).where(
            w.week == week, w.delivered.is_(True))).one()
        assert weekly.totals(s, [week]).get(week, (0, 0)) == tuple(counted)
        return tuple(counted)

    def appended(s) -> int:
        return s.scalar(select(func.count()).select_from(EngagementWeekTotal).where(EngagementWeekTotal.week == week))

    with factory() as s, s.begin():
        s.execute(insert(w), [cell(ann, delivered=True, clicks=1), cell(bob, delivered=True, clicks=0),
                              cell(cat, delivered=False, clicks=2)])
        assert totals(s) == (2, 1)
        s.execute(update(w).where(w.week == week, w.person_id == cat).values(delivered=True))
        assert totals(s) == (3, 2)
        s.execute(update(w).where(w.week == week, w.person_id == ann).values(clicks=0, engaged=False))
        assert totals(s) == (3, 1)
        rows = appended(s)
        s.execute(update(w).where(w.week == week).values(human_opens=w.human_opens + 1, delivered=w.delivered))
        assert totals(s) == (3, 1) and appended(s) == rows
        s.execute(delete(w).where(w.week == week, w.person_id == cat))
        assert totals(s) == (2, 0)
        weekly.fold_totals(s)
        assert totals(s) == (2, 0) and appended(s) == 1


def test_the_teams_page_keeps_a_team_whose_manager_left(factory, settings, tmp_path: Path) -> None:
    """A lead whose own manager left the roster (still named as their supervisor) heads a tree of
    their own; the manager who left is not shown."""
    import httpx
    from pydantic import SecretStr

    from service.web.app import create_app
    from tests.conftest import LiveServer

    header = "email,name,role,department,supervisor_email,timezone,canvas_user_id\n"
    rest = ("lee@x.org,Lee Lead,staff,,mia@x.org,,\n"
            "tom@x.org,Tom Teacher,teacher,,lee@x.org,,\ntia@x.org,Tia Teacher,teacher,,lee@x.org,,\n")
    before, after = tmp_path / "before.csv", tmp_path / "after.csv"
    before.write_text(header + "hana@x.org,Hana Head,administrator,,,,\nmia@x.org,Mia Mid,administrator,,hana@x.org,,\n"
                      + rest)
    after.write_text(header + "hana@x.org,Hana Head,administrator,,,,\n" + rest)
    for roster in (before, after):
        with factory() as s, s.begin():
            import_roster(s, roster, now=datetime(2026, 1, 5, tzinfo=UTC))
    admin = settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN), "secret_key": SecretStr("k")})
    with LiveServer(create_app(admin, factory)) as live, httpx.Client(base_url=live.url, follow_redirects=True) as client:
        assert client.post("/admin/login", data={"token": ADMIN_TOKEN}).status_code == 200
        page = client.get("/admin/teams").text
    assert re.findall(r'<a href="/admin/teams/\d+">([^<]+)</a> — (\d+) people', page) == [
        ("Hana Head", "3"), ("Lee Lead", "2")]
