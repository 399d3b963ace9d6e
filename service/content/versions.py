"""Stored policy versions: import a text, compare it with the latest, open a notice when it
changes materially; and which tips cover the sections a recent version changed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import InputErrors, NudgeError
from service.models import Notice, Policy, PolicySection, PolicyVersion, Tip, utcnow
from service.inputs import field_problem, read_text
from service.policy.diff import SectionChange, compare, is_material, summary_html, summary_text
from service.policy.evidence import quote_in
from service.weeks import SchoolCalendar
from service.policy.text import Section, normalize_text, sha256, split_sections
from service.content.pack import TipState, review_tips
from service.outbox import OutboxMessage, enqueue


SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# a web page's furniture copied with the text: "0 Comments", "Share", "Print", "Posted in News"
FURNITURE = re.compile(r"^\s*(\d+\s+comments?|comments?|share( this)?|print( this( page)?)?|tweet|like|email this"
                       r"|leave a (comment|reply)|read more|posted (in|by|on) .*|tags?:.*|skip to (main )?content)\s*$",
                       re.IGNORECASE)


@dataclass
class VersionResult:
    status: str  # "created" or "unchanged"
    version: PolicyVersion
    changes: list[SectionChange] = field(default_factory=list)
    material: bool = False
    notice: Notice | None = None
    review: list[TipState] = field(default_factory=list)  # tips held or suspended, or whose state changed
    warnings: list[str] = field(default_factory=list)


def furniture_lines(text: str) -> list[str]:
    """Lines that look like a web page's furniture rather than policy text (a warning, not an error)."""
    return [f"line {number}: {line.strip()!r} looks like page furniture, not policy text; remove it if so"
            for number, line in enumerate(text.split("\n"), start=1) if FURNITURE.match(line)]


def get_policy(session: Session, slug: str) -> Policy | None:
    return session.scalar(select(Policy).where(Policy.slug == slug))


def find_version(session: Session, slug: str, label: str | None) -> PolicyVersion:
    """A version by label (the latest when None); a NudgeError names what is missing."""
    policy = get_policy(session, slug)
    if policy is None or not policy.versions:
        raise NudgeError(f"no policy {slug!r} with a stored version")
    if label is None:
        return policy.versions[-1]
    for version in policy.versions:
        if version.label == label:
            return version
    raise NudgeError(f"policy {slug!r} has no version {label!r} (it has {', '.join(v.label for v in policy.versions)})")


def import_version(
    session: Session,
    path: Path,
    *,
    slug: str,
    label: str,
    title: str | None = None,
    editorial: bool = False,
    material: bool = False,
    audience: list[str] | None = None,
    due_days: int = 14,
    timezone: str = "America/Chicago",
    now: datetime | None = None,
    calendar: SchoolCalendar | None = None,
) -> VersionResult:
    """Store a new version of a policy unless its text equals the latest one.

    The new version is compared with the previous one section by section. A
    change of words (not only function words, spacing, punctuation or case) is
    material and creates a policy-update notice for ``audience`` (all by
    default), due in ``due_days``; ``editorial`` and ``material`` override the
    classification. Tips are judged against the new text (held, suspended). Errors (empty or
    undecodable file, unknown policy without a title, a label already used)
    raise InputErrors before anything is written. The caller commits.
    """
    source = str(path)
    text = normalize_text(read_text(path))
    if not text:
        raise InputErrors(source, ["the file is empty"])
    problems = [f"line {number}: {why}" for number, line in enumerate(text.split("\n"), start=1)
                if (why := field_problem("the text", line, 100_000, multiline=True))]
    if not SLUG.fullmatch(slug):
        problems.append(f"--policy {slug[:40]!r}: use lower-case letters, digits and dashes (at most 100)")
    if title is not None and (why := field_problem("--title", title, 300)):
        problems.append(why)
    problems += [f"section {s.title[:40]!r}: the heading is longer than 300 characters"
                 for s in split_sections(text) if len(s.title) > 300]
    if problems:
        raise InputErrors(source, problems)
    if not LABEL_RE.match(label):
        raise InputErrors(source, [f"version label {label!r}: use letters, digits, '.', '_' or '-'"])
    policy = get_policy(session, slug)
    if policy is None and not title:
        raise InputErrors(source, [f"unknown policy {slug!r}: give --title to create it"])
    if policy is not None and any(v.label == label for v in policy.versions):
        latest = policy.versions[-1]
        if latest.content_hash == sha256(text):
            return VersionResult("unchanged", latest)
        raise InputErrors(source, [f"policy {slug!r} already has a version {label!r}"])
    if policy is None:
        policy = Policy(slug=slug, title=title)
        session.add(policy)
        session.flush()
    content_hash = sha256(text)
    latest = policy.versions[-1] if policy.versions else None
    if latest is not None and latest.content_hash == content_hash:
        return VersionResult("unchanged", latest)
    sections = split_sections(text)
    changes = compare(previous_sections(latest), sections) if latest else []
    material = latest is not None and (material or is_material(changes)) and not editorial
    version = PolicyVersion(
        policy=policy,
        label=label,
        sequence=(latest.sequence + 1) if latest else 1,
        text=text,
        content_hash=content_hash,
        editorial=latest is not None and not material,
        imported_at=now or utcnow(),
    )
    for position, section in enumerate(sections):
        version.sections.append(
            PolicySection(position=position, title=section.title, text=section.text,
                          content_hash=section.content_hash)
        )
    session.add(version)
    session.flush()
    result = VersionResult("created", version, changes, material, review=review_tips(session, policy),
                           warnings=furniture_lines(text))
    if material:
        moment = now or utcnow()
        due_on = moment.astimezone(ZoneInfo(timezone)).date() + timedelta(days=due_days)
        if calendar is not None:  # never due on a weekend or in a break: the next school day
            due_on = calendar.next_school_day(due_on)
        result.notice = Notice(policy_version_id=version.id, audience=audience or ["all"],
                               summary=summary_html(changes), summary_text=summary_text(changes), due_days=due_days, due_on=due_on, created_at=moment)
        session.add(result.notice)
        session.flush()
    return result


