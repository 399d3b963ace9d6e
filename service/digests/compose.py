"""The weekly tip digest: who is due, which tips, and queuing the digests in the outbox.

Timing comes from :mod:`service.weeks`, the choice of tips from
:mod:`service.digests.selection`; tips of recently changed policy sections go first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service.config import Settings
from service.db import in_ids
from service.channels import Message
from service.errors import NudgeError
from service.models import Delivery, DeliveryItem, Person, Question, Tip
from service import outbox, quiz
from service.outbox import OutboxMessage, QuestionRef, TipRef, enqueue
from service.content import changed_section_tips
from service.rendering import DigestRenderer
from service.inputs import normalize_email
from service.engagement import is_on_leave, make_links
from service.digests.selection import rotation_order, select_tips
from service.weeks import SchoolCalendar, calendar_for, person_zone, send_day, send_moment, week_key


KIND = "digest"
CHANNEL = "email"
PRIORITY_WINDOW = timedelta(days=28)  # a changed section's tips go first for four weeks
COMPOSED_WITHIN = timedelta(hours=1)  # the composer runs hourly: a due digest is queued by then


@dataclass
class ComposeResult:
    composed: int = 0
    already: int = 0
    not_due: int = 0
    blackout: dict[str, int] = field(default_factory=dict)
    no_tips: int = 0
    on_leave: int = 0
    canvas_only: int = 0
    carried: int = 0


@dataclass(frozen=True)
class StaffRow:
    """The three facts composing needs of a person (lighter than a full ORM object at 100k people)."""

    id: int
    role: str
    timezone: str | None
    digest_weekday: str | None  # the person's own digest day, if they chose one
    leave_until: date | None
    canvas_only: bool


@dataclass(frozen=True)
class Plan:
    person: Person
    week: str
    tip_ids: list[int]
    question_id: int | None = None

    def items(self) -> tuple[TipRef | QuestionRef, ...]:
        question = (QuestionRef(self.question_id),) if self.question_id is not None else ()
        return (*(TipRef(t) for t in self.tip_ids), *question)


def tip_catalogue(session: Session) -> dict[int, Tip]:
    """The tips that may be sent: in the pack, and true to the current policy text (not held or
    suspended: :func:`service.content.review_tips`)."""
    tips = session.scalars(
        select(Tip).where(Tip.active.is_(True), Tip.state == "ok").options(selectinload(Tip.policy))
    ).all()
    return {t.id: t for t in tips}


@dataclass
class History:
    """A person's earlier digests, oldest first: when each was composed and its tips."""

    digests: list[tuple[datetime, list[int]]] = field(default_factory=list)

    def tip_lists(self) -> list[list[int]]:
        return [tips for _, tips in self.digests]

    def had_since(self, tip_id: int, moment: datetime) -> bool:
        return any(tip_id in tips for created, tips in self.digests if created >= moment)


def _history(session: Session, person_ids: Sequence[int], before_week: Mapping[int, str]) -> dict[int, History]:
    """Earlier digests per person (failed sends do not count as seen)."""
    found: dict[int, dict[int, tuple[datetime, list[int]]]] = defaultdict(dict)
    rows = session.execute(
        select(Delivery.person_id, Delivery.id, Delivery.period_key, Delivery.created_at, DeliveryItem.tip_id)
        .join(DeliveryItem, DeliveryItem.delivery_id == Delivery.id)
        .where(
            Delivery.kind == KIND,
            Delivery.channel == CHANNEL,
            Delivery.status != "failed",
            in_ids(session, Delivery.person_id, person_ids),
            DeliveryItem.tip_id.is_not(None),
        )
        .order_by(Delivery.person_id, Delivery.period_key, Delivery.id, DeliveryItem.position)
    )
    for person_id, delivery_id, period, created, tip_id in rows:
        if period < before_week[person_id]:
            found[person_id].setdefault(delivery_id, (created, []))[1].append(tip_id)
    return {pid: History(list(digests.values())) for pid, digests in found.items()}


