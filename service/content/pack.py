"""Tip packs: parse and validate a YAML pack, then store its tips and questions (idempotent).

Every tip and question carries its evidence, ``source``: verbatim quotes of its section. A pack
whose quote is in no version of its section, or whose ref the section does not name, is refused
with the file and line; one whose section is not in the policy yet is stored and held."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import InputErrors
from service.models import Policy, Question, Tip
from service.inputs import field_problem, read_text
from service.content.entries import ID_RE, entry_header
from service.content.questions import QuestionSpec, parse_question
from service.policy import Section
from service.policy.evidence import OK, Verdict, judge_tip

MAX_TIP_WORDS = 60
MAX_TITLE_CHARS = 120
FIELD_LIMITS = {"section": 300, "title": 200, "body": 20_000}  # the columns (the body is Text)
TIP_KEYS = {"id", "section", "title", "body", "source", "audience", "refs"}
MAX_QUOTE_CHARS = 1000
TOP_KEYS = {"policy", "tips", "questions"}
POLICY_KEYS = {"slug", "title"}
QUIET_FIELDS = {"position", "source"}  # bookkeeping: a reorder or a moved file is not an edit
SLUG_RE = ID_RE


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line each mapping starts on (as ``__line__``)."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class TipSpec:
    key: str
    section: str
    title: str
    body: str
    audience: list[str]
    refs: list[str]
    quotes: list[str]
    line: int  # where the tip starts in its pack file


@dataclass(frozen=True)
class Pack:
    slug: str
    title: str
    tips: list[TipSpec]
    questions: list[QuestionSpec] = field(default_factory=list)


@dataclass
class ContentResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    review: list[TipState] = field(default_factory=list)  # tips held or suspended, or whose state changed
    questions: dict[str, list[str]] = field(default_factory=dict)  # the same four lists, of questions

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in CHANGES}

    def question_counts(self) -> dict[str, int]:
        return {k: len(self.questions.get(k, [])) for k in CHANGES}


CHANGES = ("created", "updated", "unchanged", "deactivated")


def word_count(text: str) -> int:
    return len(re.findall(r"[\w’'-]+", text))


def _string_list(value: Any, where: str, name: str, problems: list[str], limit: int = 100,
                 multiline: bool = False) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"{where}: {name} must be a list of non-empty strings")
        return []
    for item in value:
        if why := field_problem(f"{name} entry", item.strip(), limit, multiline=multiline):
            problems.append(f"{where}: {why}")
    return [v.strip() for v in value]


def parse_pack(text: str, source: str) -> Pack:
    """Check a whole pack; raise InputErrors naming the file, tip id and line of each problem."""
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise InputErrors(source, ["YAML: nested too deeply to be a tip pack"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise InputErrors(source, [f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise InputErrors(source, ["line 1: a tip pack is a mapping with 'policy' and 'tips'"])
    problems: list[str] = []
    unknown = sorted(str(k) for k in set(data) - TOP_KEYS - {"__line__"})
    if unknown:
        problems.append(f"line 1: unknown key(s): {', '.join(unknown)}")
    policy = data.get("policy")
    slug = title = ""
    if not isinstance(policy, dict):
        problems.append("policy: required, a mapping with slug and title")
    else:
        where = f"line {policy['__line__']}: policy"
        extra = sorted(str(k) for k in set(policy) - POLICY_KEYS - {"__line__"})
        if extra:
            problems.append(f"{where}: unknown key(s): {', '.join(extra)}")
        slug = str(policy.get("slug") or "").strip()
        title = str(policy.get("title") or "").strip()
        if not SLUG_RE.match(slug):
            problems.append(f"{where}: slug must be lower-case letters, digits and dashes")
        if not title:
            problems.append(f"{where}: title is required")
        elif why := field_problem("title", title, 300):
            problems.append(f"{where}: {why}")
    raw_tips = data.get("tips")
    tips: list[TipSpec] = []
    if not isinstance(raw_tips, list) or not raw_tips:
        problems.append("tips: required, a non-empty list")
        raw_tips = []
    first_line: dict[str, int] = {}
    for index, raw in enumerate(raw_tips, start=1):
        header = entry_header(raw, index, "tip", TIP_KEYS, first_line, problems)
        if header is None:
            continue
        key, where = header
        line = raw["__line__"]
        values = {}
        for name in ("section", "title", "body"):
            value = raw.get(name)
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where}: {name} is required")
                value = ""
            values[name] = value.strip()
            if why := field_problem(name, values[name], FIELD_LIMITS[name], multiline=name == "body"):
                problems.append(f"{where}: {why}")
        if len(values["title"]) > MAX_TITLE_CHARS:
            problems.append(f"{where}: title is longer than {MAX_TITLE_CHARS} characters")
        words = word_count(values["body"])
        if words > MAX_TIP_WORDS:
            problems.append(f"{where}: body has {words} words; a tip has at most {MAX_TIP_WORDS}")
        audience = [a.lower() for a in _string_list(raw.get("audience", ["all"]), where, "audience", problems)]
        refs = _string_list(raw.get("refs", []), where, "refs", problems)
        if "source" not in raw:
            problems.append(f"{where}: source is required: the verbatim sentence(s) of the section it restates")
            quotes = []
        else:
            quotes = _string_list(raw.get("source"), where, "source", problems, MAX_QUOTE_CHARS, multiline=True)
        tips.append(TipSpec(key, values["section"], values["title"], values["body"], audience or ["all"], refs,
                            quotes, line))
    raw_questions = data.get("questions", [])
    if not isinstance(raw_questions, list):
        problems.append("questions: a list of questions")
        raw_questions = []
    tip_sections = {t.key: t.section for t in tips}
    seen: dict[str, int] = {}
    questions = [q for index, raw in enumerate(raw_questions, start=1)
                 if (q := parse_question(raw, index, tip_sections, seen, problems, _quote_list)) is not None]
    if problems:
        raise InputErrors(source, problems)
    return Pack(slug, title, tips, questions)


def _quote_list(value: Any, where: str, name: str, problems: list[str]) -> list[str]:
    multiline = name == "source"
    return _string_list(value, where, name, problems, MAX_QUOTE_CHARS if multiline else 100, multiline=multiline)


def load_pack(path: Path) -> Pack:
    return parse_pack(read_text(path), str(path))


History = list[tuple[str, list[Section]]]  # a policy's versions, oldest first: (label, sections)


@dataclass(frozen=True)
class PackVerdicts:
    tips: dict[str, Verdict]
    questions: dict[str, Verdict]


def check_pack(pack: Pack, history: History, source: str) -> PackVerdicts:
    """Each tip's and question's verdict against the versions; raise InputErrors (file and line)
    for one whose quote is in no version of its section or whose ref its section does not name."""
    verdicts = PackVerdicts(
        {spec.key: judge_tip(spec.section, spec.quotes, spec.refs, history) for spec in pack.tips},
        {spec.key: judge_tip(spec.section, spec.quotes, spec.refs, history) for spec in pack.questions})
    problems = [f"line {spec.line}: {what} {spec.key!r}: {found[spec.key].reason}"
                for what, specs, found in (("tip", pack.tips, verdicts.tips),
                                           ("question", pack.questions, verdicts.questions))
                for spec in specs if found[spec.key].invented]
    if problems:
        raise InputErrors(source, problems)
    return verdicts


def history_of(policy: Policy | None) -> History:
    if policy is None:
        return []
    return [(v.label, [Section(s.title, s.text) for s in v.sections]) for v in policy.versions]


def import_pack(session: Session, path: Path) -> ContentResult:
    """Upsert a pack's tips and questions: new ones created, edited ones updated, removed ones
    deactivated; then each one's state against the stored versions (held, suspended) is kept on it."""
    pack = load_pack(path)
    policy = session.scalar(select(Policy).where(Policy.slug == pack.slug))
    check_pack(pack, history_of(policy), str(path))
    if policy is None:
        policy = Policy(slug=pack.slug, title=pack.title)
        session.add(policy)
        session.flush()
    common = {"active": True, "source": str(path)}
    tips = {spec.key: {"section": spec.section, "title": spec.title, "body": spec.body, "audience": spec.audience,
                       "refs": spec.refs, "quotes": spec.quotes, "position": position, **common}
            for position, spec in enumerate(pack.tips)}
    questions = {spec.key: {"section": spec.section, "prompt": spec.prompt, "options": spec.options,
                            "correct": spec.correct, "explanation": spec.explanation, "quotes": spec.quotes,
                            "tip_key": spec.tip_key, "audience": spec.audience, "position": position, **common}
                 for position, spec in enumerate(pack.questions)}
    result = ContentResult()
    changes = _sync(session, Tip, policy, tips, str(path))
    for name in CHANGES:
        getattr(result, name).extend(changes[name])
    result.questions = _sync(session, Question, policy, questions, str(path))
    policy.title = pack.title
    session.flush()
    result.review = review_tips(session, policy)
    return result


