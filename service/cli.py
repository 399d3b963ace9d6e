"""The `nudge` command line. Each command opens one transaction; bad input exits non-zero."""

from __future__ import annotations

import logging
import secrets
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO
from collections import Counter
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from rich.progress import Progress

from sqlalchemy import select

from service import canvas, content, digests, logs, outbox, reports, roster
from service.weeks import parse_week
from service.policy import SectionChange, compare, is_material
from service.db import migrate
from service import usecases
from service.channels import route_names
from service.channels.canvas import CanvasConfigError, api_from_settings
from service.config import Settings, load_settings
from service.db import make_engine, make_sessionmaker, transaction
from service.errors import InputErrors, NudgeError
from service.models import Person, utcnow


console = Console(soft_wrap=True, markup=False)  # stored values and paths are never read as markup
err_console = Console(stderr=True, soft_wrap=True, markup=False)
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Policy Nudge: tips, read receipts and nudges for staff.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
roster_app = typer.Typer(no_args_is_help=True, help="People and supervisors.")
content_app = typer.Typer(no_args_is_help=True, help="Tip packs.")
policy_app = typer.Typer(no_args_is_help=True, help="Policy texts and versions.")
digest_app = typer.Typer(no_args_is_help=True, help="The weekly tip digest.")
canvas_app = typer.Typer(no_args_is_help=True, help="Canvas LMS announcements.")
report_app = typer.Typer(no_args_is_help=True, help="Supervisor summaries and CSV reports.")
engagement_app = typer.Typer(no_args_is_help=True, help="Read receipts and the aggregates derived from them.")
app.add_typer(db_app, name="db")
app.add_typer(roster_app, name="roster")
app.add_typer(content_app, name="content")
app.add_typer(policy_app, name="policy")
app.add_typer(digest_app, name="digest")
app.add_typer(canvas_app, name="canvas")
app.add_typer(report_app, name="report")
app.add_typer(engagement_app, name="engagement")


@dataclass
class Runtime:
    """What every command needs, built once from the settings."""

    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def sessions(self) -> sessionmaker[Session]:
        migrate.require_current_schema(self.engine)
        return make_sessionmaker(self.engine)


def runtime(ctx: typer.Context) -> Runtime:
    return ctx.find_root().obj


@app.callback()
def _load(ctx: typer.Context) -> None:
    settings = load_settings()
    logs.configure(settings, logging.INFO if ctx.invoked_subcommand == "serve" else logging.WARNING)
    ctx.obj = Runtime(settings)


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    no_content: Annotated[bool, typer.Option("--no-content", help="Do not load the built-in tips and policy.")] = False,
) -> None:
    """Apply the Alembic migrations to NUDGE_DATABASE_URL; a database with no policy yet gets the
    built-in tip pack and version 1 of its policy (replace them with your own at any time)."""
    rt = runtime(ctx)
    migrate.upgrade(rt.engine)
    console.print(f"database at revision {migrate.current_revision(rt.engine)}")
    if not no_content:
        loaded = usecases.load_builtin_content(rt.sessions(), utcnow())
        if loaded:
            console.print(f"loaded the built-in tips ({loaded.tips}) and version 1 of {loaded.policy}; "
                          "your own: nudge content import FILE, nudge policy import FILE", markup=False)


INIT_TEMPLATE = """\
# Policy Nudge settings, written by `nudge init` on {today}. The service reads this file from the
# folder it runs in; a real environment variable wins over a line here. README: "Configuration".

# Edit these two: where staff reach the service (every link in every email starts with it),
# and the address the emails come from.
NUDGE_BASE_URL={base_url}
NUDGE_FROM_EMAIL={from_email}

# Generated for you; keep them secret (this file is in .gitignore).
NUDGE_SECRET_KEY={secret_key}
NUDGE_ADMIN_TOKEN={admin_token}

NUDGE_TIMEZONE={timezone}
NUDGE_DATABASE_URL=sqlite:///nudge.db
NUDGE_EMAIL_BACKEND=outbox
NUDGE_OUTBOX_DIR=outbox
# NUDGE_ADMIN_EMAIL=it@example.org
# NUDGE_REPLY_TO=someone-who-reads-replies@example.org
# NUDGE_ORGANISATION=The Blake School
"""


