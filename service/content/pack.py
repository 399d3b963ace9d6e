"""Tip packs: parse and validate a YAML pack, then store its tips (idempotent).

Every tip carries its evidence, ``source``: verbatim quotes of its section. A pack whose
quote is in no version of its section, or whose ref the section does not name, is refused
with the file and line; a tip whose section is not in the policy yet is stored and held."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import InputErrors
from service.models import Policy, Tip
from service.inputs import field_problem, read_text
from service.policy import Section
from service.policy.evidence import OK, Verdict, judge_tip

MAX_TIP_WORDS = 60
MAX_TITLE_CHARS = 120
FIELD_LIMITS = {"section": 300, "title": 200, "body": 20_000}  # the columns (the body is Text)
TIP_KEYS = {"id", "section", "title", "body", "source", "audience", "refs"}
MAX_QUOTE_CHARS = 1000
TOP_KEYS = {"policy", "tips"}
POLICY_KEYS = {"slug", "title"}
QUIET_FIELDS = {"position", "source"}  # bookkeeping: a reorder or a moved file is not an edit
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
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


@dataclass
class ContentResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    review: list[TipState] = field(default_factory=list)  # tips held or suspended, or whose state changed

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("created", "updated", "unchanged", "deactivated")}


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
        if not isinstance(raw, dict):
            problems.append(f"tips[{index}]: each tip is a mapping")
            continue
        line = raw["__line__"]
        key = str(raw.get("id") or "").strip()
        where = f"line {line}: tip {key!r}" if key else f"line {line}: tip #{index}"
        extra = sorted(str(k) for k in set(raw) - TIP_KEYS - {"__line__"})
        if extra:
            problems.append(f"{where}: unknown key(s): {', '.join(extra)}")
        if not key:
            problems.append(f"{where}: id is required")
        elif not ID_RE.match(key):
            problems.append(f"{where}: id must be lower-case letters, digits and dashes")
        elif key in first_line:
            problems.append(f"{where}: duplicate id (first on line {first_line[key]})")
        else:
            first_line[key] = line
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
    if problems:
        raise InputErrors(source, problems)
    return Pack(slug, title, tips)


def load_pack(path: Path) -> Pack:
    return parse_pack(read_text(path), str(path))


History = list[tuple[str, list[Section]]]  # a policy's versions, oldest first: (label, sections)


def check_pack(pack: Pack, history: History, source: str) -> dict[str, Verdict]:
    """Each tip's verdict against the versions; raise InputErrors (file and line) for a tip whose
    quote is in no version of its section or whose ref its section does not name."""
    verdicts = {spec.key: judge_tip(spec.section, spec.quotes, spec.refs, history) for spec in pack.tips}
    problems = [f"line {spec.line}: tip {spec.key!r}: {verdicts[spec.key].reason}"
                for spec in pack.tips if verdicts[spec.key].invented]
    if problems:
        raise InputErrors(source, problems)
    return verdicts


def history_of(policy: Policy | None) -> History:
    if policy is None:
        return []
    return [(v.label, [Section(s.title, s.text) for s in v.sections]) for v in policy.versions]


def import_pack(session: Session, path: Path) -> ContentResult:
    """Upsert a pack's tips: new ones created, edited ones updated, removed ones deactivated;
    then each tip's state against the stored versions (held, suspended) is kept on it."""
    pack = load_pack(path)
    policy = session.scalar(select(Policy).where(Policy.slug == pack.slug))
    check_pack(pack, history_of(policy), str(path))
    if policy is None:
        policy = Policy(slug=pack.slug, title=pack.title)
        session.add(policy)
        session.flush()
    existing = {t.key: t for t in session.scalars(select(Tip))}
    foreign = [s.key for s in pack.tips if s.key in existing and existing[s.key].policy_id != policy.id]
    if foreign:
        raise InputErrors(str(path), [f"tip {k!r}: id already used by another policy" for k in foreign])

    result = ContentResult()
    for position, spec in enumerate(pack.tips):
        desired = {
            "section": spec.section,
            "title": spec.title,
            "body": spec.body,
            "audience": spec.audience,
            "refs": spec.refs,
            "quotes": spec.quotes,
            "position": position,
            "active": True,
            "source": str(path),
        }
        tip = existing.get(spec.key)
        if tip is None:
            result.created.append(spec.key)
            session.add(Tip(key=spec.key, policy_id=policy.id, **desired))
            continue
        changed = any(getattr(tip, k) != v for k, v in desired.items() if k not in QUIET_FIELDS)
        (result.updated if changed else result.unchanged).append(spec.key)
        for key, value in desired.items():
            if getattr(tip, key) != value:
                setattr(tip, key, value)
    in_pack = {s.key for s in pack.tips}
    for key, tip in existing.items():
        if tip.policy_id == policy.id and tip.active and key not in in_pack:
            result.deactivated.append(key)
            tip.active = False
    policy.title = pack.title
    session.flush()
    result.review = review_tips(session, policy)
    return result


@dataclass(frozen=True)
class TipState:
    key: str
    title: str
    state: str
    reason: str
    was: str  # the state before this review


def review_tips(session: Session, policy: Policy) -> list[TipState]:
    """Judge every active tip of ``policy`` against its stored versions and keep the state on the
    tip; returns every tip that is not ok, and every tip whose state changed."""
    history = history_of(policy)
    found = []
    for tip in session.scalars(select(Tip).where(Tip.policy_id == policy.id, Tip.active.is_(True))
                               .order_by(Tip.position)):
        verdict = judge_tip(tip.section, tip.quotes or [], tip.refs or [], history)
        was = tip.state
        if (tip.state, tip.state_reason or "") != (verdict.state, verdict.reason):
            tip.state, tip.state_reason = verdict.state, verdict.reason or None
        if verdict.state != OK or was != verdict.state:
            found.append(TipState(tip.key, tip.title, verdict.state, verdict.reason, was))
    session.flush()
    return found


def tips_not_sent(session: Session) -> list[TipState]:
    return [TipState(t.key, t.title, t.state, t.state_reason or "", t.state) for t in session.scalars(
        select(Tip).where(Tip.active.is_(True), Tip.state != OK).order_by(Tip.policy_id, Tip.position))]
