"""Builds the MIME email (multipart/alternative, with related inline images) for file and SMTP backends,
with the headers every email carries: Date, a Message-ID that a retry repeats, List-Id and
Auto-Submitted (mail clients and auto-responders then treat it as what it is), From and Reply-To."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from service.channels.base import Message
from service.config import Settings
from service.models import utcnow


@dataclass(frozen=True)
class Sender:
    """Who the emails are from, and how a list of them is named (settings)."""

    email: str
    name: str
    reply_to: str | None
    organisation: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        return cls(settings.from_email, settings.from_name, settings.reply_to, settings.organisation)

    @property
    def domain(self) -> str:
        return self.email.rsplit("@", 1)[-1] or "localhost"

    def message_id(self, message: Message) -> str:
        """The same for every attempt at one delivery, so a retried email is one email to the reader."""
        return f"<nudge.{message.delivery_id}.{message.kind}@{self.domain}>"

    @property
    def list_headers(self) -> dict[str, str]:
        """What every email says it is, whichever channel carries it."""
        return {"List-Id": f"{self.organisation} <policy-nudge.{self.domain}>", "Auto-Submitted": "auto-generated"}


def build_mime(message: Message, sender: Sender) -> EmailMessage:
    mime = EmailMessage()
    mime["From"] = formataddr((sender.name, sender.email))
    mime["To"] = formataddr((message.to_name, message.to_email))
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(message.date or utcnow())
    mime["Message-ID"] = sender.message_id(message)
    for key, value in sender.list_headers.items():
        mime[key] = value
    if sender.reply_to:
        mime["Reply-To"] = sender.reply_to
    for key, value in message.custom_args.items():
        mime[f"X-Nudge-{key.replace('_', '-').title()}"] = value
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    if message.skeleton.inline_images:
        html_part = mime.get_payload()[1]
        for image in message.skeleton.inline_images:
            html_part.add_related(
                image.data, maintype="image", subtype=image.mime_subtype,
                cid=f"<{image.content_id}>", filename=image.filename,
            )
    return mime