def _sync(session: Session, model: type[Tip] | type[Question], policy: Policy, desired: dict[str, dict[str, Any]],
          path: str) -> dict[str, list[str]]:
    """Make the stored rows of one kind match the pack's; returns the keys by what happened."""
    existing = {row.key: row for row in session.scalars(select(model))}
    what = model.__tablename__[:-1]
    foreign = [key for key in desired if key in existing and existing[key].policy_id != policy.id]
    if foreign:
        raise InputErrors(path, [f"{what} {k!r}: id already used by another policy" for k in foreign])
    changes: dict[str, list[str]] = {name: [] for name in CHANGES}
    for key, values in desired.items():
        row = existing.get(key)
        if row is None:
            changes["created"].append(key)
            session.add(model(key=key, policy_id=policy.id, **values))
            continue
        changed = any(getattr(row, k) != v for k, v in values.items() if k not in QUIET_FIELDS)
        changes["updated" if changed else "unchanged"].append(key)
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
    for key, row in existing.items():
        if row.policy_id == policy.id and row.active and key not in desired:
            changes["deactivated"].append(key)
            row.active = False
    return changes


@dataclass(frozen=True)
class TipState:
    key: str
    title: str
    state: str
    reason: str
    was: str  # the state before this review
    what: str = "tip"  # or "question"