@app.command()
def init(
    base_url: Annotated[str, typer.Option("--base-url", help="Where staff reach the service.")] =
        "https://nudge.example.org",
    from_email: Annotated[str, typer.Option("--from-email", help="The sender address.")] = "staff-tips@example.org",
    timezone: Annotated[str, typer.Option("--timezone", help="The school's IANA timezone.")] = "America/Chicago",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing .env.")] = False,
) -> None:
    """Write a commented .env in this folder: a generated secret key and admin token, the base URL,
    the sender and the timezone. Then edit its two marked lines and run `nudge db upgrade`."""
    path = Path(".env")
    if path.exists() and not force:
        raise NudgeError(f"{path.resolve()} exists; keep it, or write a new one with --force")
    path.write_text(INIT_TEMPLATE.format(
        today=date.today().isoformat(), base_url=base_url, from_email=from_email, timezone=timezone,
        secret_key=secrets.token_urlsafe(32), admin_token=secrets.token_urlsafe(32)), encoding="utf-8")
    path.chmod(0o600)
    console.print(f"wrote {path.resolve()}: edit NUDGE_BASE_URL and NUDGE_FROM_EMAIL, then run nudge db upgrade",
                  markup=False)


@app.command()
def status(ctx: typer.Context) -> None:
    """What is loaded: people, teams, tips, policies, outbox and engagement."""
    factory = runtime(ctx).sessions()
    with transaction(factory) as session:
        summary = reports.status_summary(session)
    people = _table(("role", "active", "inactive"), "People by role", summary.people_by_role)
    people.add_row("total", str(sum(r[1] for r in summary.people_by_role)),
                   str(sum(r[2] for r in summary.people_by_role)), style="bold")
    tables = [people,
              _table(("supervisor", "active reports"), "Teams", [(name, n) for name, _, n in summary.teams]),
              _table(("policy", "section", "tips", "inactive", "questions"), "Tips by section (active, inactive; questions)",
                     summary.tips_by_section),
              _table(("policy", "title", "versions", "latest"), "Policies",
                     [(*row[:3], row[3] or "–") for row in summary.policies])]
    if summary.deliveries:
        tables.append(_table(("kind", "status", "count"), "Outbox", summary.deliveries))
    if summary.engagement:
        tables.append(_table(("event", "machine", "count"), "Engagement events",
                             [(kind, "yes" if machine else "no", n) for kind, machine, n in summary.engagement]))
    if summary.undeliverable:
        tables.append(_table(("email", "reason"), "Undeliverable (excluded from 'never engaged')",
                             [(email, reason or "") for email, reason in summary.undeliverable]))
    for table in tables:
        console.print(table)
    _warn_paused(factory)


def _table(columns: tuple[str, ...], title: str, rows) -> Table:
    """A table of stored values: shown as they are, never read as Rich markup."""
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(Text(str(value)) for value in row))
    return table


@roster_app.command("import")
def roster_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Roster CSV (see DESIGN.md for the header).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan, write nothing.")] = False,
    partial: Annotated[bool, typer.Option("--partial", help="Only add and update; keep people missing from the file.")] = False,
) -> None:
    """Create and update people from a CSV, all or nothing."""
    plan = usecases.import_people(runtime(ctx).sessions(), file, dry_run=dry_run, partial=partial)
    counts = ", ".join(f"{k} {v}" for k, v in plan.counts().items())
    console.print(f"{'would import' if dry_run else 'imported'} {file}: {counts}")


@roster_app.command("clear-undeliverable")
def roster_clear_undeliverable(
    ctx: typer.Context, email: Annotated[str, typer.Argument(help="The person's email.")]
) -> None:
    """Clear a person's undeliverable flag (after fixing their address or mailbox)."""
    with transaction(runtime(ctx).sessions()) as session:
        if not roster.clear_undeliverable(session, email):
            raise NudgeError(f"no person with email {email!r}")
    console.print(f"{email}: deliverable again")


