"""Builds the MIME email (multipart/alternative, with related inline images) for file and SMTP backends."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from service.channels.base import Message


def build_mime(message: Message, from_email: str) -> EmailMessage:
    mime = EmailMessage()
    mime["From"] = formataddr(("Policy Nudge", from_email))
    mime["To"] = formataddr((message.to_name, message.to_email))
    mime["Subject"] = message.subject
    mime["Message-ID"] = make_msgid(domain=from_email.rsplit("@", 1)[-1] or "localhost")
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