def _refs(row: Tip | Question) -> list[str]:
    return row.refs or [] if isinstance(row, Tip) else QuestionSpec.refs_in(row.prompt, row.options, row.explanation)


def _label(row: Tip | Question) -> str:
    return row.title if isinstance(row, Tip) else row.prompt


def review_tips(session: Session, policy: Policy) -> list[TipState]:
    """Judge every active tip and question of ``policy`` against its stored versions and keep the
    state on it; returns every one that is not ok, and every one whose state changed."""
    history = history_of(policy)
    found = []
    for model in (Tip, Question):
        for row in session.scalars(select(model).where(model.policy_id == policy.id, model.active.is_(True))
                                   .order_by(model.position)):
            verdict = judge_tip(row.section, row.quotes or [], _refs(row), history)
            was = row.state
            if (row.state, row.state_reason or "") != (verdict.state, verdict.reason):
                row.state, row.state_reason = verdict.state, verdict.reason or None
            if verdict.state != OK or was != verdict.state:
                found.append(TipState(row.key, _label(row), verdict.state, verdict.reason, was,
                                      model.__tablename__[:-1]))
    session.flush()
    return found


def tips_not_sent(session: Session) -> list[TipState]:
    """Active tips and questions that are held or suspended, as last judged."""
    return [TipState(row.key, _label(row), row.state, row.state_reason or "", row.state, model.__tablename__[:-1])
            for model in (Tip, Question) for row in session.scalars(
                select(model).where(model.active.is_(True), model.state != OK).order_by(model.policy_id,
                                                                                         model.position))]
