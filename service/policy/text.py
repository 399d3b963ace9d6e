"""Policy texts (pure): canonical form, content hashes and sections."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass


PREAMBLE = "Preamble"
MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
SMALL_WORDS = {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to", "with"}


@dataclass(frozen=True)
class Section:
    title: str
    text: str

    @property
    def content_hash(self) -> str:
        return sha256(f"{self.title}\n{self.text}")


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
