"""Signed tracking tokens and the URLs built from them.

A token carries (kind, delivery id, target) and an HMAC-SHA256 tag. No email
or name is ever in a URL. Several keys verify (rotation); the first signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.config import Settings
from service.models import AppSecret

log = logging.getLogger(__name__)
OPEN, CLICK, ACK, TEAM, PREFS, ANSWER = "o", "c", "a", "t", "p", "q"  # TEAM: a supervisor's team page;
KINDS = {OPEN, CLICK, ACK, TEAM, PREFS, ANSWER}  # PREFS: one's settings; ANSWER: an option of a question
TAG_BYTES = 16  # 128-bit tag: ample against forgery, keeps URLs short
GENERATED_KEY_NAME = "signing_key"


@dataclass(frozen=True)
class TokenData:
    kind: str
    delivery_id: int
    target: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one signing key is needed")
        self._keys = [k.encode("utf-8") for k in keys]

    def _tag(self, key: bytes, body: bytes) -> bytes:
        return hmac.digest(key, body, "sha256")[:TAG_BYTES]  # one-shot: the hot path signs 5 links a digest

    def sign(self, data: TokenData) -> str:
        if data.kind not in KINDS:
            raise ValueError(f"unknown token kind {data.kind!r}")
        body = f"{data.kind}{data.delivery_id}|{data.target}".encode()
        return f"{_b64(body)}.{_b64(self._tag(self._keys[0], body))}"

    def verify(self, token: str) -> TokenData | None:
        """The token's data if any key signed it, else None (never raises on junk)."""
        try:
            body_part, tag_part = token.split(".")
            body, tag = _unb64(body_part), _unb64(tag_part)
            if not any(hmac.compare_digest(self._tag(k, body), tag) for k in self._keys):
                return None
            head, target = body.decode("utf-8").split("|", 1)
            kind, delivery = head[0], head[1:]
            if kind not in KINDS or not delivery.isdigit():
                return None
            return TokenData(kind, int(delivery), target)
        except (ValueError, UnicodeDecodeError, IndexError):
            return None


def signing_keys(session: Session, settings: Settings) -> list[str]:
    """The configured keys, or a key generated once and kept in the database (with a warning).

    Setting NUDGE_SECRET_KEY later does not break the links already sent: the generated key keeps
    verifying (it never signs again) until an admin deletes it."""
    stored = session.get(AppSecret, GENERATED_KEY_NAME)
    if settings.secret_keys:
        if stored is None or stored.value in settings.secret_keys:
            return settings.secret_keys
        log.warning("the signing key generated before NUDGE_SECRET_KEY was set still verifies the links sent "
                    "with it; once those are old enough, delete the app_secrets row %r to retire it",
                    GENERATED_KEY_NAME)
        return [*settings.secret_keys, stored.value]  # the configured key signs; the old one only verifies
    if stored is None:
        log.warning("NUDGE_SECRET_KEY is not set: generated a signing key and stored it in the database")
        stored = AppSecret(name=GENERATED_KEY_NAME, value=secrets.token_urlsafe(32))
        session.add(stored)
        session.flush()
    return [stored.value]


class Links:
    """Builds the tracked URLs of one service (pixel, click redirect, acknowledge page)."""

    def __init__(self, base_url: str, signer: Signer):
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def pixel(self, delivery_id: int) -> str:
        return f"{self.base_url}/o/{self.signer.sign(TokenData(OPEN, delivery_id))}.gif"

    def click(self, delivery_id: int, target: str) -> str:
        return f"{self.base_url}/c/{self.signer.sign(TokenData(CLICK, delivery_id, target))}"

    def ack(self, delivery_id: int, subject: str = "") -> str:
        return f"{self.base_url}/ack/{self.signer.sign(TokenData(ACK, delivery_id, subject))}"

    def answer(self, delivery_id: int, question_id: int, choice: int) -> str:
        """A knowledge check's option: opens the answer page with it chosen (only its POST records)."""
        return f"{self.base_url}/q/{self.signer.sign(TokenData(ANSWER, delivery_id, f'{question_id}:{choice}'))}"

    def preferences(self, delivery_id: int) -> str:
        """The reader's own preferences page, from any email they got (its person is the reader)."""
        return f"{self.base_url}/prefs/{self.signer.sign(TokenData(PREFS, delivery_id))}"

    def team(self, summary_delivery_id: int) -> str:
        return f"{self.base_url}/team/{self.signer.sign(TokenData(TEAM, summary_delivery_id))}"


def make_links(session: Session, settings: Settings) -> Links:
    return Links(settings.base_url, Signer(signing_keys(session, settings)))


def hash_ip(ip: str | None, key: str) -> str | None:
    """Keyed hash: an IP can be compared with others, never read back."""
    if not ip:
        return None
    return hmac.new(key.encode(), ip.encode(), hashlib.sha256).hexdigest()[:32]
