"""End-to-end guard: `nudge simulate` for eight weeks, checked week by week against the rules.

The simulation runs on its own SQLite database (printed at the end), so it runs once, in the
SQLite pass of the suite. The rules: reminders 7, 2 and 0 days before a notice's due date (on school days);
a nudge on the day of the fourth digest without a human signal; the supervisor on the day of
two more; summaries on Fridays; and the printed table says what the database holds.
"""

import contextlib
import email
import email.policy
import io
import os
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from service.cli import main
from service.db import make_engine, make_sessionmaker
from service.engagement import engaging
from service.models import Delivery, EngagementEvent, Escalation, Notice, Person
from service.simulate import COLUMNS, SENT_KINDS
from service.weeks import week_key

CHICAGO = ZoneInfo("America/Chicago")
WEEKS = 8
pytestmark = pytest.mark.skipif(os.environ.get("NUDGE_TEST_DATABASE_URL", "").startswith("postgresql"),
                                reason="the simulation has its own SQLite database: checked in the SQLite pass")


def local_day(moment: datetime) -> date:
    return moment.astimezone(CHICAGO).date()


def printed_table(out: str) -> dict[str, dict[str, int]]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == len(COLUMNS) and re.fullmatch(r"\d{4}-W\d\d", cells[0]):
            rows[cells[0]] = {name: int(value) for name, value in zip(COLUMNS[1:], cells[1:], strict=True)}
    return rows


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda seed: f"seed{seed}")
def simulation(request, tmp_path_factory):
    """One eight-week run per seed through the CLI: (printed table, a session on its database)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out):
        env.setenv("NUDGE_OUTBOX_DIR", str(tmp_path_factory.mktemp(f"seed{request.param}")))
        try:
            main(["simulate", "--weeks", str(WEEKS), "--seed", str(request.param)])
        except SystemExit as exc:
            assert not exc.code, out.getvalue()
    engine = make_engine(re.search(r"database stays at (\S+)", out.getvalue()).group(1))
    with make_sessionmaker(engine)() as session:
        yield printed_table(out.getvalue()), session
    engine.dispose()


def test_the_printed_table_is_what_the_database_holds(simulation) -> None:
    table, s = simulation
    assert len(table) == WEEKS
    sent = Counter((week_key(local_day(at)), kind) for kind, at in s.execute(
        select(Delivery.kind, Delivery.sent_at).where(Delivery.channel == "email", Delivery.sent_at.is_not(None))))
    posts = Counter(week_key(local_day(at)) for (at,) in s.execute(
        select(Delivery.sent_at).where(Delivery.channel == "canvas", Delivery.sent_at.is_not(None))))
    events = Counter((week_key(local_day(at)), kind, machine) for kind, machine, at in s.execute(
        select(EngagementEvent.kind, EngagementEvent.is_machine, EngagementEvent.at)
        .where(EngagementEvent.source.in_(("pixel", "link", "ack_page")))))
    for week, row in table.items():
        for kind in SENT_KINDS:
            column = {"digest": "digests", "summary": "summaries"}.get(kind, kind + "s")
            assert row[column] == sent[(week, kind)], (week, kind)
        assert row["canvas posts"] == posts[week]
        assert (row["human opens"], row["machine opens"]) == (events[(week, "open", False)], events[(week, "open", True)])
        assert (row["clicks"], row["acks"]) == (events[(week, "click", False)], events[(week, "ack", False)])
    assert all(row["digests"] > 0 and row["summaries"] > 0 for row in table.values())


def test_reminders_come_7_2_and_0_days_before_the_due_date_on_school_days(simulation) -> None:
    """A due date is a school day; a reminder whose day is a weekend comes on the Friday before."""
    _, s = simulation
    due = dict(s.execute(select(Notice.id, Notice.due_on)).tuples().all())
    assert all(day.weekday() < 5 for day in due.values())
    seen = set()
    for period, created in s.execute(select(Delivery.period_key, Delivery.created_at).where(Delivery.kind == "reminder")):
        _, notice, days = period.split(":")
        days = int(days.removeprefix("d"))
        meant = due[int(notice)] - timedelta(days=days)
        school_day = meant - timedelta(days=meant.weekday() - 4) if meant.weekday() > 4 else meant
        assert local_day(created) == school_day, period
        seen.add(days)
    assert seen == {7, 2, 0}


def test_summaries_go_out_on_fridays(simulation) -> None:
    _, s = simulation
    days = {local_day(at).weekday() for (at,) in s.execute(select(Delivery.created_at).where(Delivery.kind == "summary"))}
    assert days == {4}


def test_silent_people_are_nudged_after_four_digests_and_escalated_after_two_more(simulation) -> None:
    """Checked for everyone who never engaged (opens alone do not count) and whose mail is deliverable."""
    _, s = simulation
    human = {p for (p,) in s.execute(select(EngagementEvent.person_id).where(engaging()))}
    digests = defaultdict(list)
    for person, at in s.execute(select(Delivery.person_id, Delivery.sent_at).where(
            Delivery.kind == "digest", Delivery.status == "sent").order_by(Delivery.sent_at)):
        digests[person].append(local_day(at))
    nudged = {p: local_day(at) for p, at in s.execute(select(Delivery.person_id, Delivery.created_at)
                                                       .where(Delivery.kind == "nudge"))}
    escalated = {p: local_day(at) for p, at in s.execute(
        select(Escalation.person_id, Escalation.opened_at)
        .where(Escalation.reason == "never_engaged", Escalation.level == 1))}
    silent = [p for (p,) in s.execute(select(Person.id).where(Person.active.is_(True),
                                                               Person.undeliverable_since.is_(None)))
              if p not in human]
    assert silent, "every seed has people who never engage"
    for person in silent:
        assert nudged[person] == digests[person][3], person  # the day of the 4th silent digest
        assert escalated[person] == digests[person][5], person  # two digests later, the supervisor
    assert all(nudged[p] >= digests[p][3] for p in nudged)  # nobody before four digests


def test_two_hundred_people_for_eight_weeks_one_email_a_day_and_none_on_a_weekend(tmp_path, capsys) -> None:
    """From the `.eml` files' own headers: every email has Date and Message-ID; nobody gets two
    emails on one day; nothing that carries a reminder, nudge or escalation is dated on a
    Saturday or Sunday."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out):
        env.setenv("NUDGE_OUTBOX_DIR", str(tmp_path))
        try:
            main(["simulate", "--weeks", "8", "--people", "200", "--seed", "4"])
        except SystemExit as exc:
            assert not exc.code, out.getvalue()
    per_day: Counter = Counter()
    kinds: Counter = Counter()
    for path in (tmp_path / "simulation").rglob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["Date"] and message["Message-ID"], path
        day = local_day(message["Date"].datetime)
        text = message.get_body(("plain",)).get_content()
        kinds[path.parent.name] += 1
        if path.parent.name in ("reminder", "nudge", "escalation") or "\n== " in text:
            assert day.weekday() < 5, (path.parent.name, day)
        per_day[(message["To"].addresses[0].addr_spec, day)] += 1
    assert per_day and kinds["attention"]  # some days bundle several emails in one
    assert max(per_day.values()) == 1, [k for k, n in per_day.items() if n > 1][:5]
    with capsys.disabled():
        print(f"\n200 people, 8 weeks: {sum(per_day.values())} emails on {len(per_day)} person-days, "
              f"at most one a day; by kind: {dict(sorted(kinds.items()))}")
