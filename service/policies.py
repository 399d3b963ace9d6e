"""Policy texts: split into sections, store versions with a content hash."""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import InputErrors, NudgeError
from service.outbox import NoticeRef, OutboxMessage, enqueue
from service.config import Settings
from service.models import Notice, Person, Policy, PolicySection, PolicyVersion, Tip, utcnow
from service.roster import read_text

PREAMBLE = "Preamble"
MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
SMALL_WORDS = {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to", "with"}
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Section:
    title: str
    text: str

    @property
    def content_hash(self) -> str:
        return sha256(f"{self.title}\n{self.text}")


@dataclass
class VersionResult:
    status: str  # "created" or "unchanged"
    version: PolicyVersion
    changes: list[SectionChange] = field(default_factory=list)
    material: bool = False
    notice: Notice | None = None


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_text(text: str) -> str:
    """Canonical form for hashing: NFC, Unix newlines, no trailing spaces or blank edges."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _is_title_line(line: str) -> bool:
    """A plain-text heading: a short title-cased line without closing punctuation."""
    words = line.split()
    if not 1 <= len(words) <= 8 or len(line) > 70:
        return False
    if line[-1] in ".:;,!?\"”)" or not line[0].isupper() or line.startswith(("-", "*", "•")):
        return False
    return all(w[0].isupper() or w.lower() in SMALL_WORDS or not w[0].isalpha() for w in words)


def split_sections(text: str) -> list[Section]:
    """Split on Markdown ``#`` headings if there are any, otherwise on plain title lines."""
    lines = normalize_text(text).split("\n")
    markdown = any(MD_HEADING.match(line) for line in lines)
    sections: list[Section] = []
    title, body = PREAMBLE, []

    def close() -> None:
        content = "\n".join(body).strip()
        if content or title != PREAMBLE:
            sections.append(Section(title, content))

    for index, line in enumerate(lines):
        stripped = line.strip()
        if markdown:
            match = MD_HEADING.match(line)
            heading = match.group(1).strip() if match else None
        else:
            has_next = any(n.strip() for n in lines[index + 1 :])
            heading = stripped if stripped and has_next and _is_title_line(stripped) else None
        if heading:
            close()
            title, body = heading, []
        else:
            body.append(line)
    close()
    return sections


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


def audience_of(session: Session, notice: Notice) -> list[Person]:
    query = select(Person).where(Person.active.is_(True)).order_by(Person.id)
    if "all" not in notice.audience:
        query = query.where(Person.role.in_(notice.audience))
    return list(session.scalars(query))


@dataclass
class NoticeQueued:
    emails: int = 0
    canvas_posts: int = 0


def queue_notice(session: Session, settings: Settings, notice: Notice, now: datetime) -> NoticeQueued:
    """Queue a notice at once (not on Monday): an email to everyone in the audience, a post per course.

    Both go through the outbox, at least once, keyed by the notice: queuing twice sends nothing twice.
    """
    from service import canvas

    version = notice.policy_version
    subject = f"{version.policy.title} has changed: please confirm by {notice.due_on:%-d %B}"
    inserted = enqueue(session, [
        OutboxMessage("notice", f"notice:{notice.id}", now, person_id=person.id, subject=subject,
                      payload={"notice_id": notice.id}, items=(NoticeRef(notice.id),))
        for person in audience_of(session, notice)
    ])
    queued = NoticeQueued(emails=len(inserted))
    if settings.canvas_enabled:
        for course_id in settings.canvas_course_ids:
            queued.canvas_posts += canvas.add_post(
                session, course_id, "notice", f"notice:{notice.id}", now,
                payload={"notice_id": notice.id, "post_at": None, "section_ids": []},
                subject=f"Policy update: {version.policy.title} (version {version.label})", notice_id=notice.id,
                search_from=now - timedelta(days=1), search_to=now + timedelta(days=60),
            )
    return queued


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


# ------------------------------------------------------------------ comparing versions

TOKEN = re.compile(r"\s+|\w+(?:[’'-]\w+)*|[^\w\s]", re.UNICODE)  # words, punctuation and the spaces between
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def material_form(text: str) -> str:
    """What a reader must re-attest to: words only (no case, punctuation or spacing)."""
    return " ".join(re.findall(r"\w+(?:[’'-]\w+)*", unicodedata.normalize("NFC", text).casefold()))


@dataclass(frozen=True)
class SectionChange:
    status: str  # added, removed, changed, editorial, unchanged
    title: str
    old: str = ""
    new: str = ""

    def word_diff(self) -> list[tuple[str, str]]:
        """(op, text) runs: "=" same, "+" inserted, "-" deleted, compared word by word."""
        before, after = TOKEN.findall(self.old), TOKEN.findall(self.new)
        runs: list[tuple[str, str]] = []
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
            if op == "equal":
                runs.append(("=", "".join(before[i1:i2])))
            if op in ("delete", "replace"):
                runs.append(("-", "".join(before[i1:i2])))
            if op in ("insert", "replace"):
                runs.append(("+", "".join(after[j1:j2])))
        return runs

    def changed_sentences(self) -> list[str]:
        """Sentences of the new text that say something the old text did not."""
        old = {material_form(s) for s in SENTENCE_END.split(self.old)}
        return [s for s in SENTENCE_END.split(self.new) if s.strip() and material_form(s) not in old]


def compare(old: list[Section], new: list[Section]) -> list[SectionChange]:
    """Section by section, matched by title (case-insensitive), in the new version's order."""
    before = {s.title.casefold(): s for s in old}
    changes: list[SectionChange] = []
    for section in new:
        previous = before.pop(section.title.casefold(), None)
        if previous is None:
            changes.append(SectionChange("added", section.title, "", section.text))
        elif previous.text == section.text and previous.title == section.title:
            changes.append(SectionChange("unchanged", section.title, previous.text, section.text))
        elif material_form(previous.title + " " + previous.text) == material_form(section.title + " " + section.text):
            changes.append(SectionChange("editorial", section.title, previous.text, section.text))
        else:
            changes.append(SectionChange("changed", section.title, previous.text, section.text))
    changes += [SectionChange("removed", s.title, s.text, "") for s in before.values()]
    return changes


def is_material(changes: list[SectionChange]) -> bool:
    return any(c.status in ("added", "removed", "changed") for c in changes)


def _highlight(change: SectionChange) -> str:
    """The changed sentences, each compared with its closest old sentence, new words marked."""
    old_sentences = [x for x in SENTENCE_END.split(change.old) if x.strip()]
    parts = []
    for sentence in change.changed_sentences()[:3]:
        closest = difflib.get_close_matches(sentence, old_sentences, n=1, cutoff=0.3)
        runs = SectionChange("changed", change.title, closest[0] if closest else "", sentence).word_diff()
        parts.append("".join(f"<mark>{escape(text)}</mark>" if op == "+" else escape(text)
                             for op, text in runs if op != "-"))
    return " ".join(parts)


def summary_html(changes: list[SectionChange]) -> str:
    """A short account of a material change, built from the diff (safe HTML)."""
    items = []
    for change in changes:
        title = escape(change.title)
        if change.status == "added":
            first = " ".join(SENTENCE_END.split(change.new)[:2])
            items.append(f"<li><strong>New section: {title}.</strong> {escape(first)}</li>")
        elif change.status == "removed":
            items.append(f"<li><strong>Removed section: {title}.</strong></li>")
        elif change.status == "changed":
            items.append(f"<li><strong>Changed: {title}.</strong> {_highlight(change)}</li>")
    return f"<ul>{''.join(items)}</ul>"


def previous_sections(version: PolicyVersion) -> list[Section]:
    return [Section(s.title, s.text) for s in version.sections]