@content_app.command("import")
def content_import(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="Tip pack YAML file(s); default: the built-in pack.")]
    = None,
) -> None:
    """Load tip packs; re-importing changes nothing, edits update, removals deactivate."""
    paths = paths or [usecases.BUILTIN_PACK]
    results = usecases.import_content(runtime(ctx).sessions(), paths)
    for path, result in zip(paths, results, strict=True):
        counts = ", ".join(f"{k} {v}" for k, v in result.counts().items())
        console.print(f"imported {path}: {counts}")
        if any(result.question_counts().values()):
            counts = ", ".join(f"{k} {v}" for k, v in result.question_counts().items())
            console.print(f"  questions: {counts}")
        for warning in result.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(str(path))}: {escape(warning)}", markup=True)
        _print_review(result.review)


def _print_review(review: list[content.TipState]) -> None:
    """Tips that are not sent (held, suspended) or whose state just changed, with the reason;
    many tips for one reason (a pack loaded before its policy text) on one line."""
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for tip in review:
        groups.setdefault((tip.what, tip.was, tip.state, tip.reason), []).append(tip.key)
    for (what, was, state, reason), keys in groups.items():
        change = f"{was} -> {state}" if was != state else state
        why = f" ({reason})" if reason else ""
        if len(keys) == 1:
            console.print(f"  {what} {keys[0]}: {change}{why}", markup=False)
        else:
            shown = ", ".join(keys[:4]) + (", …" if len(keys) > 4 else "")
            console.print(f"  {len(keys)} {what}s: {change}{why}: {shown}", markup=False)


@content_app.command("check")
def content_check(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Tip pack YAML file(s).")],
    policy_files: Annotated[list[Path] | None, typer.Option(
        "--policy-file", help="A version of the policy text, oldest first (repeat); default: the stored versions.")] = None,
) -> None:
    """Check that every tip and question quotes its section verbatim and cites only policies its section names,
    against each version in turn; lists the tips each version holds or suspends. Writes nothing."""
    results = usecases.check_content(paths, policy_files or [], None if policy_files else runtime(ctx).sessions())
    for check in results:
        tips, questions = check.tips, check.questions
        console.print(f"{check.pack} against {check.policy} version {check.version}: {tips.ok} tip(s) ok, "
                      f"{len(tips.held)} held, {len(tips.suspended)} suspended; {questions.ok} question(s) ok, "
                      f"{len(questions.held)} held, {len(questions.suspended)} suspended", markup=False)
        for what, judged in (("tip", tips), ("question", questions)):
            for key, why in judged.held + judged.suspended:
                console.print(f"  {what} {key}: {why}", markup=False)


@content_app.command("review")
def content_review(ctx: typer.Context) -> None:
    """The tips that are not sent now, and why: held until their section exists, or suspended
    because a version changed what they quote."""
    review = usecases.tips_to_review(runtime(ctx).sessions())
    if not review:
        console.print("every active tip is true to the current policy text")
    _print_review(review)


@policy_app.command("import")
def policy_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Policy text: plain text or Markdown.")],
    policy: Annotated[str, typer.Option("--policy", help="Policy slug, e.g. social-media.")],
    version: Annotated[str, typer.Option("--version", help="Version label, e.g. 2 or 2026-09.")],
    title: Annotated[str | None, typer.Option("--title", help="Title, needed for a new policy.")] = None,
    audience: Annotated[str, typer.Option("--audience", help="Who must acknowledge: all, or roles like teacher,coach.")] = "all",
    due_days: Annotated[int | None, typer.Option("--due-days", min=1, max=3650, help="Days to acknowledge (default NUDGE_NOTICE_DUE_DAYS).")] = None,
    editorial: Annotated[bool, typer.Option("--editorial", help="Treat it as editorial: no re-acknowledgement.")] = False,
    material: Annotated[bool, typer.Option("--material", help="Treat it as material: everyone re-confirms.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the comparison; store and send nothing.")] = False,
) -> None:
    """Store a new version of a policy; a material change notifies the audience at once."""
    if editorial and material:
        raise NudgeError("--editorial and --material contradict each other: give one")
    rt = runtime(ctx)
    roles = [r.strip().lower() for r in audience.split(",") if r.strip()] or ["all"]
    factory = rt.sessions()
    result = usecases.publish_policy_version(factory, rt.settings, file, slug=policy, label=version, title=title,
                                             editorial=editorial, material=material, audience=roles,
                                             due_days=due_days, now=utcnow(), dry_run=dry_run)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(str(file))}: {escape(warning)}", markup=True)
    if result.status == "unchanged":
        console.print(f"{policy}: text identical to version {result.label}; nothing stored")
        return
    counts = Counter(c.status for c in result.changes)
    detail = ", ".join(f"{counts[k]} {k}" for k in ("added", "changed", "removed", "editorial", "unchanged") if counts[k])
    verb = "would store" if dry_run else "stored"
    console.print(f"{policy}: {verb} version {result.label} with {result.sections} sections"
                  + (f" ({detail})" if detail else ""))
    _print_changes(result.changes)
    if result.notice_id is not None:
        console.print(("would send " if dry_run else "") +
                      f"material change: notice #{result.notice_id} for {', '.join(roles)} "
                      f"({result.audience_size} people), due {result.due_on.isoformat()}")
    elif result.changes:
        console.print("editorial change: stored, no notice" + (" (--editorial)" if editorial else ""))
    _print_review(result.review)
    if result.queued is not None:
        console.print(f"queued {result.queued.emails} email(s) and {result.queued.canvas_posts} Canvas post(s)")
        _dispatch(rt.settings, factory)


