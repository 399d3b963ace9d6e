"""Nudges and escalation: reminders for unacknowledged notices, "never engages", up the chain.

Calm by design: every step is a row in ``escalations`` (who, why, level, who
was told, when, resolved when), so a second pass on the same day sends
nothing new; a supervisor gets at most one escalation email a week listing
everyone who needs attention (and who has since engaged); nothing is sent
when there is nothing to say. Levels: 0 the person (reminder or nudge),
1 their nearest active supervisor, 2 the next active one up, 3 the admin
address. A person with no (active) supervisor goes straight to the admin.

The clock pauses in school breaks: days inside the calendar's blackouts do
not count towards any threshold, and no new step is taken during a break.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, literal_column, select
from sqlalchemy.orm import Session

from service import weeks
from service.config import Settings
from service.db import in_ids
from service.outbox import NoticeRef, OutboxMessage, TipRef, enqueue
from service.models import (
    Acknowledgement,
    Delivery,
    DeliveryItem,
    Escalation,
    Notice,
    Person,
)

log = logging.getLogger(__name__)

NOTICE_REMINDER, NOTICE_OVERDUE, NEVER_ENGAGED = "notice_reminder", "notice_overdue", "never_engaged"
ADMIN_LEVEL = 3


@dataclass
class PassResult:
    reminders: list[tuple[str, int, int]] = field(default_factory=list)  # email, notice id, days before due
    nudges: list[str] = field(default_factory=list)
    escalated: list[tuple[str, str, int, str | None]] = field(default_factory=list)  # email, reason, level, told
    resolved: list[tuple[str, str, str]] = field(default_factory=list)  # email, reason, why
    emails: list[tuple[str, str]] = field(default_factory=list)  # kind, recipient
    paused: str | None = None
    warnings: list[str] = field(default_factory=list)


def notice_in(subject: str) -> int:
    """The notice a rung is about: its subject is "notice:<id>" or, for reminders, "notice:<id>:d<days>"."""
    return int(subject.split(":")[1])


# written out, not a bound parameter, so the planner can use ix_deliveries_notice_person
NOTICE_ROWS = literal_column("deliveries.kind") == literal_column("'notice'")


@dataclass
class PlannedEmail:
    message: OutboxMessage
    to: str
    on_queued: Callable[[], None] | None = None


@dataclass
class Staff:
    """Everyone, loaded once: the chain walks and exclusions need no further queries."""

    people: dict[int, Person]

    def chain_target(self, person: Person, level: int) -> Person | None:
        """The ``level``-th active supervisor above ``person`` (inactive ones are skipped)."""
        current, found = person, 0
        seen = {person.id}
        while current.supervisor_id is not None and current.supervisor_id not in seen:
            current = self.people[current.supervisor_id]
            seen.add(current.id)
            if current.active:
                found += 1
                if found == level:
                    return current
        return None


def paused_days(calendar: weeks.SchoolCalendar, start: date, end: date) -> int:
    """Days in [start, end) that fall in a school break."""
    days = 0
    for blackout in calendar.blackouts:
        first, last = max(start, blackout.start), min(end - timedelta(days=1), blackout.end)
        if first <= last:
            days += (last - first).days + 1
    return days


class Pass:
    """One reminder/escalation pass as of a moment. Call :meth:`run`; the caller commits."""

    def __init__(self, session: Session, settings: Settings, as_of: datetime, calendar: weeks.SchoolCalendar):
        self.session, self.settings, self.as_of, self.calendar = session, settings, as_of, calendar
        self.zone = ZoneInfo(settings.timezone)
        self.today = as_of.astimezone(self.zone).date()
        self.week = weeks.week_key(self.today)
        self.result = PassResult()
        columns = (Person.id, Person.email, Person.name, Person.supervisor_id, Person.active, Person.joined_at,
                   Person.undeliverable_since, Person.undeliverable_reason, Person.last_human_at,
                   Person.silent_digests, Person.silent_since)
        self.staff = Staff({p.id: p for p in session.execute(select(*columns))})  # light rows, not ORM objects
        # every rung ever recorded, as plain keys (years of history stay cheap); open ones as rows
        self.all_rows: set[tuple[int, str, str, int]] = set(session.execute(
            select(Escalation.person_id, Escalation.reason, Escalation.subject, Escalation.level)).tuples())
        self.open_rows: dict[tuple[int, str, str, int], Escalation] = {}
        self.open_of: dict[int, set[tuple[int, str, str, int]]] = defaultdict(set)  # person -> open keys
        self._notice_facts: dict[int, tuple[date | None, str]] = {}
        self.planned: list[PlannedEmail] = []
        for row in session.scalars(select(Escalation).where(Escalation.resolved_at.is_(None))):
            self._open(row)

    # ------------------------------------------------------------ helpers

    def elapsed(self, since: datetime | date) -> int:
        """School days since a moment: calendar days minus days in breaks."""
        start = since.astimezone(self.zone).date() if isinstance(since, datetime) else since
        return (self.today - start).days - paused_days(self.calendar, start, self.today)

    def eligible(self, person: Person) -> bool:
        if not person.active or person.undeliverable_since is not None:
            return False
        return self.as_of - person.joined_at >= timedelta(days=self.settings.new_hire_days)

    def step(self, person: Person, reason: str, subject: str, level: int) -> Escalation | None:
        """Record one rung unless it exists already (idempotent); returns the new row."""
        key = (person.id, reason, subject, level)
        if key in self.all_rows:
            return None
        told_person = self.staff.chain_target(person, level) if 1 <= level < ADMIN_LEVEL else None
        told_email = person.email if level == 0 else (told_person.email if told_person else self.settings.admin_email)
        if level >= 1 and told_person is None and not self.settings.admin_email:
            self.result.warnings.append(f"{person.email}: no supervisor above level {level} and NUDGE_ADMIN_EMAIL "
                                        "is not set; nobody can be told")
        row = Escalation(person_id=person.id, reason=reason, subject=subject, level=level,
                         notified_person_id=person.id if level == 0 else (told_person.id if told_person else None),
                         notified_email=told_email, opened_at=self.as_of,
                         notified_at=self.as_of if level == 0 else None)
        self.session.add(row)
        self.all_rows.add(key)
        self._open(row)
        if level >= 1:
            self.result.escalated.append((person.email, reason, level, told_email))
        return row

    def _open(self, row: Escalation) -> None:
        key = (row.person_id, row.reason, row.subject, row.level)
        self.open_rows[key] = row
        self.open_of[row.person_id].add(key)

    def resolve(self, person: Person, reason: str, subject: str, why: str) -> None:
        """Close this person's open rungs for ``reason`` about ``subject`` (also its ":d7"-style
        reminders; "notice:1" never closes "notice:12"). Looks at this person's rows only."""
        for key in sorted(k for k in self.open_of.get(person.id, ()) if k[1] == reason
                          and (k[2] == subject or k[2].startswith(f"{subject}:"))):
            row = self.open_rows.pop(key)
            self.open_of[person.id].discard(key)
            row.resolved_at, row.resolution = self.as_of, why
            if row.level >= 1 or reason == NEVER_ENGAGED:
                self.result.resolved.append((person.email, reason, why))

    def climb(self, person: Person, reason: str, subject: str) -> None:
        """Levels 2 and 3 follow level 1 after ``escalation_step_days`` school days each."""
        for level in (2, ADMIN_LEVEL):
            below = self.open_rows.get((person.id, reason, subject, level - 1))
            if below is None or self.elapsed(below.opened_at) < self.settings.escalation_step_days:
                return
            self.step(person, reason, subject, level)

    # ------------------------------------------------------------ notices

    def notices(self) -> None:
        # open rungs of a notice their person has confirmed since are resolved (only those are read:
        # a district-wide notice is confirmed by tens of thousands who have nothing open)
        waiting = sorted({(key[0], notice_in(key[2])) for key in self.open_rows
                          if key[1] in (NOTICE_REMINDER, NOTICE_OVERDUE)})
        confirmed: set[tuple[int, int]] = set()
        for start in range(0, len(waiting), 5000):
            people = {person_id for person_id, _ in waiting[start : start + 5000]}
            confirmed |= set(self.session.execute(
                select(Acknowledgement.person_id, Acknowledgement.notice_id)
                .where(in_ids(self.session, Acknowledgement.person_id, people), Acknowledgement.notice_id.is_not(None))
            ).tuples())
        for person_id, notice_id in waiting:
            if (person_id, notice_id) in confirmed:
                person = self.staff.people[person_id]
                self.resolve(person, NOTICE_REMINDER, f"notice:{notice_id}", "acknowledged")
                self.resolve(person, NOTICE_OVERDUE, f"notice:{notice_id}", "acknowledged")
        # everyone else who got a notice and has not confirmed it: reminders, then the ladder
        confirmed_it = exists().where(Acknowledgement.person_id == Delivery.person_id,
                                      Acknowledgement.notice_id == DeliveryItem.notice_id)
        recipients = self.session.execute(
            select(DeliveryItem.notice_id, Delivery.person_id).join(Delivery)
            .where(DeliveryItem.notice_id.is_not(None), NOTICE_ROWS, Delivery.person_id.is_not(None),
                   Delivery.status != "failed", ~confirmed_it).distinct()
        ).tuples().all()
        by_notice: dict[int, set[int]] = defaultdict(set)
        for notice_id, person_id in recipients:
            by_notice[notice_id].add(person_id)
        for notice in self.session.scalars(select(Notice).where(Notice.id.in_(by_notice))):
            subject = f"notice:{notice.id}"
            school_today = notice.created_at.astimezone(self.zone).date() + timedelta(days=self.elapsed(notice.created_at))
            for person_id in sorted(by_notice[notice.id]):
                person = self.staff.people[person_id]
                if not self.eligible(person):
                    continue
                if school_today > notice.due_on:
                    self.step(person, NOTICE_OVERDUE, subject, 1)
                    self.climb(person, NOTICE_OVERDUE, subject)
                    continue
                due_in = (notice.due_on - school_today).days
                passed = [d for d in self.settings.reminder_days if due_in <= d]
                if passed:  # only the latest reminder due; earlier ones missed are not sent late
                    days = min(passed)
                    row = self.step(person, NOTICE_REMINDER, f"{subject}:d{days}", 0)
                    if row is not None:
                        self.reminder_email(person, notice, days)

    def reminder_email(self, person: Person, notice: Notice, days: int) -> None:
        self.result.reminders.append((person.email, notice.id, days))
        self.outbox(person, None, "reminder", f"notice:{notice.id}:d{days}",
                    f"Reminder: please confirm the updated {notice.policy_version.policy.title}",
                    {"notice_id": notice.id, "due_on": notice.due_on.isoformat(), "days_left": days},
                    notice_ids=[notice.id])

    # ------------------------------------------------------------ never engaged

    def never_engaged(self) -> None:
        """Read from people's incremental aggregates: the silent streak and the last human signal."""
        k, grace = self.settings.never_engaged_digests, self.settings.never_engaged_grace_digests
        self.session.flush()
        episodes: dict[int, Escalation] = {
            key[0]: row for key, row in self.open_rows.items() if key[1] == NEVER_ENGAGED and key[3] == 0
        }
        nudged = select(Escalation.person_id, Escalation.opened_at).where(
            Escalation.reason == NEVER_ENGAGED, Escalation.level == 0, Escalation.resolved_at.is_(None)).subquery()
        since_nudge = dict(self.session.execute(  # digests sent after each open nudge, counted in SQL
            select(Delivery.person_id, func.count())
            .join(nudged, (nudged.c.person_id == Delivery.person_id) & (Delivery.sent_at > nudged.c.opened_at))
            .where(Delivery.kind == "digest", Delivery.status == "sent")
            .group_by(Delivery.person_id)
        ).tuples().all())
        for person_id, episode in episodes.items():
            person = self.staff.people[person_id]
            since = datetime.fromisoformat(episode.subject.removeprefix("since:"))
            if person.last_human_at is not None and person.last_human_at > since:
                self.resolve(person, NEVER_ENGAGED, episode.subject, "engaged")
            elif not person.active:
                self.resolve(person, NEVER_ENGAGED, episode.subject, "left")
            elif self.eligible(person):
                if since_nudge.get(person_id, 0) >= grace:
                    self.step(person, NEVER_ENGAGED, episode.subject, 1)
                self.climb(person, NEVER_ENGAGED, episode.subject)
        nudged = []
        for person in self.staff.people.values():
            if person.id in episodes or person.silent_digests < k or not self.eligible(person):
                continue
            subject = f"since:{person.silent_since.isoformat()}"
            if self.step(person, NEVER_ENGAGED, subject, 0) is not None:
                nudged.append(person)
        self.nudge_emails(nudged)

    def nudge_emails(self, people: list[Person]) -> None:
        """"Here's what you missed": the lead tips of the digests sent since each silence began
        (one query for everyone nudged today)."""
        if not people:
            return
        sent: dict[int, list[tuple[int, datetime, int]]] = defaultdict(list)
        for start in range(0, len(people), 5000):
            chunk = people[start : start + 5000]
            for person_id, position, sent_at, tip_id in self.session.execute(
                select(Delivery.person_id, DeliveryItem.position, Delivery.sent_at, DeliveryItem.tip_id)
                .join(Delivery)
                .where(in_ids(self.session, Delivery.person_id, [p.id for p in chunk]), Delivery.kind == "digest",
                       Delivery.status == "sent", Delivery.sent_at >= min(p.silent_since for p in chunk),
                       DeliveryItem.tip_id.is_not(None))
            ):
                sent[person_id].append((position, sent_at, tip_id))
        for person in people:
            since = person.silent_since
            tips = [tip for _, at, tip in sorted(sent[person.id], key=lambda row: row[:2]) if at >= since]
            top = list(dict.fromkeys(tips))[: self.settings.tips_per_digest]
            self.result.nudges.append(person.email)
            self.outbox(person, None, "nudge", f"nudge:{since.date().isoformat()}",
                        "Here's what you missed from our guidelines", {"since": since.isoformat()}, tip_ids=top)

    # ------------------------------------------------------------ supervisor and admin emails

    def supervisor_emails(self) -> None:
        """One email per supervisor (and the admin address) per week, only with something new."""
        rows = self.session.scalars(select(Escalation).where(Escalation.level >= 1)).all()
        by_target: dict[tuple[int | None, str | None], list[Escalation]] = defaultdict(list)
        for row in rows:
            if row.notified_email:
                by_target[(row.notified_person_id, row.notified_email)].append(row)
        for (target_id, target_email), target_rows in sorted(by_target.items(), key=lambda t: t[0][1] or ""):
            fresh = [r for r in target_rows if r.notified_at is None and r.resolved_at is None]
            if not fresh:
                continue
            last_sent = max((r.notified_at for r in target_rows if r.notified_at), default=None)
            attention = [self.describe(r) for r in target_rows if r.resolved_at is None]
            resolved = [self.describe(r) for r in target_rows
                        if r.resolved_at is not None and r.notified_at is not None
                        and (last_sent is None or r.resolved_at >= last_sent)]
            payload: dict[str, Any] = {"attention": attention, "resolved": resolved, "week": self.week}
            target = self.staff.people.get(target_id) if target_id else None
            if target is None:
                payload["undeliverable"] = [
                    {"name": p.name, "email": p.email, "reason": p.undeliverable_reason or ""}
                    for p in sorted(self.staff.people.values(), key=lambda p: p.email)
                    if p.active and p.undeliverable_since is not None
                ]
            subject = f"{len(attention)} of your team could use a check-in" if target else \
                f"Policy Nudge: {len(attention)} people need attention"
            def notified(rows: list[Escalation] = fresh) -> None:
                for row in rows:
                    row.notified_at = self.as_of

            self.outbox(target, None if target else target_email, "escalation", self.week, subject, payload,
                        on_queued=notified)

    def notice_facts(self, notice_id: int) -> tuple[date | None, str]:
        """A notice's due date and policy title, read once a pass (thousands of rows cite one notice)."""
        if notice_id not in self._notice_facts:
            notice = self.session.get(Notice, notice_id)
            self._notice_facts[notice_id] = (notice.due_on, notice.policy_version.policy.title) if notice \
                else (None, "a policy update")
        return self._notice_facts[notice_id]

    def describe(self, row: Escalation) -> dict[str, Any]:
        person = self.staff.people[row.person_id]
        if row.reason == NEVER_ENGAGED:
            since = datetime.fromisoformat(row.subject.removeprefix("since:")).astimezone(self.zone).date()
            why = "hasn't opened, clicked or confirmed any weekly tips"
        else:
            due_on, title = self.notice_facts(notice_in(row.subject))
            since = due_on or row.opened_at.date()
            why = f"hasn't confirmed the updated {title} (due {since.isoformat()})"
        return {"name": person.name, "email": person.email, "reason": row.reason, "why": why,
                "since": since.isoformat(), "level": row.level,
                "resolution": row.resolution, "resolved": row.resolved_at is not None}

    # ------------------------------------------------------------ outbox

    def outbox(self, person: Person | None, admin_email: str | None, kind: str, period: str, subject: str,
               payload: dict[str, Any], *, tip_ids: list[int] = (), notice_ids: list[int] = (),
               on_queued: Callable[[], None] | None = None) -> None:
        """Plan one email (at least once); ``write_outbox`` writes the pass's emails together and
        calls ``on_queued`` for each that was new (a recipient may have this period's already)."""
        if person is None and admin_email is None:
            return
        items = tuple(TipRef(t) for t in tip_ids) + tuple(NoticeRef(n) for n in notice_ids)
        message = OutboxMessage(kind, period, self.as_of, person_id=person.id if person else None,
                                recipient=None if person else f"admin:{admin_email}", subject=subject,
                                payload={**payload, **({} if person else {"to_email": admin_email})}, items=items)
        self.planned.append(PlannedEmail(message, person.email if person else admin_email, on_queued))

    def write_outbox(self) -> None:
        """The pass's emails in a few statements (a notice's due date can plan thousands at once)."""
        planned = {id(email.message): email for email in self.planned}
        for queued in enqueue(self.session, [email.message for email in self.planned]):
            email = planned[id(queued.message)]
            self.result.emails.append((email.message.kind, email.to))
            if email.on_queued is not None:
                email.on_queued()
        self.planned.clear()

    # ------------------------------------------------------------ the pass

    def run(self) -> PassResult:
        blackout = self.calendar.blackout_on(self.today)
        if blackout is not None:
            self.result.paused = f"{self.today.isoformat()} is in {blackout.name}: the clock pauses"
            return self.result
        self.notices()
        self.never_engaged()
        self.session.flush()
        self.supervisor_emails()
        self.write_outbox()
        self.session.flush()
        return self.result


def run_pass(session: Session, settings: Settings, as_of: datetime,
             calendar: weeks.SchoolCalendar | None = None) -> PassResult:
    return Pass(session, settings, as_of, calendar or weeks.calendar_for(settings)).run()
