"""Knowledge-check questions in a tip pack: parsed and checked like tips.

A question quotes its section verbatim (``source``), as a tip does, so the right answer and the
explanation rest on the text; it may name a policy number only where its section names it.
Wrong options must be wrong by that text: no checker can judge that, so the shipped pack's
notes say how each was written, and review of the pack is a person's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from service.content.entries import entry_header
from service.inputs import field_problem

QUESTION_KEYS = {"id", "section", "question", "options", "answer", "explanation", "source", "tip", "audience"}
MIN_OPTIONS, MAX_OPTIONS = 2, 4
LIMITS = {"section": 300, "question": 300, "option": 150, "explanation": 300}
POLICY_NUMBER = re.compile(r"(?<![\d.])(\d{3,4})(?![\d.])")


@dataclass(frozen=True)
class QuestionSpec:
    key: str
    section: str
    prompt: str
    options: list[str]
    correct: int  # index into options
    explanation: str
    quotes: list[str]
    tip_key: str | None
    audience: list[str]
    line: int

    @property
    def refs(self) -> list[str]:
        return self.refs_in(self.prompt, self.options, self.explanation)

    @staticmethod
    def refs_in(prompt: str, options: list[str], explanation: str) -> list[str]:
        """The policy numbers a question's own words name (its section must name them too)."""
        words = " ".join([prompt, *options, explanation])
        return [f"Policy {n}" for n in dict.fromkeys(POLICY_NUMBER.findall(words))]


def _one_line(raw: dict[str, Any], name: str, limit: int, where: str, problems: list[str]) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: {name} is required")
        return ""
    value = " ".join(value.split())
    if why := field_problem(name, value, limit):
        problems.append(f"{where}: {why}")
    return value


def _options(raw: dict[str, Any], where: str, problems: list[str]) -> list[str]:
    value = raw.get("options")
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"{where}: options must be a list of {MIN_OPTIONS} to {MAX_OPTIONS} non-empty strings")
        return []
    options = [" ".join(v.split()) for v in value]
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        problems.append(f"{where}: a question has {MIN_OPTIONS} to {MAX_OPTIONS} options, not {len(options)}")
    if len({o.casefold() for o in options}) != len(options):
        problems.append(f"{where}: two options are the same")
    for option in options:
        if why := field_problem("option", option, LIMITS["option"]):
            problems.append(f"{where}: {why}")
    return options


def parse_question(raw: Any, index: int, tips: dict[str, str], seen: dict[str, int], problems: list[str],
                   string_list) -> QuestionSpec | None:
    """One entry of ``questions:``; ``tips`` maps the pack's tip ids to their sections, ``seen``
    the question ids so far (to their lines). Problems are appended, naming the line and id."""
    header = entry_header(raw, index, "question", QUESTION_KEYS, seen, problems)
    if header is None:
        return None
    key, where = header
    section = _one_line(raw, "section", LIMITS["section"], where, problems)
    prompt = _one_line(raw, "question", LIMITS["question"], where, problems)
    explanation = _one_line(raw, "explanation", LIMITS["explanation"], where, problems)
    options = _options(raw, where, problems)
    answer = " ".join(str(raw.get("answer") or "").split())
    if not answer:
        problems.append(f"{where}: answer is required: the text of the right option")
    elif answer not in options:
        problems.append(f"{where}: answer {answer[:60]!r} is not one of the options")
    if "source" not in raw:
        problems.append(f"{where}: source is required: the verbatim sentence(s) of the section that answer it")
        quotes: list[str] = []
    else:
        quotes = string_list(raw.get("source"), where, "source", problems)
    tip_key = str(raw.get("tip") or "").strip() or None
    if tip_key is not None and tip_key not in tips:
        problems.append(f"{where}: tip {tip_key!r} is not a tip of this pack")
    elif tip_key is not None and tips[tip_key].casefold() != section.casefold():
        problems.append(f"{where}: tip {tip_key!r} is in section {tips[tip_key]!r}, not {section!r}")
    audience = [a.lower() for a in string_list(raw.get("audience", ["all"]), where, "audience", problems)]
    correct = options.index(answer) if answer in options else 0
    return QuestionSpec(key, section, prompt, options, correct, explanation, quotes, tip_key, audience or ["all"],
                        raw["__line__"])