def _print_changes(changes: list[SectionChange]) -> None:
    styles = {"added": "green", "removed": "red", "changed": "yellow", "editorial": "cyan"}
    for change in changes:
        if change.status == "unchanged":
            continue
        console.print(f"[{styles[change.status]}]{change.status:>9}[/]  {escape(change.title)}"
                      f"  [dim]({escape(change.reason)})[/]", markup=True)
        if change.status in ("changed", "editorial"):
            runs = change.word_diff()
            for index, (op, text) in enumerate(runs):
                if op == "=":
                    continue
                before = runs[index - 1][1].split()[-6:] if index and runs[index - 1][0] == "=" else []
                line = Text("           …" + " ".join(before) + " ")
                line.append(text.strip(), style="bold green" if op == "+" else "red strike")
                console.print(line, soft_wrap=False)


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    policy: Annotated[str, typer.Argument(help="Policy slug.")],
    version: Annotated[str | None, typer.Option("--version", help="A version label (default: the latest).")] = None,
) -> None:
    """Print a policy version, section by section."""
    with transaction(runtime(ctx).sessions()) as session:
        chosen = content.find_version(session, policy, version)
        console.print(f"[b]{escape(chosen.policy.title)}[/] — version {chosen.label} of "
                      f"{len(chosen.policy.versions)}, imported {chosen.imported_at:%Y-%m-%d %H:%M} UTC, "
                      f"sha256 {chosen.content_hash[:12]}{' (editorial)' if chosen.editorial else ''}",
                      markup=True)
        for section in chosen.sections:
            console.print(Panel(section.text or "(empty)", title=section.title, title_align="left"),
                          soft_wrap=False)


@policy_app.command("diff")
def policy_diff(
    ctx: typer.Context,
    policy: Annotated[str, typer.Argument(help="Policy slug.")],
    old: Annotated[str, typer.Argument(help="The older version label.")],
    new: Annotated[str, typer.Argument(help="The newer version label.")],
) -> None:
    """Compare two versions section by section, with a word-level diff."""
    with transaction(runtime(ctx).sessions()) as session:
        before = content.find_version(session, policy, old)
        after = content.find_version(session, policy, new)
        changes = compare(content.previous_sections(before), content.previous_sections(after))
    console.print(f"{policy}: version {old} -> {new}" +
                  ("" if is_material(changes) else " (no material change)"))
    _print_changes(changes)


WeekOption = Annotated[str | None, typer.Option("--week", help="ISO week, e.g. 2026-W48 (default: now).")]


def _check_week(week: str | None) -> None:
    if week is not None:
        try:
            parse_week(week)
        except ValueError as exc:
            raise NudgeError(str(exc)) from None


