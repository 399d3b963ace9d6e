"""SendGrid backend through the official library.

Recipients who share a skeleton go out together: up to 1,000 personalizations
per ``/v3/mail/send`` request, each carrying that person's values as
substitutions and the delivery id in ``custom_args``. SendGrid's own click and
open tracking is off: we track ourselves, and double-wrapped links break.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import urllib.error
from collections.abc import Iterator

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from service.channels.base import Message, Result, Skeleton, unsendable
from service.channels.mime import Sender
from service.config import ConfigError, Settings

MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
TIMEOUT_SECONDS = 30
TRACKING_OFF = {
    "click_tracking": {"enable": False, "enable_text": False},
    "open_tracking": {"enable": False},
    "subscription_tracking": {"enable": False},
}


class SendGridChannel:
    name = "sendgrid"

    def __init__(self, settings: Settings):
        if settings.sendgrid_api_key is None:
            raise ConfigError("SENDGRID_API_KEY: required when NUDGE_EMAIL_BACKEND=sendgrid")
        self.client = SendGridAPIClient(
            api_key=settings.sendgrid_api_key.get_secret_value(), host=settings.sendgrid_host
        )
        self.client.client.timeout = TIMEOUT_SECONDS
        self.sender = Sender.from_settings(settings)
        self.requests_made = 0

    def send(self, messages: list[Message]) -> list[Result]:
        results: dict[int, Result] = {}
        paused: Result | None = None
        for batch, skeleton in self._batches(messages):
            for message, outcome in ([(m, paused) for m in batch] if paused else self._send_batch(batch, skeleton)):
                results[id(message)] = outcome
                paused = outcome if outcome.status == "paused" else paused  # a refused key: stop asking
        return [results[id(m)] for m in messages]

    def _send_batch(self, batch: list[Message], skeleton: Skeleton | None) -> list[tuple[Message, Result]]:
        """One request; when it fails for good, each message alone, so one bad message fails alone."""
        try:
            body = self._request_body(batch, skeleton)
        except Exception as exc:  # noqa: BLE001 - one bad message never stops the batch
            if len(batch) == 1:
                return [(batch[0], unsendable(batch[0], exc))]
            return [pair for message in batch for pair in self._send_batch([message], None)]
        outcome = self._post(body)
        if outcome.status == "failed" and len(batch) > 1:
            return [pair for message in batch for pair in self._send_batch([message], None)]
        return [(message, outcome) for message in batch]

    def _batches(self, messages: list[Message]) -> Iterator[tuple[list[Message], Skeleton | None]]:
        """Group by shared skeleton; a person whose values are too big goes alone, fully rendered."""
        groups: dict[int, list[Message]] = {}
        for message in messages:
            if _substitution_bytes(message) > MAX_SUBSTITUTION_BYTES:
                yield [message], None
            else:
                groups.setdefault(id(message.skeleton), []).append(message)
        for group in groups.values():
            for start in range(0, len(group), MAX_PERSONALIZATIONS):
                yield group[start : start + MAX_PERSONALIZATIONS], group[0].skeleton

    def _request_body(self, batch: list[Message], skeleton: Skeleton | None) -> dict:
        personalizations = []
        for message in batch:
            entry: dict = {
                "to": [{"email": message.to_email, "name": message.to_name}],
                "subject": message.subject,
                "custom_args": dict(message.custom_args),
            }
            if skeleton is not None and message.values:
                entry["substitutions"] = dict(message.values)
            personalizations.append(entry)
        if skeleton is None:  # one person, content rendered here
            only = batch[0]
            subject, text, html, images = only.subject, only.text, only.html, only.skeleton.inline_images
        else:
            subject, text, html, images = skeleton.subject, skeleton.text, skeleton.html, skeleton.inline_images
        body: dict = {
            "from": {"email": self.sender.email, "name": self.sender.name},
            "subject": subject,
            "personalizations": personalizations,
            # SendGrid writes Date and Message-ID itself; these say what the email is
            "headers": self.sender.list_headers,
            "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
            "tracking_settings": TRACKING_OFF,
        }
        if self.sender.reply_to:
            body["reply_to"] = {"email": self.sender.reply_to}
        if images:
            body["attachments"] = [
                {
                    "content": base64.b64encode(image.data).decode("ascii"),
                    "type": f"image/{image.mime_subtype}",
                    "filename": image.filename,
                    "disposition": "inline",
                    "content_id": image.content_id,
                }
                for image in images
            ]
        return body

    def _post(self, body: dict) -> Result:
        self.requests_made += 1
        try:
            response = self.client.client.mail.send.post(request_body=body)
        except HTTPError as exc:
            return _from_http_error(exc)
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError) as exc:
            return Result.retry(f"SendGrid unreachable: {exc.__class__.__name__}")
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return Result.sent(message_id)

    def close(self) -> None:
        pass


def _substitution_bytes(message: Message) -> int:
    return sum(_utf8_length(k) + _utf8_length(v) for k, v in message.values.items())


def _utf8_length(text: str) -> int:
    """Bytes in UTF-8, without encoding ASCII text (most of a digest) only to measure it."""
    return len(text) if text.isascii() else len(text.encode())


def _from_http_error(exc: HTTPError) -> Result:
    status = int(exc.status_code)
    detail = _error_detail(exc.body)
    error = f"SendGrid {status}: {detail}"[:500]
    if status in (401, 403):  # the key is wrong or lacks mail.send: the channel waits for an admin
        return Result.paused(f"SendGrid refused the API key ({status}): check SENDGRID_API_KEY")
    if status == 429 or status >= 500:
        retry_after = None
        headers = exc.headers or {}
        raw = headers.get("Retry-After") if hasattr(headers, "get") else None
        if raw is not None and str(raw).strip().isdigit():
            retry_after = float(raw)
        return Result.retry(error, retry_after)
    return Result.failed(error)


def _error_detail(body: bytes | str | None) -> str:
    if not body:
        return "no details"
    try:
        data = json.loads(body)
        return "; ".join(e.get("message", "?") for e in data.get("errors", [])) or "no details"
    except (ValueError, AttributeError, TypeError):
        return str(body[:200])
