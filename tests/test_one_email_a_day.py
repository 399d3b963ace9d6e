"""At most one email per person per day: the rules (pure), and the days they shape, driven
through the use-cases the scheduler calls, the outbox channel's files and the web's doors."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from service import usecases
from service.bundles import Action, Day, decide
from service.channels.outbox import OutboxChannel
from service.models import Acknowledgement, Delivery, Person
from service.paths import CONTENT_DIR
from tests.readers import Doors

CHICAGO = ZoneInfo("America/Chicago")
MONDAY = date(2026, 9, 14)
MORNING = time(7, 30)
ROSTER = """email,name,role,department,supervisor_email,timezone,canvas_user_id
head@x.org,Hana Head,administrator,,,,
ann@x.org,Ann Teacher,teacher,,head@x.org,,
"""


def day(today: date, hour: int = 9, *, mailed: bool = False, digest: bool = False) -> Day:
    return Day(today, time(hour), today.weekday() < 5, mailed, digest)


def test_written_today_goes_at_once_alone_or_bundled() -> None:
    assert decide([MONDAY], day(MONDAY), MORNING) is Action.RELEASE
    assert decide([MONDAY, MONDAY], day(MONDAY), MORNING) is Action.BUNDLE


def test_nothing_goes_beside_todays_email_or_before_todays_digest() -> None:
    assert decide([MONDAY], day(MONDAY, mailed=True), MORNING) is Action.WAIT
    assert decide([MONDAY, MONDAY], day(MONDAY, 6, digest=True), MORNING) is Action.WAIT


def test_what_waited_overnight_goes_on_the_next_school_day_from_the_morning() -> None:
    friday = MONDAY - timedelta(days=3)
    assert decide([friday], day(friday + timedelta(days=1)), MORNING) is Action.WAIT  # Saturday
    assert decide([friday], day(MONDAY, 6), MORNING) is Action.WAIT  # Monday, before the morning
    assert decide([friday, MONDAY], day(MONDAY, 8), MORNING) is Action.BUNDLE
    assert decide([], day(MONDAY), MORNING) is Action.WAIT


def at(today: date, hour: int) -> datetime:
    return datetime.combine(today, time(hour), CHICAGO).astimezone(UTC)


def received(folder: Path, since: set[Path]) -> dict[str, tuple[Path, email.message.EmailMessage]]:
    """The emails written since ``since``, by recipient (asserting one each)."""
    fresh = {}
    for path in set(folder.rglob("*.eml")) - since:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        to = message["To"].addresses[0].addr_spec
        assert to not in fresh, f"two emails to {to}"
        fresh[to] = (path, message)
    return fresh


def test_a_notice_published_before_the_digest_rides_in_it_and_its_own_link_confirms(
        factory, settings, tmp_path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    usecases.import_content(factory, [CONTENT_DIR / "social_media.yaml"])
    usecases.publish_policy_version(factory, settings, CONTENT_DIR / "policies" / "social-media-v1.txt",
                                    slug="social-media", label="1", now=at(MONDAY, 6) - timedelta(days=90))
    usecases.import_people(factory, roster, now=at(MONDAY, 6) - timedelta(days=60))
    folder = Path(settings.outbox_dir)

    def dispatch(now: datetime) -> None:
        sender = usecases.dispatcher(factory, settings, {"email": OutboxChannel(settings)}, clock=lambda: now)
        sender.drain()
        sender.close()

    published = usecases.publish_policy_version(factory, settings, CONTENT_DIR / "policies" / "social-media-v2.txt",
                                                slug="social-media", label="2", now=at(MONDAY, 6))
    dispatch(at(MONDAY, 6))
    assert not list(folder.rglob("*.eml"))  # today's digest is coming: the notice waits for it

    usecases.send_week(factory, settings, at(MONDAY, 8))
    dispatch(at(MONDAY, 8))
    mail = received(folder, set())
    assert set(mail) == {"ann@x.org", "head@x.org"}
    path, message = mail["ann@x.org"]
    assert path.parent.name == "digest"
    text = message.get_body(("plain",)).get_content()
    assert "Also for you today" in text and "== Social Media Best Practices has changed ==" in text
    assert text.index("has changed ==") < text.index("----")  # the update first, then the week's tips

    with factory() as s:
        notices = s.execute(select(Person.email, Delivery.status, Delivery.bundle_id, Delivery.sent_at)
                            .join(Person).where(Delivery.kind == "notice")).all()
        digest_ids = dict(s.execute(select(Person.email, Delivery.id).join(Person)
                                    .where(Delivery.kind == "digest")).tuples().all())
    assert {(e, status, bundle) for e, status, bundle, _ in notices} == {
        (e, "sent", digest_ids[e]) for e in ("ann@x.org", "head@x.org")}
    assert all(sent is not None for *_, sent in notices)

    # the first confirm button in Ann's digest is the notice's: it records her acknowledgement
    doors = Doors(settings, factory)
    doors.acknowledge("digest", int(path.stem), at(MONDAY, 9))
    with factory() as s:
        acks = s.scalars(select(Person.email).join(Acknowledgement, Acknowledgement.person_id == Person.id)
                         .where(Acknowledgement.notice_id == published.notice_id)).all()
    assert acks == ["ann@x.org"]

    # the same day, a reminder pass writes nothing new to anyone; nothing more arrives that day
    before = set(folder.rglob("*.eml"))
    usecases.daily_pass(factory, settings, at(MONDAY, 12))
    dispatch(at(MONDAY, 12))
    assert received(folder, before) == {}


def two_updates_on_a_tuesday(factory, settings, tmp_path) -> datetime:
    """Two material versions published one Tuesday: two notices each, held, then one email each."""
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    usecases.import_people(factory, roster, now=at(MONDAY, 6) - timedelta(days=60))
    text = (CONTENT_DIR / "policies" / "social-media-v1.txt").read_text(encoding="utf-8")
    tuesday = MONDAY + timedelta(days=1)
    for label in ("1", "2", "3"):
        path = tmp_path / f"policy-{label}.txt"
        path.write_text(text + ("" if label == "1" else f"\n\nAddendum {label}\n\nA new rule number {label} applies.\n"),
                        encoding="utf-8")
        usecases.publish_policy_version(factory, settings, path, slug="social-media", label=label,
                                        title="Social Media Best Practices", now=at(tuesday, 10) - (timedelta(days=90) if label == "1" else timedelta()))
    return at(tuesday, 10)


def test_a_bundle_refused_for_good_fails_what_it_carries_and_one_retried_sends_it(
        factory, sendgrid_settings, sendgrid_double, tmp_path) -> None:
    from service.doubles.sendgrid import Fault

    now = two_updates_on_a_tuesday(factory, sendgrid_settings, tmp_path)
    sendgrid_double.inject(Fault(status=500), Fault(status=400))  # one bundle retries, the other is refused
    sender = usecases.dispatcher(factory, sendgrid_settings, clock=lambda: now)
    first = sender.drain()
    assert (first.retried, first.failed, first.sent) == (1, 1, 0)
    later = now + timedelta(hours=1)
    sender.clock = lambda: later
    assert sender.drain().sent == 1
    sender.close()
    with factory() as s:
        rows = s.execute(select(Person.email, Delivery.kind, Delivery.status, Delivery.bundle_id, Delivery.id)
                         .join(Person).where(Person.email != "admin@x.org").order_by(Delivery.id)).all()
    outcome = {e: {(kind, status) for e2, kind, status, _, _ in rows if e2 == e} for e in ("ann@x.org", "head@x.org")}
    [sent_to] = [e.to_email for e in sendgrid_double.emails]
    refused = ({"ann@x.org", "head@x.org"} - {sent_to}).pop()
    assert outcome[sent_to] == {("notice", "sent"), ("attention", "sent")}
    assert outcome[refused] == {("notice", "failed"), ("attention", "failed")}
    carriers = {i for e, kind, _, _, i in rows if kind == "attention"}
    assert {bundle for _, kind, _, bundle, _ in rows if kind == "notice"} == carriers  # each notice in its bundle


def test_two_updates_on_one_day_arrive_as_one_email_with_both_confirm_buttons(
        factory, sendgrid_settings, sendgrid_double, tmp_path) -> None:
    now = two_updates_on_a_tuesday(factory, sendgrid_settings, tmp_path)
    sender = usecases.dispatcher(factory, sendgrid_settings, clock=lambda: now)
    sender.drain()
    sender.close()
    mine = [e for e in sendgrid_double.emails if e.to_email == "ann@x.org"]
    assert len(mine) == 1 and mine[0].custom_args["kind"] == "attention"
    assert mine[0].subject.startswith("For your attention: ")
    assert mine[0].html.count("I've read the update") == 2
    assert sendgrid_double.duplicates == 0
