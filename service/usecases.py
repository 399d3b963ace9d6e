"""Use-cases: what the service does, each in one unit of work.

The CLI, the scheduled jobs, the scheduler and the simulation call these and
nothing below them, so none of them re-orchestrates: send a week, publish a
policy version, the daily pass, the weekly summaries, dispatch. This module is
also the composition root of the dispatcher: the only place that knows which
renderer serves which channel and kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service import (
    bundles, canvas, channels, content, digests, engagement, escalation, notices, outbox, reports, roster,
)
from service.channels import Channel
from service.channels.canvas import api_from_settings
from service.config import Settings
from service.db import transaction
from service.dispatch import Dispatcher, DispatchStats, EachRow, Route
from service.models import Person, Policy, utcnow
from service.inputs import read_text
from service.paths import CONTENT_DIR
from service.policy import SectionChange, normalize_text, split_sections
from service.rendering import DigestRenderer, LetterRenderer
from service.weeks import calendar_for, week_key

# ------------------------------------------------------------------ loading


def import_content(factory: sessionmaker[Session], paths: Sequence[Path]) -> list[content.ContentResult]:
    """Load tip packs, all of them or none."""
    with transaction(factory) as session:
        return [content.import_pack(session, path) for path in paths]


@dataclass(frozen=True)
class Judged:
    """How many of a pack's tips (or questions) a version leaves sendable, and why the rest not."""

    ok: int
    held: list[tuple[str, str]]  # (id, why)
    suspended: list[tuple[str, str]]

    @classmethod
    def of(cls, verdicts: dict[str, content.Verdict]) -> Judged:
        held = [(key, v.reason) for key, v in verdicts.items() if v.state == "held"]
        suspended = [(key, v.reason) for key, v in verdicts.items() if v.state == "suspended"]
        return cls(len(verdicts) - len(held) - len(suspended), held, suspended)


@dataclass(frozen=True)
class PackCheck:
    pack: str
    policy: str
    version: str
    tips: Judged
    questions: Judged


def check_content(paths: Sequence[Path], policy_files: Sequence[Path],
                  factory: sessionmaker[Session] | None = None) -> list[PackCheck]:
    """Check packs against each version in turn (the given texts, oldest first, else the stored
    versions): InputErrors for a quote in no version or an unsupported ref; else what each holds."""
    checks = []
    given = [(file.name, split_sections(normalize_text(read_text(file)))) for file in policy_files]
    for path in paths:
        pack = content.load_pack(path)
        if given:
            history = given
        else:
            with transaction(factory) as session:
                history = content.history_of(content.get_policy(session, pack.slug))
        for upto in range(1, len(history) + 1) if history else [0]:
            verdicts = content.check_pack(pack, history[:upto], str(path))
            label = history[upto - 1][0] if history else "(none stored)"
            checks.append(PackCheck(str(path), pack.title, label, Judged.of(verdicts.tips),
                                    Judged.of(verdicts.questions)))
    return checks


@dataclass(frozen=True)
class BuiltinContent:
    tips: int
    policy: str


BUILTIN_PACK = CONTENT_DIR / "social_media.yaml"
BUILTIN_POLICY = ("social-media", "Social Media Best Practices", CONTENT_DIR / "policies" / "social-media-v1.txt")


def load_builtin_content(factory: sessionmaker[Session], now: datetime) -> BuiltinContent | None:
    """The shipped tip pack and version 1 of its policy, into a database that has no policy yet
    (a first run); None when there is one already."""
    with transaction(factory) as session:
        if session.scalar(select(func.count()).select_from(Policy)):
            return None
        slug, title, text = BUILTIN_POLICY
        content.import_version(session, text, slug=slug, label="1", title=title, now=now)
        result = content.import_pack(session, BUILTIN_PACK)
    return BuiltinContent(len(result.created), title)


def tips_to_review(factory: sessionmaker[Session]) -> list[content.TipState]:
    """Active tips that are not sent now (held or suspended), with the reason, as last judged."""
    with transaction(factory) as session:
        return content.tips_not_sent(session)


def set_preferences(factory: sessionmaker[Session], person_id: int, *, digest_weekday: str,
                    leave_until: date | None, canvas_only: bool) -> None:
    """A person's own choices (from their preferences page)."""
    with transaction(factory) as session:
        person = session.get(Person, person_id)
        person.digest_weekday, person.leave_until, person.canvas_only = digest_weekday, leave_until, canvas_only


