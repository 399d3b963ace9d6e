"""Deciding one escalation pass: a pure function of the loaded state and the day.

Calm by design: every step is a rung (who, why, level, who was told, when,
resolved when), so a second pass on the same day decides nothing new; a
supervisor gets at most one escalation email a week listing everyone who needs
attention (and who has since engaged); nothing is sent when there is nothing to
say. Levels: 0 the person (reminder or nudge), 1 their nearest active
supervisor, 2 the next active one up, 3 the admin address. A person with no
(active) supervisor goes straight to the admin.

The clock pauses in school breaks: days inside the calendar's blackouts do not
count towards any threshold, and no new step is taken during a break.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from collections.abc import Sequence
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from service.config import Settings
from service.escalation.facts import (
    NEVER_ENGAGED,
    NOTICE_OVERDUE,
    NOTICE_REASONS,
    NOTICE_REMINDER,
    NoticeFacts,
    Rung,
    RungKey,
    StaffMember,
    State,
    notice_in,
)
from service.engagement.definition import is_on_leave, is_reachable
from service.weeks import SchoolCalendar, week_key

ADMIN_LEVEL = 3
# an escalation email's groups, most pressing first; a person is listed once, in their first group
GROUPS = ((NOTICE_OVERDUE, "Overdue policy updates"), (NEVER_ENGAGED, "Not engaging with the weekly tips"))


@dataclass
class PassResult:
    reminders: list[tuple[str, int, int]] = field(default_factory=list)  # email, notice id, days before due
    nudges: list[str] = field(default_factory=list)
    escalated: list[tuple[str, str, int, str | None]] = field(default_factory=list)  # email, reason, level, told
    resolved: list[tuple[str, str, str]] = field(default_factory=list)  # email, reason, why
    emails: list[tuple[str, str]] = field(default_factory=list)  # kind, recipient (filled when queued)
    paused: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Email:
    """An email the pass wants sent; ``notifies`` are the rungs it tells a supervisor about."""

    kind: str
    period: str
    subject: str
    payload: dict[str, Any]
    to: str
    person_id: int | None = None  # None: to the admin address ``to``
    tip_ids: tuple[int, ...] = ()
    notice_ids: tuple[int, ...] = ()
    notifies: tuple[RungKey, ...] = ()


@dataclass
class Intents:
    """What the pass decided, for :func:`service.escalation.apply.apply` to write."""

    new_rungs: list[Rung] = field(default_factory=list)
    resolutions: list[tuple[RungKey, str]] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)
    result: PassResult = field(default_factory=PassResult)


def paused_days(calendar: SchoolCalendar, start: date, end: date) -> int:
    """Days in [start, end) that fall in a school break."""
    days = 0
    for blackout in calendar.blackouts:
        first, last = max(start, blackout.start), min(end - timedelta(days=1), blackout.end)
        if first <= last:
            days += (last - first).days + 1
    return days


class NoticeStep(NamedTuple):
    reason: str
    subject: str
    level: int
    days: int | None = None  # a reminder's days before the due date

    @property
    def key(self) -> tuple[str, str, int]:
        return self.reason, self.subject, self.level


def school_days_since(since: datetime | date, today: date, zone: ZoneInfo, calendar: SchoolCalendar) -> int:
    """School days from a moment to ``today``: calendar days minus days in breaks."""
    start = since.astimezone(zone).date() if isinstance(since, datetime) else since
    return (today - start).days - paused_days(calendar, start, today)


def notice_step(notice: NoticeFacts, today: date, zone: ZoneInfo, calendar: SchoolCalendar,
                reminder_days: Sequence[int]) -> NoticeStep | None:
    """The rung a notice asks of everyone who has not confirmed it today:
    the supervisor once it is overdue, else the latest reminder due (earlier ones missed are not
    sent late; one due on the days off before the next school day goes out today), else none."""
    subject = f"notice:{notice.id}"
    school_today = notice.created_at.astimezone(zone).date() + timedelta(
        days=school_days_since(notice.created_at, today, zone, calendar))
    if school_today > notice.due_on:
        return NoticeStep(NOTICE_OVERDUE, subject, 1)
    due_in = (notice.due_on - school_today).days - calendar.days_off_after(today)
    passed = [days for days in reminder_days if due_in <= days]
    return NoticeStep(NOTICE_REMINDER, f"{subject}:d{min(passed)}", 0, min(passed)) if passed else None


def closes(subject: str, rung_subject: str) -> bool:
    """Whether resolving ``subject`` closes a rung about ``rung_subject``: the same subject, or its
    ":d7"-style reminders ("notice:1" never closes "notice:12")."""
    return rung_subject == subject or rung_subject.startswith(f"{subject}:")


def decide(state: State, settings: Settings, as_of: datetime, calendar: SchoolCalendar) -> Intents:
    """The pass as of a moment: pure, so every rule is tested without a database."""
    return _Pass(state, settings, as_of, calendar).run()


class _Pass:
    def __init__(self, state: State, settings: Settings, as_of: datetime, calendar: SchoolCalendar):
        self.state, self.settings, self.as_of, self.calendar = state, settings, as_of, calendar
        self.zone = ZoneInfo(settings.timezone)
        self.today = as_of.astimezone(self.zone).date()
        self.week = week_key(self.today)
        self.intents = Intents()
        self.keys = set(state.all_keys)
        self.open: dict[RungKey, Rung] = {}
        self.open_of: dict[int, set[RungKey]] = defaultdict(set)  # person -> open keys
        for rung in state.open_rungs:
            self._open(rung)
        self.closed: dict[RungKey, Rung] = {}  # resolved in this pass

    # ------------------------------------------------------------ helpers

    def elapsed(self, since: datetime | date) -> int:
        return school_days_since(since, self.today, self.zone, self.calendar)

    def eligible(self, person: StaffMember) -> bool:
        """The ladder asks only about reachable people: the same denominator as every rate."""
        return is_reachable(active=person.active, undeliverable=person.undeliverable_since is not None,
                            joined_at=person.joined_at, as_of=self.as_of, new_hire_days=self.settings.new_hire_days,
                            on_leave=is_on_leave(person.leave_until, self.today))

    def chain_target(self, person: StaffMember, level: int) -> StaffMember | None:
        """The ``level``-th active supervisor above ``person`` (inactive ones are skipped)."""
        current, found, seen = person, 0, {person.id}
        while current.supervisor_id is not None and current.supervisor_id not in seen:
            current = self.state.people[current.supervisor_id]
            seen.add(current.id)
            if current.active:
                found += 1
                if found == level:
                    return current
        return None

    def _open(self, rung: Rung) -> None:
        self.open[rung.key] = rung
        self.open_of[rung.person_id].add(rung.key)

    def step(self, person: StaffMember, reason: str, subject: str, level: int) -> bool:
        """Add one rung unless it exists already (idempotent); True if it is new."""
        key = (person.id, reason, subject, level)
        if key in self.keys:
            return False
        told = self.chain_target(person, level) if 1 <= level < ADMIN_LEVEL else None
        told_email = person.email if level == 0 else (told.email if told else self.settings.admin_email)
        if level >= 1 and told is None and not self.settings.admin_email:
            self.intents.result.warnings.append(f"{person.email}: no supervisor above level {level} and "
                                                "NUDGE_ADMIN_EMAIL is not set; nobody can be told")
        rung = Rung(key, self.as_of, person.id if level == 0 else (told.id if told else None), told_email,
                    notified_at=self.as_of if level == 0 else None)
        self.intents.new_rungs.append(rung)
        self.keys.add(key)
        self._open(rung)
        if level >= 1:
            self.intents.result.escalated.append((person.email, reason, level, told_email))
        return True

    def resolve(self, person: StaffMember, reason: str, subject: str, why: str) -> None:
        """Close this person's open rungs for ``reason`` about ``subject``."""
        for key in sorted(k for k in self.open_of.get(person.id, ()) if k[1] == reason and closes(subject, k[2])):
            rung = self.open.pop(key)
            self.open_of[person.id].discard(key)
            self.closed[key] = rung._replace(resolved_at=self.as_of, resolution=why)
            self.intents.resolutions.append((key, why))
            if rung.level >= 1 or reason == NEVER_ENGAGED:
                self.intents.result.resolved.append((person.email, reason, why))

    def climb(self, person: StaffMember, reason: str, subject: str) -> None:
        """Levels 2 and 3 follow level 1 after ``escalation_step_days`` school days each."""
        for level in (2, ADMIN_LEVEL):
            below = self.open.get((person.id, reason, subject, level - 1))
            if below is None or self.elapsed(below.opened_at) < self.settings.escalation_step_days:
                return
            self.step(person, reason, subject, level)

    def email(self, email: Email) -> None:
        self.intents.emails.append(email)

    # ------------------------------------------------------------ notices

    def notices(self) -> None:
        waiting = sorted({(key[0], notice_in(key[2])) for key in self.open if key[1] in NOTICE_REASONS})
        for person_id, notice_id in waiting:
            if (person_id, notice_id) in self.state.confirmed:
                person = self.state.people[person_id]
                self.resolve(person, NOTICE_REMINDER, f"notice:{notice_id}", "acknowledged")
                self.resolve(person, NOTICE_OVERDUE, f"notice:{notice_id}", "acknowledged")
        for notice_id in sorted(self.state.unconfirmed):
            notice = self.state.notices[notice_id]
            step = notice_step(notice, self.today, self.zone, self.calendar, self.settings.reminder_days)
            if step is None:
                continue
            for person_id in sorted(self.state.unconfirmed[notice_id]):
                person = self.state.people[person_id]
                if not self.eligible(person):
                    continue
                if step.reason == NOTICE_OVERDUE:
                    self.step(person, *step.key)
                    self.climb(person, step.reason, step.subject)
                elif self.step(person, *step.key):
                    self.reminder(person, notice, step.days)

    def reminder(self, person: StaffMember, notice: NoticeFacts, days: int) -> None:
        self.intents.result.reminders.append((person.email, notice.id, days))
        self.email(Email("reminder", f"notice:{notice.id}:d{days}",
                         f"Reminder: please confirm the updated {notice.title}",
                         {"notice_id": notice.id, "due_on": notice.due_on.isoformat(), "days_left": days},
                         person.email, person.id, notice_ids=(notice.id,)))

    # ------------------------------------------------------------ never engaged

    def never_engaged(self) -> None:
        """Read from people's incremental aggregates: the silent streak and the last engagement."""
        k, grace = self.settings.never_engaged_digests, self.settings.never_engaged_grace_digests
        episodes = {key[0]: rung for key, rung in self.open.items() if key[1] == NEVER_ENGAGED and key[3] == 0}
        for person_id, episode in episodes.items():
            person = self.state.people[person_id]
            since = datetime.fromisoformat(episode.subject.removeprefix("since:"))
            if person.last_engaged_at is not None and person.last_engaged_at > since:
                self.resolve(person, NEVER_ENGAGED, episode.subject, "engaged")
            elif not person.active:
                self.resolve(person, NEVER_ENGAGED, episode.subject, "left")
            elif self.eligible(person):
                if self.state.digests_since_nudge.get(person_id, 0) >= grace:
                    self.step(person, NEVER_ENGAGED, episode.subject, 1)
                self.climb(person, NEVER_ENGAGED, episode.subject)
        for person in self.state.people.values():
            if person.id in episodes or person.silent_digests < k or not self.eligible(person):
                continue
            if self.step(person, NEVER_ENGAGED, f"since:{person.silent_since.isoformat()}", 0):
                self.nudge(person)

    def nudge(self, person: StaffMember) -> None:
        """"Here's what you missed": the lead tips of the digests sent since the silence began."""
        since = person.silent_since
        sent = [row for row in self.state.digests_since_silence.get(person.id, []) if row[0] >= since]
        leads_first = sorted(sent, key=lambda row: (row[1], row[0]))  # every digest's first tip, then seconds...
        top = list(dict.fromkeys(tip for _, _, tip in leads_first))[: self.settings.tips_per_digest]
        self.intents.result.nudges.append(person.email)
        self.email(Email("nudge", f"nudge:{since.date().isoformat()}", "Here's what you missed from our guidelines",
                         {"since": since.isoformat()}, person.email, person.id, tip_ids=tuple(top)))

    # ------------------------------------------------------------ supervisor and admin emails

    def supervisor_emails(self) -> None:
        """One email per supervisor (and the admin address) per week, only with something new:
        one line per person with all their reasons, grouped by reason, new ones marked."""
        loaded = [self.closed.get(r.key, r) for r in self.state.notified_rungs]
        made = [r for r in self.intents.new_rungs if r.level >= 1]
        by_target: dict[tuple[int | None, str], list[Rung]] = defaultdict(list)
        for rung in loaded + [self.closed.get(r.key, r) for r in made]:
            if rung.notified_email:
                by_target[(rung.notified_person_id, rung.notified_email)].append(rung)
        for (target_id, target_email), rungs in sorted(by_target.items(), key=lambda t: t[0][1]):
            fresh = [r for r in rungs if r.notified_at is None and r.resolved_at is None]
            if not fresh:
                continue
            target = self.state.people.get(target_id) if target_id else None
            payload = self.letter(rungs)
            count = payload["people_count"]
            if target is not None:
                subject = f"{count} of your team could use a check-in" if count != 1 else \
                    "1 person on your team could use a check-in"
            else:
                payload["undeliverable"] = [
                    {"name": p.name, "email": p.email, "reason": p.undeliverable_reason or ""}
                    for p in sorted(self.state.people.values(), key=lambda p: p.email)
                    if p.active and p.undeliverable_since is not None
                ]
                subject = f"Policy Nudge: {count} {'person needs' if count == 1 else 'people need'} attention"
                if payload["undeliverable"]:
                    bounced = len(payload["undeliverable"])
                    subject += f", {bounced} {'address' if bounced == 1 else 'addresses'} undeliverable"
            self.email(Email("escalation", self.week, subject, payload, target.email if target else target_email,
                             target.id if target else None, notifies=tuple(r.key for r in fresh)))

    def letter(self, rungs: list[Rung]) -> dict[str, Any]:
        """What one recipient is told: each person once, with every open reason, grouped by their
        most pressing reason; who is new since the last note; who has caught up since."""
        last_sent = max((r.notified_at for r in rungs if r.notified_at), default=None)
        open_of: dict[int, list[Rung]] = defaultdict(list)
        for rung in rungs:
            if rung.resolved_at is None:
                open_of[rung.person_id].append(rung)
        groups = {reason: {"reason": reason, "title": title, "new": [], "known": []}
                  for reason, title in GROUPS}
        for person_id, person_rungs in sorted(open_of.items(), key=lambda item: self.state.people[item[0]].name):
            person = self.state.people[person_id]
            reasons = sorted({self.why(r) for r in person_rungs})
            first = min((r.reason for r in person_rungs), key=[reason for reason, _ in GROUPS].index)
            is_new = all(r.notified_at is None for r in person_rungs)
            line = {"name": person.name, "email": person.email, "reasons": reasons}
            groups[first]["new" if is_new else "known"].append(line)
        caught_up = sorted({self.state.people[r.person_id].name for r in rungs
                            if r.resolved_at is not None and r.notified_at is not None
                            and (last_sent is None or r.resolved_at >= last_sent) and r.person_id not in open_of})
        return {"groups": [g for g in groups.values() if g["new"] or g["known"]], "caught_up": caught_up,
                "people_count": len(open_of), "week": self.week}

    def why(self, rung: Rung) -> str:
        if rung.reason == NEVER_ENGAGED:
            since = datetime.fromisoformat(rung.subject.removeprefix("since:")).astimezone(self.zone).date()
            return (f"no clicks, confirmations, Canvas reads or quick-check answers on the weekly tips since "
                    f"{since.isoformat()}")
        notice = self.state.notices.get(notice_in(rung.subject))
        due = notice.due_on.isoformat() if notice else "an earlier date"
        return f"hasn't confirmed the updated {notice.title if notice else 'policy'} (due {due})"

    # ------------------------------------------------------------ the pass

    def run(self) -> Intents:
        blackout = self.calendar.blackout_on(self.today)
        if blackout is not None:
            self.intents.result.paused = f"{self.today.isoformat()} is in {blackout.name}: the clock pauses"
            return self.intents
        if not self.calendar.is_school_day(self.today):
            self.intents.result.paused = f"{self.today:%A} {self.today.isoformat()} is not a school day: " \
                                         "nothing is sent until the next one"
            return self.intents
        self.notices()
        self.never_engaged()
        self.supervisor_emails()
        return self.intents
