"""Six school weeks with people behind link scanners, people who really engage and people who
stay silent, played through the real doors only (pixel, click endpoint, acknowledge button;
the jobs' use-cases with a moving clock): scanners and silence are nudged and escalated, the
engaged are not, the headline rate is the hand count, and every subject counts the people listed."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from service import usecases
from service.escalation import NEVER_ENGAGED
from service.models import Escalation, Person
from service.paths import CONTENT_DIR
from service.web.app import create_app
from tests.conftest import LiveServer
from tests.readers import CHROME, GATEWAY, PROXY, Clock, Readers

CHICAGO = ZoneInfo("America/Chicago")
START = date(2026, 9, 7)  # a Monday, no break for weeks
WEEKS = 6
SCANNED = [f"s{i:02d}@x.org" for i in range(1, 11)]  # 1-5: bursts in a browser's name; 6-10: a gateway client
ENGAGED = [f"e{i:02d}@x.org" for i in range(1, 11)]  # 1-5 click a tip; 6-10 press "Got it"
SILENT = [f"q{i:02d}@x.org" for i in range(1, 11)]  # 1-3 open the email (a human open) and do nothing more
LEADS = ["head@x.org", "lead@x.org"]  # they get digests too, and never engage


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), CHICAGO).astimezone(UTC)


def roster(path: Path) -> Path:
    lines = ["email,name,role,department,supervisor_email,timezone,canvas_user_id",
             "head@x.org,Hana Head,administrator,,,,", "lead@x.org,Lee Lead,administrator,,head@x.org,,"]
    for group, label in ((SCANNED, "Scanned"), (ENGAGED, "Engaged"), (SILENT, "Silent")):
        lines += [f"{email},{label} {email[1:3]},teacher,,lead@x.org,," for email in group]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def act(readers: Readers, received, moment: datetime) -> None:
    """What each person does with an email that arrived at ``moment``."""
    who, kind = received.to_email, received.custom_args.get("kind")
    if who in SCANNED[:5]:  # the gateway fetches the image, then clicks links 9 ms apart, one URL twice
        readers.at(moment + timedelta(seconds=40)).open(received, PROXY)
        if readers_links(received):
            readers.burst(received, [0, 0, 1] if len(readers_links(received)) > 1 else [0, 0], CHROME,
                          gap=timedelta(milliseconds=9))
    elif who in SCANNED[5:]:
        if readers_links(received):
            readers.at(moment + timedelta(minutes=3)).click(received, 0, GATEWAY)
    elif who in ENGAGED:
        readers.at(moment + timedelta(hours=2)).open(received, CHROME)
        readers.clock.now += timedelta(minutes=1)
        if kind in ("notice", "reminder") or who in ENGAGED[5:] or not readers_links(received):
            readers.acknowledge(received)
        else:
            readers.click(received, 0, CHROME)
    elif who in SILENT[:3] and kind == "digest":
        readers.at(moment + timedelta(hours=3)).open(received, CHROME)


def readers_links(received) -> list[str]:
    return re.findall(r'href="([^"]*/c/[^"]+)"', received.html)


@pytest.fixture
def school(factory, sendgrid_settings, web_settings, tmp_path):
    settings = web_settings.model_copy(update={
        "email_backend": "sendgrid", "sendgrid_host": sendgrid_settings.sendgrid_host,
        "sendgrid_api_key": sendgrid_settings.sendgrid_api_key, "admin_email": "admin@x.org"})
    usecases.import_content(factory, [CONTENT_DIR / "social_media.yaml"])
    usecases.publish_policy_version(factory, settings, CONTENT_DIR / "policies" / "social-media-v1.txt",
                                    slug="social-media", label="1", now=local(START, 9) - timedelta(days=200))
    usecases.import_people(factory, roster(tmp_path / "roster.csv"), now=local(START, 9) - timedelta(days=60))
    return settings


def play(factory, settings, sendgrid_double) -> Readers:
    """Six weeks of the scheduled jobs, each day's emails read as each persona would."""
    clock = Clock(local(START, 8))
    with LiveServer(create_app(settings, factory, clock=clock)) as live:
        readers = Readers(live, clock, sendgrid_double, settings.base_url)
        dispatcher = usecases.dispatcher(factory, settings, clock=clock)

        def deliver_and_read(moment: datetime) -> None:
            clock.now = moment
            dispatcher.drain()
            for received in readers.fresh():
                act(readers, received, moment)

        try:
            for week in range(WEEKS):
                for day in range(7):
                    today = START + timedelta(weeks=week, days=day)
                    clock.now = local(today, 8)
                    usecases.send_week(factory, settings, clock())
                    deliver_and_read(local(today, 8))
                    if week == 1 and day == 1:  # version 2: a notice everyone must confirm within 14 days
                        usecases.publish_policy_version(
                            factory, settings, CONTENT_DIR / "policies" / "social-media-v2.txt", slug="social-media",
                            label="2", now=local(today, 9))
                        deliver_and_read(local(today, 9))
                    usecases.daily_pass(factory, settings, local(today, 12))
                    deliver_and_read(local(today, 12))
                    if today.weekday() == 4:
                        usecases.weekly_summaries(factory, settings, local(today, 16))
                        deliver_and_read(local(today, 16))
            deliver_and_read(local(START + timedelta(weeks=WEEKS), 8))  # what waited over the last weekend
        finally:
            dispatcher.close()
            readers.close()
    return readers


