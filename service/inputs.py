"""Reading user input files and normalising the values every import compares."""

from __future__ import annotations

from pathlib import Path


from service.errors import InputErrors


def normalize_email(value: str) -> str:
    return value.strip().lower()


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
