"""What every entry of a pack list (a tip, a question) is checked for first: a mapping, its
keys, and an id that is well formed and not used twice."""

from __future__ import annotations

import re
from typing import Any

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


def entry_header(raw: Any, index: int, what: str, keys: set[str], seen: dict[str, int], problems: list[str]
                 ) -> tuple[str, str] | None:
    """(id, where) of the ``index``-th ``what`` ("tip", "question"), where "where" names its line
    and id for every later problem; None if it is not a mapping. ``seen``: ids so far, to lines."""
    if not isinstance(raw, dict):
        problems.append(f"{what}s[{index}]: each {what} is a mapping")
        return None
    line = raw["__line__"]
    key = str(raw.get("id") or "").strip()
    where = f"line {line}: {what} {key!r}" if key else f"line {line}: {what} #{index}"
    extra = sorted(str(k) for k in set(raw) - keys - {"__line__"})
    if extra:
        problems.append(f"{where}: unknown key(s): {', '.join(extra)}")
    if not key:
        problems.append(f"{where}: id is required")
    elif not ID_RE.match(key):
        problems.append(f"{where}: id must be lower-case letters, digits and dashes")
    elif key in seen:
        problems.append(f"{where}: duplicate id (first on line {seen[key]})")
    else:
        seen[key] = line
    return key, where
