"""Nudges and escalation, day by day over simulated weeks (explicit clocks; time-machine for the CLI)."""

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select

from service.channels.outbox import OutboxChannel
from service.weeks import Blackout, SchoolCalendar, week_key
from service.digests import compose
from service.usecases import dispatcher as make_dispatcher
from service.escalation import paused_days, run_pass
from service.models import (
    Delivery,
    DeliveryItem,
    Escalation,
    Notice,
    Person,
    Policy,
    PolicyVersion,
)
from service.reports import Window, engagement, summary_payload
from service.roster import import_roster
from tests.conftest import REPO, store_policy
from tests.helpers import run_cli
from tests.readers import CHROME, PROXY, Doors

CHICAGO = ZoneInfo("America/Chicago")
START = date(2026, 9, 7)  # a Monday, no school break for months
NO_BREAKS = SchoolCalendar()
ROSTER = """email,name,role,department,supervisor_email,timezone,canvas_user_id
head@x.org,Hana Head,administrator,,,,
div@x.org,Dev Division,administrator,,head@x.org,,
gone@x.org,Gone Boss,administrator,,div@x.org,,
ann@x.org,Ann Machine,teacher,,div@x.org,,
bob@x.org,Bob Clicker,teacher,,div@x.org,,
cat@x.org,Cat Reader,teacher,,div@x.org,,
dan@x.org,Dan Under,teacher,,gone@x.org,,
ola@x.org,Ola Orphan,teacher,,,,
"""


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), CHICAGO).astimezone(UTC)