def plan_digests(
    session: Session,
    settings: Settings,
    people: Sequence[Person],
    weeks: Mapping[int, str],
    tips: Mapping[int, Tip],
    priority: Mapping[int, datetime] | None = None,
    questions: Mapping[int, Question] | None = None,
) -> list[Plan]:
    """Choose each person's tips and question for their week (deterministic: same history, same
    choice).

    ``priority`` maps tips of recently changed policy sections to when they
    changed: each goes first for everyone who has not had it since. A tip whose
    question the person answered wrong goes first for them likewise (:mod:`service.quiz`).
    """
    questions = questions or {}
    eligible_by_role: dict[str, tuple[list[int], list[int]]] = {}
    history: dict[int, History] = {}
    asked: dict[int, list[quiz.Asked]] = {}
    for chunk in _chunks([p.id for p in people], 5000):
        history.update(_history(session, chunk, weeks))
        asked.update(quiz.asked_before(session, chunk, weeks) if questions else {})
    tip_of = quiz.tips_of(questions, list(tips.values()))
    plans = []
    for person in people:
        if person.role not in eligible_by_role:
            eligible_by_role[person.role] = (
                [t.id for t in rotation_order(t for t in tips.values() if t.is_for(person.role))],
                [q.id for q in rotation_order(q for q in questions.values() if q.is_for(person.role))])
        eligible_tips, eligible_questions = eligible_by_role[person.role]
        past = history.get(person.id, History())
        their_asks = asked.get(person.id, [])
        due_first = {**(priority or {}), **quiz.tips_to_revisit(their_asks, tip_of)}
        first = [t for t, changed in due_first.items() if not past.had_since(t, changed)]
        chosen = select_tips(eligible_tips, past.tip_lists(), settings.tips_per_digest, first)
        question = quiz.next_question(eligible_questions, their_asks, weeks[person.id]) if chosen else None
        plans.append(Plan(person, weeks[person.id], chosen, question))
    return plans


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def compose(
    session: Session,
    settings: Settings,
    now: datetime,
    calendar: SchoolCalendar,
    *,
    week: str | None = None,
    priority: Mapping[int, datetime] | None = None,
    dry_run: bool = False,
) -> ComposeResult:
    """Write the outbox rows of every digest that is due (or, with ``week``, of that week).

    Rerunning is harmless: the unique (person, kind, period, channel) key keeps
    one row per person and week, even with two composers at once.
    """
    result = ComposeResult()
    people = [StaffRow(*row) for row in session.execute(
        select(Person.id, Person.role, Person.timezone, Person.digest_weekday, Person.leave_until, Person.canvas_only)
        .where(Person.active.is_(True)).order_by(Person.id))]
    weeks: dict[int, str] = {}
    for person in people:
        zone = person_zone(person, settings)
        key = week or week_key(now.astimezone(zone).date())
        if week is None and now < send_moment(key, zone, settings, person.digest_weekday):
            result.not_due += 1
            continue
        if is_on_leave(person.leave_until, send_day(key, settings, person.digest_weekday)):
            result.on_leave += 1
            continue
        if person.canvas_only and settings.canvas_enabled:  # their tips come as Canvas announcements
            result.canvas_only += 1
            continue
        blackout = calendar.blackout_on(send_day(key, settings, person.digest_weekday))
        if blackout is not None:
            result.blackout[blackout.name] = result.blackout.get(blackout.name, 0) + 1
            continue
        weeks[person.id] = key
    existing = set(
        session.execute(
            select(Delivery.person_id, Delivery.period_key).where(
                Delivery.kind == KIND, Delivery.channel == CHANNEL, Delivery.period_key.in_(set(weeks.values()))
            )
        ).tuples()
    )
    due = [p for p in people if p.id in weeks and (p.id, weeks[p.id]) not in existing]
    result.already = len(weeks) - len(due)
    tips = tip_catalogue(session)
    if priority is None:
        priority = changed_section_tips(session, now - PRIORITY_WINDOW)
    plans = plan_digests(session, settings, due, weeks, tips, priority, quiz.question_catalogue(session))
    ready = [plan for plan in plans if plan.tip_ids]
    result.no_tips = len(plans) - len(ready)
    if dry_run:
        result.composed = len(ready)
        return result
    zones = {p.id: person_zone(p, settings) for p in due}
    inserted = enqueue(session, [
        OutboxMessage(KIND, plan.week, now, person_id=plan.person.id, channel=CHANNEL,
                      subject=subject_for(tips[plan.tip_ids[0]]), payload={"week": plan.week},
                      items=plan.items(),
                      mail_day=now.astimezone(zones[plan.person.id]).date())
        for plan in ready
    ])
    # the day's held emails (a notice, a reminder...) ride in the digest: one email that day
    result.carried = outbox.carry(session, {q.message.person_id: q.delivery_id for q in inserted})
    result.composed = len(inserted)
    result.already += len(ready) - len(inserted)
    return result