@digest_app.command("send")
def digest_send(
    ctx: typer.Context,
    week: WeekOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be composed; write nothing.")] = False,
) -> None:
    """Compose this week's due digests into the outbox, then dispatch them."""
    _check_week(week)
    rt = runtime(ctx)
    factory = rt.sessions()
    queued = usecases.send_week(factory, rt.settings, utcnow(), week=week, dry_run=dry_run)
    result, posts = queued.digests, queued.canvas
    skipped = sum(result.blackout.values())
    verb = "would compose" if dry_run else "composed"
    console.print(f"{verb} {result.composed} digest(s) for channel email ({rt.settings.email_backend}); "
                  f"{result.already} already composed, {result.not_due} not due yet, "
                  f"{skipped} in school breaks, {result.no_tips} with no tips for their role"
                  + (f", {result.on_leave} on leave" if result.on_leave else "")
                  + (f", {result.canvas_only} reading tips in Canvas only" if result.canvas_only else ""))
    for name, count in result.blackout.items():
        console.print(f"  no digests for {count} people: {name}")
    if posts.skipped:
        console.print(f"Canvas: nothing to post ({posts.skipped})")
    else:
        console.print(f"Canvas: {verb} {posts.composed} announcement(s), {posts.already} already composed")
    if not dry_run:
        _dispatch(rt.settings, factory)


@app.command()
def dispatch(ctx: typer.Context) -> None:
    """Send everything due in the outbox once (retries wait for their time)."""
    rt = runtime(ctx)
    _dispatch(rt.settings, rt.sessions())