def changed_section_tips(session: Session, since: datetime) -> dict[int, datetime]:
    """Tips about what material versions imported since ``since`` changed: tip -> when. A tip of an
    added section; a tip of a changed section only if one of its quotes is new text (a tip quoting
    untouched sentences of a changed section says nothing new).

    The digest puts them first for everyone who has not had them since the change.
    """
    priority: dict[int, datetime] = {}
    versions = session.scalars(
        select(PolicyVersion).where(PolicyVersion.imported_at >= since, PolicyVersion.editorial.is_(False),
                                    PolicyVersion.sequence > 1)
        .order_by(PolicyVersion.imported_at)
    ).all()
    for version in versions:
        previous = session.scalar(select(PolicyVersion).where(PolicyVersion.policy_id == version.policy_id,
                                                              PolicyVersion.sequence == version.sequence - 1))
        if previous is None:
            continue
        changes = {c.title.casefold(): c for c in compare(previous_sections(previous), previous_sections(version))}
        for tip in session.scalars(select(Tip).where(Tip.policy_id == version.policy_id, Tip.active.is_(True))
                                   .order_by(Tip.position)):
            change = changes.get(tip.section.casefold())
            if change is None or change.status not in ("added", "changed"):
                continue
            if change.status == "added" or any(not quote_in(q, change.old) for q in tip.quotes or []):
                priority[tip.id] = version.imported_at
    return priority


def previous_sections(version: PolicyVersion) -> list[Section]:
    return [Section(s.title, s.text) for s in version.sections]


REVIEW = "review"  # the kind of the admin's email about tips a version held, suspended or released


def tell_admin(session: Session, admin_email: str | None, slug: str, result: VersionResult, now: datetime) -> bool:
    """Queue one email to the admin address listing the tips this version suspended or made
    sendable again (at most one per version: the outbox key; none for a first version, which
    only releases the tips loaded before it). Returns whether one was queued."""
    changed = [t for t in result.review if t.state != t.was]
    if not admin_email or result.status != "created" or result.version.sequence == 1 or not changed:
        return False
    tips = [{"key": t.key, "title": t.title, "state": t.state, "reason": t.reason, "was": t.was, "what": t.what}
            for t in changed]
    suspended = sum(t.state == "suspended" for t in changed)
    released = sum(t.state == "ok" for t in changed)
    what = "Tips" if all(t.what == "tip" for t in changed) else "Tips and questions"
    subject = f"{what} to review after {result.version.policy.title} version {result.version.label}: " \
              f"{suspended} suspended, {released} sendable again"
    return bool(enqueue(session, [OutboxMessage(REVIEW, f"{slug}:{result.version.label}", now,
                                                recipient=f"admin:{admin_email}", subject=subject,
                                                payload={"to_email": admin_email, "tips": tips,
                                                         "policy": result.version.policy.title,
                                                         "version": result.version.label})]))
