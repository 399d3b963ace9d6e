"""Comparing two versions of a policy (pure): section by section, word by word, and
whether the change is material, with the reason. A change of function words ("that",
"the", "of"...), punctuation, letter case or spacing only is editorial: nobody must
re-confirm it. Anything else is material."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from html import escape
from service.policy.text import Section


TOKEN = re.compile(r"\s+|\w+(?:[’'-]\w+)*|[^\w\s]", re.UNICODE)  # words, punctuation and the spaces between
WORD = re.compile(r"\w+(?:[’'-]\w+)*")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# words whose addition or removal does not change what a reader must do; never "not", "no", "and",
# "or", "must", "may" or any other word that can turn a rule around
FUNCTION_WORDS = frozenset(
    "a an the that this these those which who whom whose of to in on at by for from with as into onto upon "
    "it its there then so very also just".split())


def material_form(text: str) -> str:
    """What a reader must re-attest to: words only (no case, punctuation or spacing)."""
    return " ".join(WORD.findall(unicodedata.normalize("NFC", text).casefold()))


def classify(old: str, new: str) -> tuple[str, str]:
    """("unchanged" | "editorial" | "changed", why) for two texts of a section."""
    if old == new:
        return "unchanged", "same text"
    if old.split() == new.split():
        return "editorial", "only spacing changed"
    before, after = material_form(old).split(), material_form(new).split()
    if before == after:
        if [t.casefold() for t in old.split()] == [t.casefold() for t in new.split()]:
            return "editorial", "only letter case changed"
        if WORD.findall(old) == WORD.findall(new):
            return "editorial", "only punctuation changed"
        return "editorial", "only punctuation and letter case changed"
    added, removed = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        removed += before[i1:i2] if op in ("delete", "replace") else []
        added += after[j1:j2] if op in ("insert", "replace") else []
    if all(word in FUNCTION_WORDS for word in added + removed):
        return "editorial", "only function words changed: " + _words(added, removed)
    return "changed", "words changed: " + _words(added, removed)


def _words(added: list[str], removed: list[str], most: int = 8) -> str:
    def shown(words: list[str]) -> str:
        return " ".join(words[:most]) + (" …" if len(words) > most else "")
    parts = ([f"added “{shown(added)}”"] if added else []) + ([f"removed “{shown(removed)}”"] if removed else [])
    return ", ".join(parts)


@dataclass(frozen=True)
class SectionChange:
    status: str  # added, removed, changed, editorial, unchanged
    title: str
    old: str = ""
    new: str = ""
    reason: str = ""

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


def compare(old: list[Section], new: list[Section]) -> list[SectionChange]:
    """Section by section, matched by title (case-insensitive), in the new version's order."""
    before = {s.title.casefold(): s for s in old}
    changes: list[SectionChange] = []
    for section in new:
        previous = before.pop(section.title.casefold(), None)
        if previous is None:
            changes.append(SectionChange("added", section.title, "", section.text, "a new section"))
            continue
        status, why = classify(f"{previous.title}\n{previous.text}", f"{section.title}\n{section.text}")
        changes.append(SectionChange(status, section.title, previous.text, section.text, why))
    changes += [SectionChange("removed", s.title, s.text, "", "the section was removed") for s in before.values()]
    return changes


def is_material(changes: list[SectionChange]) -> bool:
    return any(c.status in ("added", "removed", "changed") for c in changes)


ADDED_WORDS = 80  # an added section is quoted whole up to this many words, else its beginning


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def sentence_pairs(change: SectionChange) -> list[tuple[str | None, str | None]]:
    """The sentences a material change touched, as (before, now): a rewritten sentence has both,
    a removed one no "now", an added one no "before". Sentences whose words are the same are left out."""
    old, new = sentences(change.old), sentences(change.new)
    matcher = difflib.SequenceMatcher(a=[material_form(s) for s in old], b=[material_form(s) for s in new],
                                      autojunk=False)
    pairs: list[tuple[str | None, str | None]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        before, after = old[i1:i2], new[j1:j2]
        for k in range(max(len(before), len(after))):
            pairs.append((before[k] if k < len(before) else None, after[k] if k < len(after) else None))
    return pairs


def _opening(text: str) -> tuple[str, bool]:
    """An added section's text, or its whole sentences within the first ADDED_WORDS words when it
    is longer (and whether it was cut)."""
    whole = sentences(text)
    kept: list[str] = []
    for sentence in whole:
        if len(" ".join(kept + [sentence]).split()) > ADDED_WORDS:
            break
        kept.append(sentence)
    if not kept:  # one long sentence: its first words
        return " ".join(text.split()[:ADDED_WORDS]) + " …", True
    return " ".join(kept), len(kept) < len(whole)


@dataclass(frozen=True)
class _Part:
    """One section of a change's account, as :func:`summary_html` and :func:`summary_text` show it."""

    status: str  # added, removed, changed
    heading: str
    opening: str = ""  # an added section: its text, or its first sentences
    cut: bool = False
    pairs: tuple[tuple[str | None, str | None], ...] = ()  # a changed section: (before, now) sentences


def _account(changes: list[SectionChange]) -> tuple[list[_Part], str | None]:
    """What a material change changed, section by section, and the one line naming editorial edits."""
    headings = {"added": "New section", "removed": "Removed section", "changed": "Changed"}
    parts = []
    for change in changes:
        if change.status not in headings:
            continue
        heading = f"{headings[change.status]}: {change.title}"
        opening, cut = _opening(change.new) if change.status == "added" else ("", False)
        pairs = tuple(sentence_pairs(change)) if change.status == "changed" else ()
        parts.append(_Part(change.status, heading, opening, cut, pairs))
    edited = [c for c in changes if c.status == "editorial"]
    note = ("Edited without changing what it asks: " + "; ".join(f"{c.title} ({c.reason})" for c in edited)
            if edited else None)
    return parts, note


def summary_html(changes: list[SectionChange]) -> str:
    """What a material change changed, section by section, from the diff (safe HTML): the
    sentences before (struck through) and now (marked); an added section quoted."""
    parts, note = _account(changes)
    html = []
    for part in parts:
        html.append(f"<p><strong>{escape(part.heading)}</strong></p>")
        if part.status == "added":
            more = " <em>(continues in the full guidelines)</em>" if part.cut else ""
            html.append(f"<p>{escape(part.opening)}{more}</p>")
        elif part.status == "changed":
            rows = []
            for before, now in part.pairs:
                if before:
                    rows.append(f"<li>Before: <del>{escape(before)}</del></li>")
                rows.append(f"<li>Now: <ins>{escape(now)}</ins></li>" if now else "<li>Now: removed</li>")
            html.append(f"<ul>{''.join(rows)}</ul>")
    if note:
        html.append(f"<p><em>{escape(note)}</em></p>")
    return "".join(html)


def summary_text(changes: list[SectionChange]) -> str:
    """The same account as :func:`summary_html`, as plain text for an email's text part."""
    parts, note = _account(changes)
    blocks = []
    for part in parts:
        lines = [part.heading]
        if part.status == "added":
            lines.append(f"  {part.opening}")
            if part.cut:
                lines.append("  (continues in the full guidelines)")
        for before, now in part.pairs:
            if before:
                lines.append(f"  Before: {before}")
            lines.append(f"  Now: {now}" if now else "  Now: removed")
        blocks.append("\n".join(lines))
    if note:
        blocks.append(note)
    return "\n\n".join(blocks)