def _dispatch(settings: Settings, factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        due = outbox.count_due(session, utcnow())
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("sending", total=due or None)
        stats = usecases.dispatch(factory, settings, on_batch=lambda batch: progress.advance(task, batch.claimed),
                                  resume=True)
    channels = ", ".join(sorted(route_names(settings)))
    console.print(f"dispatched via {settings.email_backend} ({channels}): sent {stats.sent}, "
                  f"retrying later {stats.retried}, failed {stats.failed}, unconfirmed {stats.unconfirmed}")
    _warn_paused(factory)


NEXT_STEP = {"email": "Fix the settings, then run `nudge dispatch`",
             canvas.CHANNEL: "Fix the settings, then run `nudge canvas check`"}


def _warn_paused(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        paused = {channel: outbox.paused_reason(session, channel) for channel in outbox.paused_channels(session)}
    for channel, reason in sorted(paused.items()):
        err_console.print(f"[red]{escape(channel.title())} is paused:[/] {escape(reason or '')}. "
                          f"{NEXT_STEP.get(channel, 'Fix the settings')}; the messages wait.", highlight=False,
                          markup=True)


@digest_app.command("preview")
def digest_preview(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The person's email.")],
    week: WeekOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the HTML here instead of printing the text.")] = None,
) -> None:
    """Render one person's digest exactly as it is (or would be) sent."""
    _check_week(week)
    rt = runtime(ctx)
    with transaction(rt.sessions()) as session:
        preview = digests.preview(session, rt.settings, email, utcnow(), week=week)
    if preview.note:
        err_console.print(preview.note)
    if out is not None:
        with _writing(out) as file:
            file.write(preview.message.html)
        console.print(f"wrote {out} ({preview.message.subject!r})")
    else:
        console.print(f"Subject: {preview.message.subject}\n", markup=False)
        console.print(preview.message.text, markup=False, highlight=False)


@app.command()
def escalate(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Run as of this date (YYYY-MM-DD), noon local.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would happen; record and send nothing.")] = False,
) -> None:
    """One reminder and escalation pass, then send what it queued."""
    rt = runtime(ctx)
    moment = utcnow()
    if as_of is not None:
        try:
            day = _date("--as-of", as_of)
        except ValueError:
            raise NudgeError(f"--as-of {as_of!r} is not a date like 2026-12-01") from None
        moment = datetime.combine(day, time(12), ZoneInfo(rt.settings.timezone)).astimezone(UTC)
    factory = rt.sessions()
    result = usecases.daily_pass(factory, rt.settings, moment, dry_run=dry_run)
    verb = "would" if dry_run else "did"
    if result.paused:
        console.print(result.paused)
    console.print(f"escalation pass ({verb}): {len(result.reminders)} reminder(s), {len(result.nudges)} nudge(s), "
                  f"{len(result.escalated)} escalation(s), {len(result.resolved)} resolved, "
                  f"{len(result.emails)} email(s) queued")
    for email, reason, level, told in result.escalated:
        console.print(f"  escalate {email}: {reason}, level {level} -> {told or 'nobody (no admin address)'}",
                      markup=False)
    for email, reason, why in result.resolved:
        console.print(f"  resolved {email}: {reason} ({why})", markup=False)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, markup=True)
    if not dry_run and result.emails:
        _dispatch(rt.settings, factory)


@engagement_app.command("rebuild")
def engagement_rebuild(ctx: typer.Context) -> None:
    """Settle the clicks that are due, then recompute every person's aggregates (last engagement,
    silent streak) and weekly roll-up from the stored events: after a repair, an import, or to check
    the incremental ones. Weeks older than the retention window keep their rows (their events are gone)."""
    rt = runtime(ctx)
    rebuilt = usecases.rebuild_engagement(rt.sessions(), rt.settings, utcnow())
    console.print(f"settled {rebuilt.settled.clicks} click(s) ({rebuilt.settled.machine} machine); rebuilt the "
                  f"engagement aggregates of {rebuilt.people} people, {rebuilt.changed} of them changed; "
                  f"recounted {rebuilt.weeks} person-weeks, {rebuilt.weeks_changed} of them changed")


@report_app.command("supervisors")
def report_supervisors(
    ctx: typer.Context,
    week: WeekOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List who would get one; send nothing.")] = False,
) -> None:
    """Compose the weekly supervisor summaries (due ones, or all of one week) and send them."""
    _check_week(week)
    rt = runtime(ctx)
    factory = rt.sessions()
    result = usecases.weekly_summaries(factory, rt.settings, utcnow(), week=week, dry_run=dry_run)
    verb = "would compose" if dry_run else "composed"
    console.print(f"{verb} {result.composed} supervisor summary(ies); {result.already} already sent this week, "
                  f"{result.nothing_to_report} with nothing to report, {result.not_due} not due yet")
    for email in result.recipients:
        console.print(f"  {email}", markup=False)
    if not dry_run and result.composed:
        _dispatch(rt.settings, factory)


@report_app.command("engagement")
def report_engagement(
    ctx: typer.Context,
    csv_file: Annotated[Path, typer.Option("--csv", help="Write the CSV here.")],
    since: Annotated[str | None, typer.Option(
        "--since", help="Count signals from the week of this date (YYYY-MM-DD; whole weeks, from its Monday).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only the people below this supervisor.")] = None,
) -> None:
    """Per-person engagement export: human and machine signals, whether they count, the last engagement."""
    try:
        start = _date("--since", since) if since else date(2000, 1, 3)
    except ValueError:
        raise NudgeError(f"--since {since!r} is not a date like 2026-09-01") from None
    settings = runtime(ctx).settings
    with transaction(runtime(ctx).sessions()) as session:
        root = _team_root(session, team)
        rows = reports.engagement_rows(session, reports.Window.since(start, ZoneInfo(settings.timezone)), utcnow(),
                                       root, new_hire_days=settings.new_hire_days)
    with _writing(csv_file) as out:
        count = reports.write_csv(rows, reports.ENGAGEMENT_COLUMNS, out)
    console.print(f"wrote {count} people to {csv_file}")


def _team_root(session: Session, team: str | None) -> int | None:
    """The person ``--team`` names (None without the option); a clear error for an unknown one."""
    if team is None:
        return None
    root = session.scalar(select(Person.id).where(Person.email == roster.normalize_email(team)))
    if root is None:
        raise NudgeError(f"--team: no person with email {team!r}")
    return root


@report_app.command("questions")
def report_questions(
    ctx: typer.Context,
    csv_file: Annotated[Path, typer.Option("--csv", help="Write the CSV here.")],
    team: Annotated[str | None, typer.Option("--team", help="Only the people below this supervisor.")] = None,
) -> None:
    """Knowledge checks per question: people asked, people who answered, right the first time."""
    with transaction(runtime(ctx).sessions()) as session:
        root = _team_root(session, team)
        figures = reports.question_figures(session, None if root is None else reports.team_of(session, root))
    with _writing(csv_file) as out:
        count = reports.write_csv(reports.question_rows(figures), reports.QUESTION_COLUMNS, out)
    console.print(f"wrote {count} questions to {csv_file}")
    worst = reports.most_misunderstood(reports.section_figures(figures))
    if worst is not None:
        console.print(f"most misunderstood: {worst.section}: {worst}", markup=False)


@report_app.command("deliveries")
def report_deliveries(
    ctx: typer.Context,
    csv_file: Annotated[Path, typer.Option("--csv", help="Write the CSV here.")],
) -> None:
    """Every outbox row with its status, attempts and last error."""
    with transaction(runtime(ctx).sessions()) as session, _writing(csv_file) as out:
        count = reports.write_csv(reports.delivery_rows(session), reports.DELIVERY_COLUMNS, out)
    console.print(f"wrote {count} deliveries to {csv_file}")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Web worker processes (one per core is a good start).")] = 1,
    no_scheduler: Annotated[bool, typer.Option("--no-scheduler", help="Web only: no scheduler, no dispatcher.")] = False,
) -> None:
    """Run the web app (tracking, acknowledge page, webhook, dashboard, /healthz, /metrics) and,
    unless --no-scheduler, the dispatcher and the scheduler (one scheduler per deployment)."""
    # the web stack and the simulation load in ~1.5 s: only the commands that run them import them
    import uvicorn

    from service.scheduler import Background
    from service.web.app import create_app

    rt = runtime(ctx)
    factory = rt.sessions()
    background = not no_scheduler
    if background and workers > 1 and rt.engine.dialect.name == "sqlite":
        raise NudgeError("on SQLite run the scheduler in one process: use --workers 1, or --no-scheduler")
    role = "with the dispatcher and scheduler election" if background else "web only"
    console.print(f"Policy Nudge on http://{host}:{port} with {workers} worker(s), {role}")
    if workers > 1:  # each worker process builds its own app from the environment
        os.environ["NUDGE_SERVE_BACKGROUND"] = "1" if background else "0"
        uvicorn.run("service.web.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", access_log=False, proxy_headers=False, log_config=None)
    else:
        web = create_app(rt.settings, factory, Background(rt.engine, factory, rt.settings) if background else None)
        uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
                    log_config=None)  # uvicorn's loggers go through ours: redacted, JSON when asked


