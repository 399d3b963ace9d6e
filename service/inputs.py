"""Reading user input files and checking the values every import stores, the same for SQLite and
PostgreSQL: no control characters, nothing longer than its column, numbers within their column,
addresses validated and normalised by email-validator."""

from __future__ import annotations

import re
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from service.errors import InputErrors

MAX_EMAIL = 254  # RFC 5321's path limit; the column holds 320
MAX_BIGINT = 2**63 - 1
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # C0 and DEL: line breaks in a header field, NUL in any text
CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # the same, but tabs and line breaks are text


def normalize_email(value: str) -> str:
    return value.strip().lower()


def checked_email(value: str) -> tuple[str | None, str | None]:
    """(normalised address, None) or (None, why not). Addresses compare case-insensitively."""
    value = value.strip()
    if CONTROL.search(value):
        return None, "holds a control character"
    if len(value) > MAX_EMAIL:
        return None, f"is longer than {MAX_EMAIL} characters"
    try:
        found = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None, "is not a valid address"
    return found.normalized.lower(), None


def field_problem(name: str, value: str, limit: int, *, multiline: bool = False) -> str | None:
    """Why a text field cannot be stored as given, or None."""
    if (CONTROL_IN_TEXT if multiline else CONTROL).search(value):
        return f"{name} holds a control character (a line break, NUL or similar)"
    if len(value) > limit:
        return f"{name} is longer than {limit} characters"
    return None


def whole_number(name: str, value: str, high: int = MAX_BIGINT) -> tuple[int | None, str | None]:
    """A non-negative whole number of ASCII digits, at most ``high``."""
    if not re.fullmatch(r"[0-9]+", value):
        return None, f"{name} {value[:30]!r} is not a whole number"
    if len(value) > 19 or int(value) > high:
        return None, f"{name} {value[:30]!r} is too large (at most {high})"
    return int(value), None


def read_text(path: Path) -> str:
    """Read a UTF-8 file (a BOM is fine); an undecodable one is a clear error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputErrors(str(path), [f"cannot read file: {exc.strerror}"]) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputErrors(
            str(path), [f"not UTF-8 text (bad byte at offset {exc.start}); save the file as UTF-8"]
        ) from None