def expected_later_today(session: Session, settings: Settings, person_ids: Sequence[int], now: datetime) -> set[int]:
    """Of ``person_ids``, who gets this week's digest later today, or within the hour the composer
    takes once it is due (their emails wait to ride in it).

    Leave, Canvas-only and breaks are not looked at: such a person's emails wait until the
    digest's hour has passed, then go on their own.
    """
    if not person_ids:
        return set()
    later: dict[int, str] = {}
    verdicts: dict[tuple[str | None, str | None], str | None] = {}  # the week key, for few distinct settings
    for person in session.execute(select(Person.id, Person.timezone, Person.digest_weekday)
                                  .where(in_ids(session, Person.id, person_ids))):
        setting = (person.timezone, person.digest_weekday)
        if setting not in verdicts:
            zone = person_zone(person, settings)
            key = week_key(now.astimezone(zone).date())
            coming = send_day(key, settings, person.digest_weekday) == now.astimezone(zone).date() and (
                now < send_moment(key, zone, settings, person.digest_weekday) + COMPOSED_WITHIN)
            verdicts[setting] = key if coming else None
        if verdicts[setting] is not None:
            later[person.id] = verdicts[setting]
    if not later:
        return set()
    composed = set(session.execute(select(Delivery.person_id, Delivery.period_key).where(
        Delivery.kind == KIND, Delivery.channel == CHANNEL, in_ids(session, Delivery.person_id, list(later)),
        Delivery.period_key.in_(set(later.values())))).tuples())
    return {person for person, key in later.items() if (person, key) not in composed}


def subject_for(lead: Tip) -> str:
    return f"This week: {lead.title}"


@dataclass
class Preview:
    message: Message
    note: str | None = None


def preview(session: Session, settings: Settings, email: str, now: datetime, *, week: str | None = None) -> Preview:
    """The person's digest for a week: the composed one if it exists, else what compose would pick."""
    person = session.scalar(select(Person).where(Person.email == normalize_email(email)))
    if person is None:
        raise NudgeError(f"no person with email {email!r}")
    key = week or week_key(now.astimezone(person_zone(person, settings)).date())
    renderer = DigestRenderer(settings.base_url, settings.organisation, make_links(session, settings))
    existing = session.scalar(
        select(Delivery)
        .where(Delivery.person_id == person.id, Delivery.kind == KIND, Delivery.channel == CHANNEL,
               Delivery.period_key == key)
        .options(selectinload(Delivery.items).selectinload(DeliveryItem.tip).selectinload(Tip.policy),
                 selectinload(Delivery.items).selectinload(DeliveryItem.question).selectinload(Question.policy))
    )
    if existing is not None:
        return Preview(renderer.render(existing), f"digest {key} is composed (status: {existing.status})")
    tips = tip_catalogue(session)
    priority = changed_section_tips(session, now - PRIORITY_WINDOW)
    questions = quiz.question_catalogue(session)
    [plan] = plan_digests(session, settings, [person], {person.id: key}, tips, priority, questions)
    if not plan.tip_ids:
        raise NudgeError(f"no active tips for role {person.role!r}")
    chosen = [tips[t] for t in plan.tip_ids]
    question = questions[plan.question_id] if plan.question_id is not None else None
    note = f"digest {key} is not composed yet; tracked links become valid once it is"
    blackout = calendar_for(settings).blackout_on(send_day(key, settings))
    if blackout is not None:
        note += f" (and {key} is in {blackout.name}: no digest will be sent)"
    return Preview(renderer.message(0, person, chosen, subject_for(chosen[0]), key, question=question), note)
