"""Comparing two versions of a policy (pure): section by section, word by word, and
whether the change is material (words, not spacing, punctuation or case)."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from html import escape
from service.policy.text import Section


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