@app.command()
def simulate(
    ctx: typer.Context,
    weeks: Annotated[int, typer.Option("--weeks", min=1, max=52, help="How many school weeks to play.")] = 6,
    people: Annotated[int | None, typer.Option("--people", min=10, max=5000,
                                               help="Generate this many people (default: the 40-person sample).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same story.")] = 7,
    serve: Annotated[bool, typer.Option("--serve", help="Keep the dashboard up on localhost:8000 afterwards.")] = False,
) -> None:
    """Fast-forward demo on a throwaway SQLite database: digests, Canvas, readers, reminders, escalations."""
    from service import simulate as sim  # loads the web stack: see serve

    settings = runtime(ctx).settings
    outbox_dir = Path(settings.outbox_dir) / "simulation"
    shutil.rmtree(outbox_dir, ignore_errors=True)
    table = Table(*sim.COLUMNS, title=f"Simulated weeks (seed {seed})")
    console.print(f"simulating {weeks} week(s) for {people or 40} people (seed {seed})…")

    def show_week(row: sim.WeekRow) -> None:
        table.add_row(*row.cells())
        console.print(f"  {row.week} done", highlight=False)

    result = sim.run(weeks, people=people, seed=seed, outbox_dir=outbox_dir, public_port=8000 if serve else None,
                     on_week=show_week)
    Console(width=max(console.width, 180)).print(table)  # fourteen columns: never squeeze them
    console.print("personas: " + ", ".join(f"{n} {p}" for p, n in result.personas.items()))
    if result.misunderstood:
        console.print(f"most misunderstood guideline: {result.misunderstood}", markup=False)
    console.print(f"{result.outbox_files} emails written to {outbox_dir}/ (by kind); "
                  f"simulated in {result.seconds:.1f} s")
    console.print(f"the simulated database stays at {result.database_url} for a look inside", markup=False)
    if serve:  # only now: every week played, every email sent
        console.print(f"dashboard: {result.base_url}/admin (token: {sim.DEMO_TOKEN}); Ctrl-C stops", markup=False)
        sim.serve(result, 8000)


