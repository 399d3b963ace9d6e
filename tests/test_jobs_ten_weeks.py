"""The scheduled jobs over ten school weeks with a fake clock, on SQLite and PostgreSQL.

Each job runs as the scheduler runs it (the digest job hourly, the escalation pass and the
retention prune daily; each is run a second time to show a repeat queues nothing), then the
dispatch job sends through the configured channel. Nobody engages, so every rule fires for everyone: 40 digests every Monday,
reminders 7, 2 and 0 days before the due date, a nudge after four digests, the supervisor
after two more, then up the chain a week at a time.
"""

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from jobs import dispatch, escalations, retention, supervisor_summary, weekly_digest
from service import usecases
from service.models import Delivery, Escalation, Person
from service.paths import CONTENT_DIR

CHICAGO = ZoneInfo("America/Chicago")
START = date(2026, 9, 7)  # a Monday; no school break for ten weeks
PEOPLE = 40


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), CHICAGO).astimezone(UTC)


def test_ten_weeks_of_scheduled_jobs(factory, settings) -> None:
    settings = settings.model_copy(update={"admin_email": "admin@example.org"})
    usecases.import_content(factory, [CONTENT_DIR / "social_media.yaml"])
    usecases.import_people(factory, CONTENT_DIR / "sample_roster.csv", now=at(START, 8) - timedelta(days=60))
    usecases.publish_policy_version(factory, settings, CONTENT_DIR / "policies" / "social-media-v1.txt",
                                    slug="social-media", label="1", now=at(START, 8) - timedelta(days=200))
    repeats: Counter[str] = Counter()
    for offset in range(70):
        today = START + timedelta(days=offset)
        retention.run(factory, settings, at(today, 3))
        for hour in range(6, 12):  # hourly: each person's digest at 07:30 their time (four timezones)
            weekly_digest.run(factory, settings, at(today, hour))
        repeats["digests"] += weekly_digest.run(factory, settings, at(today, 11)).composed  # nothing new
        dispatch.run(factory, settings, clock=lambda: at(today, 11))
        if offset == 15:  # Tuesday of week 3: a material change, due in 14 days
            usecases.publish_policy_version(factory, settings, CONTENT_DIR / "policies" / "social-media-v2.txt",
                                            slug="social-media", label="2", now=at(today, 10))
            dispatch.run(factory, settings, clock=lambda: at(today, 10))
        for hour in (12, 13):
            result = escalations.run(factory, settings, at(today, hour))
            repeats["escalation emails"] += len(result.emails) * (hour == 13)
        dispatch.run(factory, settings, clock=lambda: at(today, 12))
        for hour in (16, 17):
            repeats["summaries"] += supervisor_summary.run(factory, settings, at(today, hour)).composed * (hour == 17)
        dispatch.run(factory, settings, clock=lambda: at(today, 16))
    assert repeats == Counter()

    with factory() as s:
        sent = s.execute(select(Delivery.kind, Delivery.person_id, Delivery.recipient, Delivery.created_at,
                                Delivery.status).where(Delivery.channel == "email")).all()
        supervisors = s.scalar(select(func.count(func.distinct(Person.supervisor_id)))) or 0
        rungs = Counter((reason, level, o.astimezone(CHICAGO).date()) for reason, level, o in s.execute(
            select(Escalation.reason, Escalation.level, Escalation.opened_at)))
    assert {status for *_, status in sent} == {"sent"}
    by_day = Counter((kind, created.astimezone(CHICAGO).date()) for kind, _, _, created, _ in sent)
    mondays = [START + timedelta(weeks=w) for w in range(10)]
    assert [by_day[("digest", m)] for m in mondays] == [PEOPLE] * 10
    due = START + timedelta(days=15 + 14)
    two_before = due - timedelta(days=2)  # a Sunday: that reminder goes out on the Friday before
    friday = two_before - timedelta(days=two_before.weekday() - 4) if two_before.weekday() > 4 else two_before
    assert {day: by_day[("reminder", day)] for day in (due - timedelta(days=7), friday, due)} == \
        {due - timedelta(days=7): PEOPLE, friday: PEOPLE, due: PEOPLE}
    assert not [day for (kind, day) in by_day if kind in ("reminder", "nudge", "escalation") and day.weekday() > 4]
    assert sum(n for (kind, _), n in by_day.items() if kind == "reminder") == 3 * PEOPLE
    assert by_day[("nudge", mondays[3])] == PEOPLE  # the 4th silent digest
    assert sum(n for (kind, _), n in by_day.items() if kind == "nudge") == PEOPLE  # once per silence
    assert rungs[("never_engaged", 1, mondays[5])] == PEOPLE  # two digests after the nudge
    assert rungs[("notice_overdue", 1, due + timedelta(days=1))] == PEOPLE  # the day after the due date
    assert rungs[("never_engaged", 2, mondays[6])] > 0 and rungs[("never_engaged", 3, mondays[7])] > 0
    summary_days = {day.weekday() for (kind, day) in by_day if kind == "summary"}
    assert summary_days == {4} and by_day[("summary", START + timedelta(days=4))] == supervisors
    escalation_days = sorted(day for (kind, day) in by_day if kind == "escalation")
    assert escalation_days[0] == due + timedelta(days=1)  # the first supervisor emails: the overdue notice
    per_week = Counter((person or recipient, created.astimezone(CHICAGO).isocalendar()[:2])
                       for kind, person, recipient, created, _ in sent if kind == "escalation")
    assert per_week and max(per_week.values()) == 1  # at most one escalation email a week per supervisor