def test_six_weeks_scanners_and_silence_escalate_engagement_does_not(factory, school, sendgrid_double) -> None:
    play(factory, school, sendgrid_double)
    with factory() as s:
        email_of = dict(s.execute(select(Person.id, Person.email)).tuples().all())
        rungs = s.execute(select(Escalation.person_id, Escalation.level).where(Escalation.reason == NEVER_ENGAGED)).all()
        last_engaged = dict(s.execute(select(Person.email, Person.last_engaged_at)).tuples().all())
    nudged = {email_of[p] for p, level in rungs if level == 0}
    escalated = {email_of[p] for p, level in rungs if level >= 1}
    expected = set(SCANNED) | set(SILENT) | set(LEADS)
    assert nudged == expected
    assert escalated == expected  # two more silent digests after the nudge: the supervisor hears
    assert all(last_engaged[e] is not None for e in ENGAGED)
    assert all(last_engaged[e] is None for e in SCANNED + SILENT)  # machine events and opens only

    emails = sendgrid_double.emails
    summaries = summary_texts(emails, "lead@x.org")
    assert len(summaries) == WEEKS
    for summary in summaries[1:]:  # from week 2 on, every engaged person engages every week: 10 of 30
        assert "This week 10 of the 30 reachable people in your team (33%) engaged" in summary
        rows = re.findall(r"^  - (.+?): (.+?) \(last engaged", summary, re.MULTILINE)
        assert sum(status == "engaged" for _, status in rows) == 10, summary
        assert {name for name, status in rows if status == "engaged"} == {f"Engaged {e[1:3]}" for e in ENGAGED}

    escalations = [e for e in emails if e.custom_args.get("kind") == "escalation"]
    assert escalations
    for letter in escalations:
        listed = re.findall(r"^- (.+?): ", letter.text.split("Emails we could not deliver")[0], re.MULTILINE)
        assert len(listed) == len(set(listed)), f"someone listed twice in {letter.subject!r}"
        count = int(re.search(r"(\d+) (?:of your team|people need|person)", letter.subject).group(1))
        assert count == len(listed), (letter.subject, listed)
    admin = [e for e in escalations if e.to_email == "admin@x.org"]
    head_lines = [line for e in admin for line in e.text.splitlines() if line.startswith("- Hana Head:")]
    assert "hasn't confirmed" in head_lines[-1] and "no clicks" in head_lines[-1]  # one line, both reasons

    rebuilt = usecases.rebuild_engagement(factory, school, local(START + timedelta(weeks=WEEKS), 8))
    assert rebuilt.changed == 0  # the incremental aggregates equal the ones rebuilt from the events


def summary_texts(emails, to: str) -> list[str]:
    """The lead's weekly summaries: on their own, or carried in the email of a later day."""
    texts = []
    for received in (e for e in emails if e.to_email == to):
        if received.custom_args.get("kind") == "summary":
            texts.append(received.text)
        else:
            texts += [part for part in re.split(r"^== ", received.text, flags=re.MULTILINE)
                      if part.startswith("Your team's week")]
    return texts


def test_clicks_from_the_signed_webhook_settle_too(factory, school, sendgrid_double) -> None:
    """SendGrid's click events, late and repeated: a lone click counts once settled; two clicks of
    one message a second apart are a scanner's; a repeated event is stored once."""
    monday = local(START, 8)
    clock = Clock(monday)
    with LiveServer(create_app(school, factory, clock=clock)) as live:
        readers = Readers(live, clock, sendgrid_double, school.base_url)
        usecases.send_week(factory, school, monday)
        dispatcher = usecases.dispatcher(factory, school, clock=clock)
        dispatcher.drain()
        dispatcher.close()
        digests = {e.to_email: e for e in readers.fresh() if e.custom_args.get("kind") == "digest"}
        clicker, scanned = digests["e01@x.org"], digests["s01@x.org"]
        stamp = (monday + timedelta(hours=2)).timestamp()
        lone = sendgrid_double.events("click", [clicker], at=stamp, url="https://example.org/a", useragent=CHROME)
        burst = sendgrid_double.events("click", [scanned, scanned], at=stamp, url="https://example.org/a",
                                       useragent=CHROME)
        burst[1]["timestamp"] += 1
        late = monday + timedelta(hours=5)  # SendGrid posts hours later, and repeats itself
        clock.now = late
        assert readers.webhook(lone + burst, at=late)["stored"] == 3
        assert readers.webhook(lone, at=late)["duplicates"] == 1
        readers.close()
    with factory() as s:
        pending = dict(s.execute(select(Person.email, Person.last_engaged_at)).tuples().all())
    assert pending["e01@x.org"] is None  # stored, not yet judged
    usecases.daily_pass(factory, school, local(START, 12))  # settles first
    with factory() as s:
        engaged = dict(s.execute(select(Person.email, Person.last_engaged_at)).tuples().all())
    assert engaged["e01@x.org"] == datetime.fromtimestamp(int(stamp), UTC)
    assert engaged["s01@x.org"] is None
