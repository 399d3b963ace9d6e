"""The day a reminder, a nudge and a supervisor email fall in one escalation pass.

This day crashed the demo: the pass wrote the items of reminders (a notice) and of
nudges (tips) in one statement. Driven through the scheduled jobs with a fake clock.
"""

import email
import email.policy
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from jobs import escalations, weekly_digest
from service.channels.outbox import OutboxChannel
from service.usecases import dispatcher as make_dispatcher
from service.models import Delivery, DeliveryItem
from service.content import import_version
from service.notices import queue_notice
from service.roster import import_roster
from tests.conftest import REPO, store_policy

CHICAGO = ZoneInfo("America/Chicago")
START = date(2026, 9, 7)  # a Monday, weeks before any school break
ROSTER = """email,name,role,department,supervisor_email,timezone,canvas_user_id
head@x.org,Hana Head,administrator,,,,
ann@x.org,Ann Teacher,teacher,,head@x.org,,
bob@x.org,Bob Teacher,teacher,,head@x.org,,
"""


def at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), CHICAGO).astimezone(UTC)


def dispatch(factory, settings, now: datetime) -> None:
    dispatcher = make_dispatcher(factory, settings, {"email": OutboxChannel(settings)}, clock=lambda: now)
    dispatcher.drain()
    dispatcher.close()


def publish(factory, settings, label: str, now: datetime, due_days: int) -> None:
    text = (REPO / "content" / "policies" / "social-media-v1.txt").read_text(encoding="utf-8")
    path = Path(settings.outbox_dir).parent / f"policy-{label}.txt"
    path.write_text(text + f"\n\nAddendum {label}\n\nA new rule number {label} applies.\n", encoding="utf-8")
    with factory() as s, s.begin():
        result = import_version(s, path, slug="social-media", label=label, due_days=due_days,
                                timezone=settings.timezone, now=now)
        queue_notice(s, settings, result.notice, now)
    dispatch(factory, settings, now)


def test_a_reminder_a_nudge_and_a_supervisor_email_in_one_pass(factory, settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"admin_email": "admin@x.org"})
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    with factory() as s, s.begin():
        store_policy(s)
        import_roster(s, roster, now=datetime(2026, 1, 5, tzinfo=UTC))
        import_version(s, REPO / "content" / "policies" / "social-media-v1.txt", slug="social-media",
                       label="1", title="Social Media Best Practices", now=datetime(2026, 1, 5, tzinfo=UTC))
    for week in range(4):  # four silent digests: everyone is due a nudge on the fourth Monday
        monday = START + timedelta(weeks=week)
        weekly_digest.run(factory, settings, at(monday, 8))
        dispatch(factory, settings, at(monday, 8))
        if week == 2:
            publish(factory, settings, "2", at(monday, 10), due_days=14)  # reminder d7 falls on the next Monday
            publish(factory, settings, "3", at(monday + timedelta(days=2), 10), due_days=4)  # overdue that Monday
    the_day = START + timedelta(weeks=3)

    result = escalations.run(factory, settings, at(the_day, 12))

    assert {days for _, _, days in result.reminders} == {7}
    assert sorted(result.nudges) == ["ann@x.org", "bob@x.org", "head@x.org"]
    assert ("escalation", "head@x.org") in result.emails
    with factory() as s:
        queued = s.execute(
            select(Delivery.kind, DeliveryItem.tip_id, DeliveryItem.notice_id).join(DeliveryItem)
            .where(Delivery.created_at == at(the_day, 12))
        ).all()
    kinds = {kind for kind, _, _ in queued}
    assert kinds == {"reminder", "nudge"}  # the escalation email carries its list in the payload
    assert all(notice is not None and tip is None for kind, tip, notice in queued if kind == "reminder")
    assert all(tip is not None and notice is None for kind, tip, notice in queued if kind == "nudge")
    def arrived() -> list[email.message.EmailMessage]:
        nonlocal before
        new = set(Path(settings.outbox_dir).rglob("*.eml")) - before
        before |= new
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in new]

    before: set[Path] = set(Path(settings.outbox_dir).rglob("*.eml"))
    dispatch(factory, settings, at(the_day, 12))
    # the staff had today's email (the digest): theirs wait; the admin address is not on the roster
    assert [m["To"].addresses[0].addr_spec for m in arrived()] == ["admin@x.org"]

    dispatch(factory, settings, at(the_day + timedelta(days=1), 8))  # the next morning, one email each
    tuesday = arrived()
    assert sorted(m["To"].addresses[0].addr_spec for m in tuesday) == ["ann@x.org", "bob@x.org", "head@x.org"]
    head = next(m for m in tuesday if m["To"].addresses[0].addr_spec == "head@x.org")
    text = head.get_body(("plain",)).get_content()
    assert head["Subject"].startswith("For your attention: ")
    for headline in ("Reminder: please confirm the updated Social Media Best Practices",
                     "A few reminders you may have missed",
                     "Your team and our staff guidelines"):
        assert f"== {headline} ==" in text, headline