@pytest.fixture
def staff(factory, settings, tmp_path: Path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    with factory() as s, s.begin():
        store_policy(s)
        import_roster(s, path, now=datetime(2026, 1, 5, tzinfo=UTC))
        s.execute(Person.__table__.update().where(Person.email == "gone@x.org").values(active=False))
    return settings.model_copy(update={"admin_email": "admin@x.org"})


def person_id(factory, email: str) -> int:
    with factory() as s:
        return s.scalar(select(Person.id).where(Person.email == email))


def send_week(factory, settings, n: int) -> datetime:
    """Compose and send week n's digests on its Monday at 08:00 local."""
    at = datetime.combine(START + timedelta(weeks=n), time(8), CHICAGO).astimezone(UTC)
    with factory() as s, s.begin():
        compose(s, settings, at, NO_BREAKS)
    make_dispatcher(factory, settings, {"email": OutboxChannel(settings)}, clock=lambda: at).drain()
    return at


@pytest.fixture
def doors(factory, staff) -> Doors:
    return Doors(staff, factory)


SCANNER = "Mozilla/5.0 (compatible; SafeLinks/1.0)"


def signal(doors: Doors, factory, email: str, at: datetime, *, machine: bool, kind: str = "open") -> None:
    """The person (or their mail scanner) acts on their latest digest through the real doors:
    the pixel, a tracked link, or the "Got it" button (kind "ack")."""
    with factory() as s:
        delivery = s.scalar(select(Delivery.id).join(Person, Person.id == Delivery.person_id)
                            .where(Person.email == email, Delivery.kind == "digest").order_by(Delivery.id.desc()))
    if kind == "open":
        doors.open("digest", delivery, at, PROXY if machine else CHROME)
    elif kind == "click":
        doors.click("digest", delivery, at, SCANNER if machine else CHROME)
    else:
        assert kind == "ack" and not machine
        doors.acknowledge("digest", delivery, at)


def escalate(factory, settings, day: date, calendar=NO_BREAKS):
    with factory() as s, s.begin():
        return run_pass(s, settings, noon(day), calendar)


def queued(factory, kinds=("reminder", "nudge", "escalation")) -> list[tuple[str, str, str]]:
    with factory() as s:
        rows = s.execute(
            select(Delivery.kind, Person.email, Delivery.recipient, Delivery.period_key)
            .outerjoin(Person, Person.id == Delivery.person_id)
            .where(Delivery.kind.in_(kinds)).order_by(Delivery.id)
        ).all()
    return [(kind, email or recipient, period) for kind, email, recipient, period in rows]


# ------------------------------------------------------------------ never engages


def test_eight_weeks_machine_opens_escalate_one_click_does_not(factory, staff, doors) -> None:
    """The whole promised sequence of emails for an 8-week history."""
    log: list[tuple[int, str, str, str]] = []
    for week in range(8):
        sent = send_week(factory, staff, week)
        signal(doors, factory, "ann@x.org", sent + timedelta(minutes=5), machine=True)  # a proxy, every week
        signal(doors, factory, "cat@x.org", sent + timedelta(hours=3), machine=False, kind="ack")  # every week
        if week == 3:
            signal(doors, factory, "bob@x.org", sent + timedelta(hours=2), machine=False, kind="click")  # once
        for day in range(7):
            before = len(queued(factory))
            escalate(factory, staff, START + timedelta(weeks=week, days=day))
            log += [(week, *q) for q in queued(factory)[before:]]
    # ann (machine opens only), dan, ola and the two administrators never engage; cat reads every
    # week; bob clicks once, in week 3. K=4 digests, then 2 more before a supervisor hears, then 7 days a rung.
    assert [(w, k, who) for w, k, who, _ in log] == [
        (3, "nudge", "head@x.org"), (3, "nudge", "div@x.org"), (3, "nudge", "ann@x.org"),
        (3, "nudge", "dan@x.org"), (3, "nudge", "ola@x.org"),             # 4 digests without a human signal
        (5, "escalation", "admin:admin@x.org"),                           # level 1: head and ola have no boss
        (5, "escalation", "div@x.org"),                                   # level 1: ann, and dan (boss inactive)
        (5, "escalation", "head@x.org"),                                  # level 1: div
        (6, "escalation", "admin:admin@x.org"),                           # level 2 for div; chain ends
        (6, "escalation", "head@x.org"),                                  # level 2: ann and dan
        (7, "nudge", "bob@x.org"),                                        # 4 silent digests after his click
        (7, "escalation", "admin:admin@x.org"),                           # level 3: the admin address
    ]
    with factory() as s:
        level1 = s.execute(select(Person.email, Escalation.notified_email).join(Person, Person.id == Escalation.person_id)
                           .where(Escalation.level == 1)).all()
    assert sorted(level1) == [("ann@x.org", "div@x.org"), ("dan@x.org", "div@x.org"),  # inactive boss skipped
                              ("div@x.org", "head@x.org"), ("head@x.org", "admin@x.org"),  # no supervisor
                              ("ola@x.org", "admin@x.org")]
    with factory() as s:
        bob = s.scalars(select(Escalation).where(Escalation.person_id == person_id(factory, "bob@x.org"))).all()
    assert [(e.reason, e.level) for e in bob] == [("never_engaged", 0)]  # nudged, never escalated
    with factory() as s:  # ann's and dan's rungs at levels 1 and 2 are open at once: each person is one row
        head = s.scalar(select(Person).where(Person.email == "head@x.org"))
        week = week_key(START + timedelta(weeks=7))
        rows = engagement(s, Window.week(week, CHICAGO), None, new_hire_days=staff.new_hire_days)
        payload = summary_payload(s, head, week, CHICAGO, START + timedelta(weeks=7, days=6),
                                  new_hire_days=staff.new_hire_days)
    statuses = {row.email: row.status for row in rows}
    assert len(rows) == len(statuses) and statuses["ann@x.org"] == statuses["dan@x.org"] == "escalated"
    assert sorted(email for email, status in statuses.items() if status == "escalated") == [
        "ann@x.org", "dan@x.org", "div@x.org", "head@x.org", "ola@x.org"]
    assert payload["counts"]["escalated"] == 3  # below the head: div, ann and dan, once each


def test_six_weeks_machine_signals_only_versus_a_real_click(factory, staff, doors) -> None:
    for week in range(6):
        sent = send_week(factory, staff, week)
        signal(doors, factory, "ann@x.org", sent + timedelta(seconds=2), machine=True, kind="click")
        if week == 1:
            signal(doors, factory, "bob@x.org", sent + timedelta(hours=1), machine=False, kind="click")
        escalate(factory, staff, START + timedelta(weeks=week, days=1))
    with factory() as s:
        levels = s.execute(select(Person.email, Escalation.level).join(Person, Person.id == Escalation.person_id)
                           .where(Person.email.in_(["ann@x.org", "bob@x.org"]))).all()
    assert ("ann@x.org", 1) in levels  # only machine signals: escalated to the supervisor
    assert not any(level >= 1 for email, level in levels if email == "bob@x.org")


def test_engaging_resolves_and_the_next_email_says_so(factory, staff, doors) -> None:
    for week in range(9):
        sent = send_week(factory, staff, week)
        if week <= 2:
            signal(doors, factory, "cat@x.org", sent + timedelta(hours=3), machine=False, kind="ack")  # until week 2
        if week == 5:  # ann, escalated to div this week, clicks the next day
            escalate(factory, staff, START + timedelta(weeks=week, days=1))
            assert ("escalation", "div@x.org", "2026-W42") in queued(factory)
            signal(doors, factory, "ann@x.org", noon(START + timedelta(weeks=5, days=2)), machine=False, kind="click")
            result = escalate(factory, staff, START + timedelta(weeks=5, days=3))
            assert ("ann@x.org", "never_engaged", "engaged") in result.resolved
            continue
        escalate(factory, staff, START + timedelta(weeks=week, days=1))
    # week 8: cat reaches div (nudged in week 6, two more silent digests); the email says ann caught up
    with factory() as s:
        email = s.scalar(select(Delivery).join(Person, Person.id == Delivery.person_id)
                         .where(Person.email == "div@x.org", Delivery.kind == "escalation",
                                Delivery.period_key == "2026-W45"))
    listed = [line["name"] for group in email.payload["groups"] for part in ("new", "known") for line in group[part]]
    assert sorted(listed) == ["Bob Clicker", "Cat Reader", "Dan Under"]
    assert email.subject == "3 of your team could use a check-in"
    assert email.payload["caught_up"] == ["Ann Machine"]
    from service.rendering import LetterRenderer
    from service.engagement import Links, Signer

    with factory() as s:
        delivery = s.get(Delivery, email.id)
        message = LetterRenderer("http://n", "School", Links("http://n", Signer(["k"]))).render(delivery)
        assert "Caught up since my last note" in message.html and "Ann Machine" in message.html
        assert "- Cat Reader: no clicks, confirmations, Canvas reads or quick-check answers" in message.text


def test_answering_a_quick_check_is_engagement_and_resolves_an_escalation(factory, staff, doors) -> None:
    for week in range(6):
        sent = send_week(factory, staff, week)
        escalate(factory, staff, START + timedelta(weeks=week, days=1))
    assert ("escalation", "div@x.org", "2026-W42") in queued(factory)  # ann never engaged: her supervisor heard
    with factory() as s:
        latest = s.scalar(select(Delivery.id).join(Person, Person.id == Delivery.person_id)
                          .where(Person.email == "ann@x.org", Delivery.kind == "digest").order_by(Delivery.id.desc()))
    doors.clock.now = sent + timedelta(seconds=2)  # her mail scanner follows the answer links: nothing
    for url in doors.links("digest", latest).options:
        assert doors.client.get(url, headers={"User-Agent": SCANNER}).status_code == 200
    assert ("ann@x.org", "never_engaged", "engaged") not in escalate(factory, staff, START + timedelta(weeks=5, days=2)).resolved
    doors.answer(latest, noon(START + timedelta(weeks=5, days=2)), 1)  # then she answers (right or wrong)
    result = escalate(factory, staff, START + timedelta(weeks=5, days=3))
    assert ("ann@x.org", "never_engaged", "engaged") in result.resolved


def test_a_second_pass_on_the_same_day_sends_nothing_new(factory, staff) -> None:
    for week in range(6):
        send_week(factory, staff, week)
    first = escalate(factory, staff, START + timedelta(weeks=5, days=1))
    again = escalate(factory, staff, START + timedelta(weeks=5, days=1))
    assert first.nudges and first.emails
    assert (again.nudges, again.escalated, again.emails, again.reminders) == ([], [], [], [])


def test_exclusions(factory, staff, tmp_path) -> None:
    with factory() as s, s.begin():
        s.execute(Person.__table__.update().where(Person.email == "cat@x.org")
                  .values(undeliverable_since=datetime(2026, 9, 1, tzinfo=UTC), undeliverable_reason="bounce"))
        s.execute(Person.__table__.update().where(Person.email == "bob@x.org").values(active=False))
    for week in range(6):
        send_week(factory, staff, week)
        escalate(factory, staff, START + timedelta(weeks=week, days=1))
    with factory() as s:
        touched = set(s.scalars(select(Person.email).join(Escalation, Escalation.person_id == Person.id)))
    assert "cat@x.org" not in touched and "bob@x.org" not in touched and "ann@x.org" in touched
    admin = [q for q in queued(factory) if q[1] == "admin:admin@x.org"]
    with factory() as s:
        payload = s.scalar(select(Delivery.payload).where(Delivery.recipient == "admin:admin@x.org"))
    assert admin and [p["email"] for p in payload["undeliverable"]] == ["cat@x.org"]  # reported to admins


# ------------------------------------------------------------------ notices


def make_notice(factory, created: datetime, due_days: int = 14, emails=("ann@x.org", "bob@x.org", "dan@x.org")):
    with factory() as s, s.begin():
        policy = s.scalar(select(Policy).where(Policy.slug == "social-media"))
        sequence = 1 + len(s.scalars(select(PolicyVersion).where(PolicyVersion.policy_id == policy.id)).all())
        version = PolicyVersion(policy_id=policy.id, label=str(sequence), sequence=sequence, text="x",
                                content_hash="h", imported_at=created)
        s.add(version)
        s.flush()
        notice = Notice(policy_version_id=version.id, audience=["all"], summary="<p>New section</p>",
                        due_days=due_days, due_on=(created.astimezone(CHICAGO) + timedelta(days=due_days)).date(),
                        created_at=created)
        s.add(notice)
        s.flush()
        for email in emails:
            delivery = Delivery(person_id=person_id(factory, email), kind="notice", period_key=f"notice:{notice.id}",
                                channel="email", status="sent", subject="Update", payload={}, next_attempt_at=created,
                                created_at=created, sent_at=created)
            delivery.items.append(DeliveryItem(position=0, notice_id=notice.id))
            s.add(delivery)
        return notice.id


def test_a_notice_ladder_day_by_day(factory, staff) -> None:
    created = noon(START)
    notice_id = make_notice(factory, created)
    days: list[tuple[int, str, str, str]] = []
    for day in range(31):
        if day == 10:  # bob confirms on day 10
            with factory() as s, s.begin():
                from service.models import Acknowledgement

                s.add(Acknowledgement(person_id=person_id(factory, "bob@x.org"), subject=f"notice:{notice_id}",
                                      notice_id=notice_id, at=noon(START + timedelta(days=10))))
        before = len(queued(factory))
        escalate(factory, staff, START + timedelta(days=day))
        days += [(day, *q) for q in queued(factory)[before:]]
    ann = [(d, kind) for d, kind, who, _ in days if who == "ann@x.org"]
    # 7 and 2 days before, and on the day; day 12 is a Saturday: its reminder goes out on Friday, day 11
    assert ann == [(7, "reminder"), (11, "reminder"), (14, "reminder")]
    bob = [(d, kind) for d, kind, who, _ in days if who == "bob@x.org"]
    assert bob == [(7, "reminder")]  # confirmed on day 10: nothing after
    supervisors = [(d, who) for d, kind, who, _ in days if kind == "escalation"]
    # day 15: overdue -> supervisor (div for ann and dan: dan's boss is inactive); day 22 -> head; day 29 -> admin
    assert supervisors == [(15, "div@x.org"), (22, "head@x.org"), (29, "admin:admin@x.org")]
    with factory() as s:
        ladder = s.execute(select(Person.email, Escalation.level, Escalation.notified_email)
                           .join(Person, Person.id == Escalation.person_id)
                           .where(Escalation.reason == "notice_overdue").order_by(Escalation.level, Person.email)).all()
    assert ladder == [("ann@x.org", 1, "div@x.org"), ("dan@x.org", 1, "div@x.org"),
                      ("ann@x.org", 2, "head@x.org"), ("dan@x.org", 2, "head@x.org"),
                      ("ann@x.org", 3, "admin@x.org"), ("dan@x.org", 3, "admin@x.org")]


def test_only_an_acknowledgement_of_this_notice_clears_it(factory, staff) -> None:
    from service.models import Acknowledgement

    old = make_notice(factory, noon(START - timedelta(days=60)), emails=("ann@x.org",))
    new = make_notice(factory, noon(START), emails=("ann@x.org",))
    with factory() as s, s.begin():
        s.add(Acknowledgement(person_id=person_id(factory, "ann@x.org"), subject=f"notice:{old}", notice_id=old,
                              at=noon(START)))
    result = escalate(factory, staff, START + timedelta(days=15))
    assert ("ann@x.org", "notice_overdue", 1, "div@x.org") in result.escalated
    assert {r[0] for r in result.escalated} == {"ann@x.org"}
    with factory() as s:
        subjects = set(s.scalars(select(Escalation.subject).where(Escalation.reason == "notice_overdue")))
    assert subjects == {f"notice:{new}"}  # the old one is acknowledged; only the new one is overdue


def test_new_hires_are_left_alone_for_two_weeks(factory, staff, tmp_path) -> None:
    hire = tmp_path / "hire.csv"
    hire.write_text(ROSTER.splitlines()[0] + "\nnew@x.org,New Hire,teacher,,div@x.org,,\n", encoding="utf-8")
    with factory() as s, s.begin():
        import_roster(s, hire, partial=True, now=noon(START + timedelta(days=5)))
    make_notice(factory, noon(START), emails=("new@x.org",))
    activity = []
    for day in range(0, 23):
        result = escalate(factory, staff, START + timedelta(days=day))
        if result.reminders or result.escalated:
            activity.append((day, len(result.reminders), [r[2] for r in result.escalated]))
    # joined on day 5: nothing for the first fortnight; by then the notice is overdue (due day 14)
    assert activity[0] == (21, 0, [1])  # day 19 is a Saturday: the first school day after, a Monday


def test_the_clock_pauses_in_school_breaks(factory, staff) -> None:
    winter = SchoolCalendar((Blackout("Winter break", START + timedelta(days=3), START + timedelta(days=9)),))
    assert paused_days(winter, START, START + timedelta(days=20)) == 7
    make_notice(factory, noon(START), emails=("ann@x.org",))
    during = escalate(factory, staff, START + timedelta(days=5), winter)
    assert during.paused and "Winter break" in during.paused
    reminder_days = [d for d in range(25) if escalate(factory, staff, START + timedelta(days=d), winter).reminders]
    # 7, 12 and 14 school days, each 7 break days later; day 19 is a Saturday: its reminder comes on Friday
    assert reminder_days == [14, 18, 21]


def test_cli_escalate_with_time_travel(cli_env, capsys, factory, staff, monkeypatch) -> None:
    monkeypatch.setenv("NUDGE_ADMIN_EMAIL", "admin@x.org")
    for week in range(6):
        send_week(factory, staff, week)
        if week < 5:
            escalate(factory, staff, START + timedelta(weeks=week, days=1))
    before = queued(factory)
    with time_machine.travel(noon(START + timedelta(weeks=5, days=1)), tick=False):
        code, out, _ = run_cli(capsys, "escalate", "--dry-run")
        assert code == 0 and "escalation pass (would): 0 reminder(s), 0 nudge(s), 7 escalation(s)" in out
        assert queued(factory) == before
    # the pass's day is a Tuesday; its emails are sent at once on a school day (held emails wait
    # over a weekend), so the dispatch runs on that day too, whatever day the suite runs on
    with time_machine.travel(noon(START + timedelta(weeks=5, days=1)), tick=False):
        code, out, err = run_cli(capsys, "escalate", "--as-of", (START + timedelta(weeks=5, days=1)).isoformat())
    assert code == 0, err
    assert "escalation pass (did)" in out and "escalate ann@x.org: never_engaged, level 1 -> div@x.org" in out
    sent = list((cli_env / "outbox" / "escalation").glob("*.eml"))
    assert len(sent) == 3  # div, head and the admin address
    text = "\n".join(p.read_text() for p in sent)
    assert "conversation" in text and "discipline" not in text.lower()
    assert run_cli(capsys, "escalate", "--as-of", "yesterday")[0] == 1


def test_confirming_one_notice_closes_only_that_notices_rungs(settings) -> None:
    """"notice:1" is a prefix of "notice:12": resolution matches the subject, or it plus ":d<days>".
    Decided without a database, from a state as :func:`service.escalation.load` returns it."""
    from service.escalation import NOTICE_OVERDUE, NOTICE_REMINDER, Rung, State, closes, decide
    from service.escalation.state import NoticeFacts, StaffMember

    now = datetime(2026, 12, 1, 15, tzinfo=UTC)
    assert closes("notice:1", "notice:1:d2") and closes("notice:1", "notice:1") and not closes("notice:1", "notice:12")
    ann = StaffMember(1, "ann@x.org", "Ann", None, True, now - timedelta(days=400), None, None, None, 0, None)
    rungs = [Rung((1, reason, subject, level), now - timedelta(days=1), None, "x@x.org", notified_at=now)
             for reason, subject, level in ((NOTICE_REMINDER, "notice:1:d2", 0), (NOTICE_OVERDUE, "notice:1", 1),
                                            (NOTICE_REMINDER, "notice:12:d2", 0), (NOTICE_OVERDUE, "notice:12", 1))]
    notices = {n: NoticeFacts(n, now - timedelta(days=20), (now - timedelta(days=5)).date(), "P") for n in (1, 12)}
    state = State(people={1: ann}, all_keys={r.key for r in rungs}, open_rungs=rungs,
                  notified_rungs=[r for r in rungs if r.level], notices=notices, unconfirmed={12: {1}},
                  confirmed={(1, 1)}, digests_since_nudge={})
    intents = decide(state, settings, now, SchoolCalendar())
    assert sorted(key[2] for key, why in intents.resolutions if why == "acknowledged") == ["notice:1", "notice:1:d2"]
    assert intents.new_rungs == [] and intents.emails == []  # notice 12 is overdue and already escalated