def import_people(factory: sessionmaker[Session], path: Path, *, now: datetime | None = None, dry_run: bool = False,
                  partial: bool = False) -> roster.RosterPlan:
    """Create and update people from a roster CSV, all or nothing."""
    with transaction(factory, dry_run=dry_run) as session:
        return roster.import_roster(session, path, dry_run=dry_run, partial=partial, now=now)


# ------------------------------------------------------------------ dispatch


def dispatcher(
    factory: sessionmaker[Session],
    settings: Settings,
    channel_overrides: Mapping[str, Channel] | None = None,
    *,
    worker: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Dispatcher:
    """A dispatcher with every route this deployment has (``channel_overrides`` replace channels by name)."""
    senders = channels.from_settings(settings) if channel_overrides is None else dict(channel_overrides)
    with transaction(factory) as session:
        links = engagement.make_links(session, settings)
    letters = LetterRenderer(settings.base_url, settings.organisation, links)
    routes = [Route(EMAIL, senders[EMAIL], {
        digests.KIND: digests.DigestBatch(DigestRenderer(settings.base_url, settings.organisation, links), letters),
        **{kind: EachRow(letters.render) for kind in LetterRenderer.kinds},
    })]
    if canvas.CHANNEL in senders:
        routes.append(Route(canvas.CHANNEL, senders[canvas.CHANNEL],
                            {"*": EachRow(canvas.CanvasRenderer(settings.base_url, links).render)}))
    calendar = calendar_for(settings)
    return Dispatcher(factory, settings, routes, worker=worker, clock=clock, on_sent=_digests_sent,
                      before_claim=lambda session, now: bundles.fold(session, settings, calendar, now))


def _digests_sent(session: Session, sent: list[tuple[int | None, str, str]], now: datetime) -> None:
    """A sent digest lengthens its reader's silent streak and marks its week delivered."""
    read = [(person, week) for person, kind, week in sent if kind == digests.KIND and person]
    engagement.note_digests_sent(session, [person for person, _ in read], now)
    engagement.note_delivered(session, read)


EMAIL = "email"  # the route name of email rows, whichever backend sends them


def resume_email(factory: sessionmaker[Session]) -> None:
    """Try the email channel again with the settings as they are now (an admin may have fixed the
    key); should it still be refused, the first request pauses it again."""
    with transaction(factory) as session:
        outbox.resume(session, EMAIL)


def dispatch(factory: sessionmaker[Session], settings: Settings, *, clock: Callable[[], datetime] = utcnow,
             on_batch: Callable[[DispatchStats], None] | None = None, resume: bool = False) -> DispatchStats:
    """Send everything due once (rows waiting for a retry stay for later); ``resume`` first tries a
    paused email channel again (someone ran a command after fixing the settings)."""
    if resume:
        resume_email(factory)
    sender = dispatcher(factory, settings, clock=clock)
    try:
        return sender.drain(on_batch)
    finally:
        sender.close()


# ------------------------------------------------------------------ the weekly digest


@dataclass
class WeekQueued:
    digests: digests.ComposeResult
    canvas: canvas.CanvasCompose


def send_week(factory: sessionmaker[Session], settings: Settings, now: datetime, *, week: str | None = None,
              dry_run: bool = False) -> WeekQueued:
    """Queue the digests that are due (or all of ``week``) and the week's Canvas announcements."""
    calendar = calendar_for(settings)
    with transaction(factory, dry_run=dry_run) as session:
        composed = digests.compose(session, settings, now, calendar, week=week, dry_run=dry_run)
        posts = canvas.compose_weekly(session, settings, now, calendar, week=week)
    return WeekQueued(composed, posts)


# ------------------------------------------------------------------ policy versions


@dataclass
class Published:
    """A policy version as stored: plain values, readable after the transaction."""

    status: str  # created or unchanged
    label: str
    sections: int
    changes: list[SectionChange]
    notice_id: int | None = None
    due_on: date | None = None
    audience_size: int = 0
    queued: notices.NoticeQueued | None = None
    review: list[content.TipState] = field(default_factory=list)  # tips held or suspended by this version
    warnings: list[str] = field(default_factory=list)


def publish_policy_version(
    factory: sessionmaker[Session], settings: Settings, path: Path, *, slug: str, label: str, now: datetime,
    title: str | None = None, editorial: bool = False, material: bool = False, audience: Sequence[str] = ("all",),
    due_days: int | None = None, dry_run: bool = False,
) -> Published:
    """Store a new version; a material change opens a notice, queued at once to its audience.
    Tips it holds or suspends are listed, and the admin address hears of them."""
    with transaction(factory, dry_run=dry_run) as session:
        result = content.import_version(
            session, path, slug=slug, label=label, title=title, editorial=editorial, material=material,
            audience=list(audience), due_days=due_days or settings.notice_due_days, timezone=settings.timezone,
            now=now, calendar=calendar_for(settings))
        published = Published(result.status, result.version.label, len(result.version.sections), result.changes,
                              review=result.review, warnings=result.warnings)
        if not dry_run:
            content.tell_admin(session, settings.admin_email, slug, result, now)
        if result.notice is not None:
            published.notice_id, published.due_on = result.notice.id, result.notice.due_on
            published.audience_size = len(notices.audience_of(session, result.notice))
            if not dry_run:
                published.queued = notices.queue_notice(session, settings, result.notice, now)
    return published


# ------------------------------------------------------------------ daily and weekly passes


def settle_signals(factory: sessionmaker[Session], settings: Settings, now: datetime) -> engagement.Settled:
    """Judge the clicks whose messages have been quiet long enough; move the aggregates they settle."""
    with transaction(factory) as session:
        return engagement.settle(session, engagement.Rules.from_settings(settings), now)


@dataclass(frozen=True)
class Rebuilt:
    settled: engagement.Settled
    people: int
    changed: int  # people whose stored aggregates differed from the rebuilt ones
    weeks: int  # person-weeks recounted
    weeks_changed: int  # of them, those whose stored roll-up differed


def rebuild_engagement(factory: sessionmaker[Session], settings: Settings, now: datetime) -> Rebuilt:
    """Settle what is due, then recompute every person's aggregates and weekly roll-up from the events."""
    with transaction(factory) as session:
        settled = engagement.settle(session, engagement.Rules.from_settings(settings), now)
        before, weeks_before = engagement.snapshot(session), engagement.weekly.snapshot(session)
        people = engagement.refresh(session)
        weeks = engagement.weekly.rebuild(session, settings.timezone, now, settings.retention_days)
        engagement.weekly.fold_totals(session)
        after, weeks_after = engagement.snapshot(session), engagement.weekly.snapshot(session)
    return Rebuilt(settled, people, _changed(before, after), weeks, _changed(weeks_before, weeks_after))


def _changed(before: dict, after: dict) -> int:
    return sum(1 for key, values in after.items() if before.get(key) != values)


def daily_pass(factory: sessionmaker[Session], settings: Settings, now: datetime, *,
               dry_run: bool = False) -> escalation.PassResult:
    """Reminders, nudges and escalations due today, from settled signals only."""
    with transaction(factory, dry_run=dry_run) as session:
        return escalation.run_pass(session, settings, now)


def weekly_summaries(factory: sessionmaker[Session], settings: Settings, now: datetime, *,
                     week: str | None = None, dry_run: bool = False) -> reports.SummaryResult:
    """Queue the supervisor summaries that are due (or all of ``week``), from settled signals only.
    Hourly, so it also folds the trend's totals: what cells written since changed in them."""
    with transaction(factory, dry_run=dry_run) as session:
        engagement.weekly.fold_totals(session)
        engagement.settle(session, engagement.Rules.from_settings(settings), now)
        return reports.compose_summaries(session, settings, now, week=week, dry_run=dry_run)


def sync_canvas_reads(factory: sessionmaker[Session], settings: Settings, now: datetime, *,
                      week: str | None = None) -> canvas.ReadSync:
    """Record who read a week's Canvas announcements."""
    api = api_from_settings(settings)
    key = week or week_key(now.astimezone(ZoneInfo(settings.timezone)).date())
    with transaction(factory) as session:
        return canvas.sync_reads(session, settings, api, key, now)


def prune_engagement(factory: sessionmaker[Session], settings: Settings, now: datetime) -> int:
    """Sum raw engagement events older than the retention window into monthly totals, then delete them."""
    with transaction(factory) as session:
        return engagement.prune(session, now, settings.retention_days)