def _canvas_api(settings: Settings):
    if not settings.canvas_enabled:
        raise NudgeError("Canvas is off: set CANVAS_API_URL, CANVAS_API_KEY and NUDGE_CANVAS_COURSE_IDS")
    return api_from_settings(settings)


@roster_app.command("sync-canvas")
def roster_sync_canvas(ctx: typer.Context) -> None:
    """Fill missing canvas_user_ids by looking roster emails up in the Canvas account."""
    rt = runtime(ctx)
    api = _canvas_api(rt.settings)
    with transaction(rt.sessions()) as session:
        try:
            result = canvas.match_roster(session, rt.settings, api)
        except CanvasConfigError as exc:
            raise NudgeError(str(exc)) from None
    console.print(f"matched {len(result.matched)} people to Canvas users; {len(result.unmatched)} unmatched")
    for email in result.unmatched:
        console.print(f"  no Canvas user for {email}", markup=False)


@canvas_app.command("check")
def canvas_check(ctx: typer.Context) -> None:
    """Check the Canvas settings against Canvas; if all is well, resume a paused channel."""
    rt = runtime(ctx)
    api = _canvas_api(rt.settings)
    with transaction(rt.sessions()) as session:
        problems = canvas.check_and_resume(session, rt.settings, api)
    if problems:
        raise NudgeError("Canvas check failed: " + "; ".join(problems))
    console.print(f"Canvas OK for course(s) {', '.join(map(str, rt.settings.canvas_course_ids))}; channel active")


@canvas_app.command("sync-reads")
def canvas_sync_reads(ctx: typer.Context, week: WeekOption = None) -> None:
    """Record who read this week's announcements (needs a token allowed to masquerade)."""
    _check_week(week)
    rt = runtime(ctx)
    result = usecases.sync_canvas_reads(rt.sessions(), rt.settings, utcnow(), week=week)
    console.print(f"checked {result.checked} read states, recorded {result.recorded} new Canvas reads")
    for error in result.errors:
        err_console.print(f"[red]error:[/] {escape(error)}", highlight=False, markup=True)


def _date(option: str, value: str) -> date:
    """A date from the command line, within the years the service can reason about."""
    day = date.fromisoformat(value)
    if not 2000 <= day.year <= 2100:
        raise NudgeError(f"{option} {value!r}: give a date between 2000 and 2100")
    return day


@contextmanager
def _writing(path: Path) -> Iterator[TextIO]:
    """A file to write, or one line saying why it cannot be."""
    try:
        file = path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise NudgeError(f"cannot write {path}: {exc.strerror}") from None
    with file:
        yield file


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: user errors become one line on stderr and a non-zero exit, not a traceback.

    Database problems say what kind they are, never the statement or its values (they may hold
    names and addresses). NUDGE_DEBUG=1 shows the traceback of an unexpected error.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        app(args=argv, prog_name="nudge")  # usage errors are Typer's: message and exit 2
    except InputErrors as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        for problem in exc.problems:
            err_console.print(f"  {exc.source}: {problem}", highlight=False, markup=False)
        sys.exit(1)
    except NudgeError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, markup=True)
        sys.exit(1)
    except SQLAlchemyError as exc:
        if os.environ.get("NUDGE_DEBUG") == "1":
            raise
        err_console.print(f"[red]error:[/] {escape(database_problem(exc))}", highlight=False, markup=True)
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - no traceback reaches a user
        if os.environ.get("NUDGE_DEBUG") == "1":
            raise
        err_console.print(f"[red]error:[/] unexpected {exc.__class__.__name__}; run again with NUDGE_DEBUG=1 "
                          "for the details", highlight=False, markup=True)
        sys.exit(1)


def database_problem(exc: SQLAlchemyError) -> str:
    """One line about a database error, from its kind and the driver's first line (no values)."""
    original = getattr(exc, "orig", None)
    first = str(original or exc).strip().splitlines()[0][:200] if str(original or exc).strip() else ""
    if isinstance(exc, OperationalError):
        if "locked" in first:
            return "the database is locked by another process; try again in a moment"
        return f"cannot use the database ({first}); check NUDGE_DATABASE_URL and that the server runs"
    if isinstance(exc, DataError | IntegrityError):
        return f"the database refused a value ({original.__class__.__name__ if original else 'data error'})"
    return f"database error ({exc.__class__.__name__})"
