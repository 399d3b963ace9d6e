"""Policy texts: split into sections, store versions with a content hash."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import InputErrors
from service.models import Policy, PolicySection, PolicyVersion
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


@dataclass(frozen=True)
class VersionResult:
    status: str  # "created" or "unchanged"
    version: PolicyVersion


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


def import_version(
    session: Session,
    path: Path,
    *,
    slug: str,
    label: str,
    title: str | None = None,
) -> VersionResult:
    """Store a new version of a policy unless its text equals the latest one.

    Errors (empty or undecodable file, unknown policy without a title, a label
    already used) raise InputErrors before anything is written.
    """
    source = str(path)
    text = normalize_text(read_text(path))
    if not text:
        raise InputErrors(source, ["the file is empty"])
    if not LABEL_RE.match(label):
        raise InputErrors(source, [f"version label {label!r}: use letters, digits, '.', '_' or '-'"])
    policy = get_policy(session, slug)
    if policy is None:
        if not title:
            raise InputErrors(source, [f"unknown policy {slug!r}: give --title to create it"])
        policy = Policy(slug=slug, title=title)
        session.add(policy)
        session.flush()
    content_hash = sha256(text)
    latest = policy.versions[-1] if policy.versions else None
    if latest is not None and latest.content_hash == content_hash:
        return VersionResult("unchanged", latest)
    if any(v.label == label for v in policy.versions):
        raise InputErrors(source, [f"policy {slug!r} already has a version {label!r}"])
    version = PolicyVersion(
        policy=policy,
        label=label,
        sequence=(latest.sequence + 1) if latest else 1,
        text=text,
        content_hash=content_hash,
    )
    for position, section in enumerate(split_sections(text)):
        version.sections.append(
            PolicySection(position=position, title=section.title, text=section.text,
                          content_hash=section.content_hash)
        )
    session.add(version)
    session.flush()
    return VersionResult("created", version)
