"""Whether a tip's evidence is in the policy text (pure).

A tip quotes its section verbatim; quotes are compared after normalising whitespace and
the styles of quotation marks and dashes, nothing else. A tip may name a policy ("Policy
464") only where its section names that number. Against a history of versions a tip is
ok (its quotes are in the current text of its section), held (its section does not exist
yet: stored, never sent), or suspended (its quotes were in an earlier version and are not
now, or were never in any).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from service.policy.text import Section

QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "‚": "'",
                        "–": "-", "—": "-", "‑": "-", "−": "-", "\u00a0": " "})
REF = re.compile(r"^Policy (\d{3,4})$")
OK, HELD, SUSPENDED = "ok", "held", "suspended"


def normalize_quote(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).translate(QUOTES).split())


def quote_in(quote: str, text: str) -> bool:
    return normalize_quote(quote) in normalize_quote(text)


def ref_problem(ref: str, section_text: str) -> str | None:
    """Why ``ref`` may not be cited for a section with this text, or None."""
    match = REF.match(ref)
    if match is None:
        return f"ref {ref!r}: name a policy as 'Policy 464'"
    if not re.search(rf"(?<!\d){match.group(1)}(?!\d)", section_text):
        return f"ref {ref!r}: the section does not name policy {match.group(1)}"
    return None


@dataclass(frozen=True)
class Verdict:
    state: str  # ok, held, suspended
    reason: str = ""
    version: str | None = None  # the version whose text the verdict was reached against
    invented: bool = False  # a quote in no version of the section, or a ref it does not support


def _section(sections: list[Section], title: str) -> Section | None:
    return next((s for s in sections if s.title.casefold() == title.casefold()), None)


def judge_tip(section: str, quotes: list[str], refs: list[str], history: list[tuple[str, list[Section]]]
              ) -> Verdict:
    """A tip against the versions of its policy, oldest first (label, sections)."""
    if not history:
        return Verdict(HELD, "the policy has no text yet")
    label, current = history[-1]
    found = _section(current, section)
    if found is not None:
        missing = [q for q in quotes if not quote_in(q, found.text)]
        if not missing:
            problems = [p for r in refs if (p := ref_problem(r, found.text))]
            return Verdict(SUSPENDED, "; ".join(problems), label, True) if problems else Verdict(OK, "", label)
        earlier = [v for v, sections in history[:-1]
                   if (old := _section(sections, section)) and all(quote_in(q, old.text) for q in missing)]
        if earlier:
            return Verdict(SUSPENDED, f"version {label} changed the quoted text: “{_short(missing[0])}”", label)
        return Verdict(SUSPENDED, f"quote not in section {section!r}: “{_short(missing[0])}”", label, True)
    if any(_section(sections, section) for _, sections in history[:-1]):
        return Verdict(SUSPENDED, f"version {label} removed section {section!r}", label)
    return Verdict(HELD, f"section {section!r} is not in version {label} yet", label)


def _short(quote: str, words: int = 12) -> str:
    parts = quote.split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")
