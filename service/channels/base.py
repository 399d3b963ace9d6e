"""What every channel shares: the message it is given and the result it answers.

A channel gets a batch of messages and answers, per message, sent (with the
provider's id), retry later (with an optional Retry-After), failed for good, or
paused (misconfigured: the rows wait until an admin fixes the settings).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

# what an exception raised for one message means, said without the message's content
WHY_UNSENDABLE = {
    "ValueError": "a header holds a line break or another character email forbids",
    "UnicodeEncodeError": "the address or a header is not ASCII and the server does not accept UTF-8 (SMTPUTF8)",
    "SMTPNotSupportedError": "the address is not ASCII and the server does not accept UTF-8 (SMTPUTF8)",
}

@dataclass(frozen=True)
class Skeleton:
    """Content shared by many recipients, with ``-pn_key-`` placeholders for per-person values."""

    subject: str
    html: str
    text: str
    inline_images: tuple[InlineImage, ...] = ()


@dataclass(frozen=True)
class InlineImage:
    content_id: str
    data: bytes
    mime_subtype: str = "png"
    filename: str = "image.png"


PLACEHOLDER = re.compile(r"-pn_[a-z_]+-")


def placeholder(name: str) -> str:
    return f"-pn_{name}-"


@dataclass
class Message:
    """One email to one person: a shared skeleton plus that person's values."""

    delivery_id: int
    kind: str
    to_email: str
    to_name: str
    skeleton: Skeleton
    values: dict[str, str] = field(default_factory=dict)  # placeholder -> value
    custom_args: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # channel-specific (a Canvas course, sections...)
    date: datetime | None = None  # when it is sent (the dispatcher's clock): the email's Date header

    def fill(self, text: str) -> str:
        if not self.values:
            return text
        return PLACEHOLDER.sub(lambda m: self.values.get(m.group(0), m.group(0)), text)

    @property
    def subject(self) -> str:
        return self.fill(self.skeleton.subject)

    @property
    def html(self) -> str:
        return self.fill(self.skeleton.html)

    @property
    def text(self) -> str:
        return self.fill(self.skeleton.text)


@dataclass(frozen=True)
class Result:
    """What happened to one message: ``status`` is sent, retry, failed or paused.

    ``paused`` means the channel is misconfigured (bad token, wrong course): the
    message waits, unharmed, until an admin fixes the settings.
    """

    status: str
    provider_id: str | None = None
    error: str | None = None
    retry_after: float | None = None

    @classmethod
    def sent(cls, provider_id: str | None) -> Result:
        return cls("sent", provider_id=provider_id)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> Result:
        return cls("retry", error=error, retry_after=retry_after)

    @classmethod
    def failed(cls, error: str) -> Result:
        return cls("failed", error=error)

    @classmethod
    def paused(cls, error: str) -> Result:
        return cls("paused", error=error)


class Channel(Protocol):
    name: str

    def send(self, messages: list[Message]) -> list[Result]:
        """Send a batch; return one Result per message, in order. Never raises for a send error."""
        ...

    def close(self) -> None: ...


def unsendable(message: Message, exc: BaseException) -> Result:
    """A message that cannot be built or sent fails alone and for good: the batch goes on.

    Logged by delivery id and exception class only (no address or name).
    """
    name = exc.__class__.__name__
    log.warning("delivery %s cannot be sent: %s", message.delivery_id, name)
    return Result.failed(f"cannot be sent ({name}): {WHY_UNSENDABLE.get(name, 'unexpected error, see the logs')}")
