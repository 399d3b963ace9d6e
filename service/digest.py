"""The weekly tip digest: who is due, which tips, and composing outbox rows.

Timing: each person's digest is due at their local send time (weekday and
time from the settings) in the ISO week of their own timezone; the period key
is that ISO week, so a DST change can neither repeat nor skip a digest.
Selection: everyone walks the tips meant for their role in one rotation order
(sections interleaved) and sees every tip once before any repeats; a new hire
starts at the beginning; a new tip joins the current cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service.config import WEEKDAYS, Settings
from service.channels import Message
from service.errors import InputErrors, NudgeError
from service.models import Delivery, DeliveryItem, Person, Tip
from service.outbox import OutboxMessage, TipRef, enqueue
from service.paths import CONTENT_DIR
from service.policies import changed_section_tips
from service.rendering import DigestRenderer
from service.roster import normalize_email, read_text
from service.tracking import make_links

KIND = "digest"
CHANNEL = "email"
PRIORITY_WINDOW = timedelta(days=28)  # a changed section's tips go first for four weeks


# ---------------------------------------------------------------- timing


def week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(key: str) -> date:
    """The Monday of an ISO week key such as 2026-W48; ValueError if malformed."""
    try:
        year, week = key.split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise ValueError(f"week {key!r} is not an ISO week like 2026-W48") from None


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def person_zone(person: Person | StaffRow, settings: Settings) -> ZoneInfo:
    return _zone(person.timezone or settings.timezone)


def send_day(key: str, settings: Settings) -> date:
    return parse_week(key) + timedelta(days=WEEKDAYS.index(settings.digest_weekday))


def send_moment(key: str, zone: ZoneInfo, settings: Settings) -> datetime:
    """The UTC instant of the digest for a week in a timezone (wall-clock time, DST-aware)."""
    local = datetime.combine(send_day(key, settings), settings.digest_time, tzinfo=zone)
    return local.astimezone(UTC)


@dataclass(frozen=True)
class Blackout:
    name: str
    start: date
    end: date


@dataclass(frozen=True)
class SchoolCalendar:
    blackouts: tuple[Blackout, ...] = ()

    def blackout_on(self, day: date) -> Blackout | None:
        return next((b for b in self.blackouts if b.start <= day <= b.end), None)


def calendar_for(settings: Settings) -> SchoolCalendar:
    return load_calendar(Path(settings.calendar_file) if settings.calendar_file else CONTENT_DIR / "calendar.yaml")


def load_calendar(path: Path) -> SchoolCalendar:
    """Read content/calendar.yaml; a missing file means no blackouts; errors name the entry."""
    if not path.exists():
        return SchoolCalendar()
    source = str(path)
    try:
        data = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as exc:
        raise InputErrors(source, [f"not valid YAML: {exc}"]) from None
    entries = data.get("blackouts", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InputErrors(source, ["'blackouts' must be a list of {name, start, end}"])
    problems, blackouts = [], []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), date) for k in ("start", "end")):
            problems.append(f"blackout #{index}: needs name, start and end dates (YYYY-MM-DD)")
            continue
        if entry["end"] < entry["start"]:
            problems.append(f"blackout #{index} ({entry.get('name')}): end is before start")
            continue
        blackouts.append(Blackout(str(entry.get("name") or f"blackout #{index}"), entry["start"], entry["end"]))
    if problems:
        raise InputErrors(source, problems)
    return SchoolCalendar(tuple(blackouts))


# ------------------------------------------------------------- selection


def rotation_order(tips: Iterable[Tip]) -> list[Tip]:
    """Pack order with sections interleaved, so one digest mixes topics."""
    by_section: dict[str, list[Tip]] = defaultdict(list)
    for tip in sorted(tips, key=lambda t: (t.position, t.id)):
        by_section[tip.section].append(tip)
    order: list[Tip] = []
    for rank in range(max((len(v) for v in by_section.values()), default=0)):
        order.extend(group[rank] for group in by_section.values() if rank < len(group))
    return order


def select_tips(
    eligible: Sequence[int],
    history: Sequence[Sequence[int]],
    count: int,
    priority: Sequence[int] = (),
) -> list[int]:
    """Pick the next ``count`` tip ids for one person.

    ``eligible`` is the rotation order of the tips meant for them, ``history``
    their earlier digests (oldest first) and ``priority`` tips to put first
    (sections changed recently). A tip does not repeat until every eligible
    tip has been shown since the cycle began.
    """
    eligible_set = set(eligible)
    seen: set[int] = set()
    for digest in history:
        for tip_id in digest:
            if tip_id in eligible_set:
                seen.add(tip_id)
                if seen >= eligible_set:
                    seen = set()
    recent = set(history[-1]) if history else set()
    picked = [t for t in dict.fromkeys(priority) if t in eligible_set][:count]
    # unseen tips first; a tip from last week's digest waits its turn (no back-to-back repeats),
    # and once the cycle is complete inside this digest, the next cycle starts from the top
    passes = (
        lambda t: t not in seen and t not in recent,
        lambda t: t not in seen,
        lambda t: t not in recent,
        lambda t: True,
    )
    for allowed in passes:
        for tip_id in eligible:
            if len(picked) >= count:
                return picked
            if tip_id not in picked and allowed(tip_id):
                picked.append(tip_id)
    return picked


# ------------------------------------------------------------- composing


@dataclass
class ComposeResult:
    composed: int = 0
    already: int = 0
    not_due: int = 0
    blackout: dict[str, int] = field(default_factory=dict)
    no_tips: int = 0


@dataclass(frozen=True)
class StaffRow:
    """The three facts composing needs of a person (lighter than a full ORM object at 100k people)."""

    id: int
    role: str
    timezone: str | None


@dataclass(frozen=True)
class Plan:
    person: Person
    week: str
    tip_ids: list[int]


def tip_catalogue(session: Session) -> dict[int, Tip]:
    tips = session.scalars(
        select(Tip).where(Tip.active.is_(True)).options(selectinload(Tip.policy))
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
            Delivery.person_id.in_(person_ids),
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
) -> list[Plan]:
    """Choose each person's tips for their week (deterministic: same history, same tips).

    ``priority`` maps tips of recently changed policy sections to when they
    changed: each goes first for everyone who has not had it since.
    """
    eligible_by_role: dict[str, list[int]] = {}
    history: dict[int, History] = {}
    for chunk in _chunks([p.id for p in people], 5000):
        history.update(_history(session, chunk, weeks))
    plans = []
    for person in people:
        if person.role not in eligible_by_role:
            eligible_by_role[person.role] = [t.id for t in rotation_order(t for t in tips.values() if t.is_for(person.role))]
        past = history.get(person.id, History())
        first = [t for t, changed in (priority or {}).items() if not past.had_since(t, changed)]
        chosen = select_tips(eligible_by_role[person.role], past.tip_lists(), settings.tips_per_digest, first)
        plans.append(Plan(person, weeks[person.id], chosen))
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
        select(Person.id, Person.role, Person.timezone).where(Person.active.is_(True)).order_by(Person.id))]
    weeks: dict[int, str] = {}
    for person in people:
        zone = person_zone(person, settings)
        key = week or week_key(now.astimezone(zone).date())
        if week is None and now < send_moment(key, zone, settings):
            result.not_due += 1
            continue
        blackout = calendar.blackout_on(send_day(key, settings))
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
    plans = plan_digests(session, settings, due, weeks, tips, priority)
    ready = [plan for plan in plans if plan.tip_ids]
    result.no_tips = len(plans) - len(ready)
    if dry_run:
        result.composed = len(ready)
        return result
    inserted = enqueue(session, [
        OutboxMessage(KIND, plan.week, now, person_id=plan.person.id, channel=CHANNEL,
                      subject=subject_for(tips[plan.tip_ids[0]]), payload={"week": plan.week},
                      items=tuple(TipRef(t) for t in plan.tip_ids))
        for plan in ready
    ])
    result.composed = len(inserted)
    result.already += len(ready) - len(inserted)
    return result


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
        .options(selectinload(Delivery.items).selectinload(DeliveryItem.tip).selectinload(Tip.policy))
    )
    if existing is not None:
        return Preview(renderer.render(existing), f"digest {key} is composed (status: {existing.status})")
    tips = tip_catalogue(session)
    priority = changed_section_tips(session, now - PRIORITY_WINDOW)
    [plan] = plan_digests(session, settings, [person], {person.id: key}, tips, priority)
    if not plan.tip_ids:
        raise NudgeError(f"no active tips for role {person.role!r}")
    chosen = [tips[t] for t in plan.tip_ids]
    note = f"digest {key} is not composed yet; tracked links become valid once it is"
    blackout = calendar_for(settings).blackout_on(send_day(key, settings))
    if blackout is not None:
        note += f" (and {key} is in {blackout.name}: no digest will be sent)"
    return Preview(renderer.message(0, person, chosen, subject_for(chosen[0]), key), note)
