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
from service.policy.diff import SectionChange, compare, is_material, summary_html
from service.policy.text import Section, normalize_text, sha256, split_sections


SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class VersionResult:
    status: str  # "created" or "unchanged"
    version: PolicyVersion
    changes: list[SectionChange] = field(default_factory=list)
    material: bool = False
    notice: Notice | None = None


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
    audience: list[str] | None = None,
    due_days: int = 14,
    timezone: str = "America/Chicago",
    now: datetime | None = None,
) -> VersionResult:
    """Store a new version of a policy unless its text equals the latest one.

    The new version is compared with the previous one section by section. A
    change of words (not just spacing, punctuation or case) is material and
    creates a policy-update notice for ``audience`` (all by default), due in
    ``due_days``; ``editorial`` stores a real edit without one. Errors (empty or
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
    material = latest is not None and is_material(changes) and not editorial
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
    result = VersionResult("created", version, changes, material)
    if material:
        moment = now or utcnow()
        due_on = moment.astimezone(ZoneInfo(timezone)).date() + timedelta(days=due_days)
        result.notice = Notice(policy_version_id=version.id, audience=audience or ["all"],
                               summary=summary_html(changes), due_days=due_days, due_on=due_on, created_at=moment)
        session.add(result.notice)
        session.flush()
    return result


def changed_section_tips(session: Session, since: datetime) -> dict[int, datetime]:
    """Tips of sections added or changed by material versions imported since ``since``: tip -> when.

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
        changes = compare(previous_sections(previous), previous_sections(version))
        touched = {c.title.casefold() for c in changes if c.status in ("added", "changed")}
        for tip in session.scalars(select(Tip).where(Tip.policy_id == version.policy_id, Tip.active.is_(True))
                                   .order_by(Tip.position)):
            if tip.section.casefold() in touched:
                priority[tip.id] = version.imported_at
    return priority


def previous_sections(version: PolicyVersion) -> list[Section]:
    return [Section(s.title, s.text) for s in version.sections]
