"""A local double of SendGrid's v3 Mail Send API that speaks real HTTP.

Implements ``POST /v3/mail/send`` as documented: Bearer key check (401), body
validation with SendGrid-shaped error JSON (400), and ``202`` with an
``X-Message-Id``. It records every request and every recipient's expanded
email (substitutions applied) and can inject faults: 429 with Retry-After,
5xx, slow responses and dropped connections.

Run alone: ``python -m service.doubles.sendgrid --port 3030 --api-key SG.test``.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from service.doubles.http import BackgroundServer, FastHandler

MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000


@dataclass
class Fault:
    """One injected behaviour for one request: an error status, a delay, or a dropped connection."""

    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    drop: bool = False


@dataclass
class ReceivedEmail:
    message_id: str
    to_email: str
    to_name: str | None
    subject: str
    text: str
    html: str
    custom_args: dict[str, str]
    attachments: list[dict[str, Any]]
    tracking_settings: dict[str, Any]


@dataclass
class SendGridDouble(BackgroundServer):
    api_key: str = "SG.test-key"
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    emails: list[ReceivedEmail] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    attempts: int = 0
    expand: bool = True  # False: validate and count recipients only (benchmarks at scale)
    recipients: int = 0
    duplicates: int = 0  # the same delivery_id custom arg seen twice
    seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        BackgroundServer.__init__(self, _Handler, self.host, self.port)
        self.lock = threading.Lock()
        self.signing_key = ec.generate_private_key(ec.SECP256R1())

    # ------------------------------------------------------------ event webhook

    @property
    def public_key(self) -> str:
        """The verification key, as SendGrid shows it (base64 DER), for SENDGRID_WEBHOOK_PUBLIC_KEY."""
        der = self.signing_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode("ascii")

    def sign(self, body: bytes, timestamp: str) -> str:
        signature = self.signing_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode("ascii")

    def events(self, kind: str, emails: list[ReceivedEmail], at: float | None = None, **extra: Any) -> list[dict[str, Any]]:
        """Event Webhook events for accepted emails; custom_args come back as top-level fields."""
        stamp = int(at if at is not None else time.time())
        return [
            {"email": e.to_email, "timestamp": stamp, "event": kind, "sg_event_id": secrets.token_urlsafe(16),
             "sg_message_id": f"{e.message_id}.filter0001.{i}", **e.custom_args, **extra}
            for i, e in enumerate(emails)
        ]

    def post_events(self, url: str, events: list[dict[str, Any]], *, timestamp: int | None = None,
                    signature: str | None = None) -> tuple[int, dict[str, Any]]:
        """POST a signed batch to a webhook URL as SendGrid does; returns (status, JSON answer)."""
        body = json.dumps(events).encode()
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": signature or self.sign(body, stamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        })
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each following request consumes one."""
        with self.lock:
            self.faults.extend(faults)

    def _next_fault(self) -> Fault | None:
        with self.lock:
            self.attempts += 1
            return self.faults.pop(0) if self.faults else None

    def accept(self, body: dict[str, Any]) -> str:
        message_id = secrets.token_urlsafe(16)
        expanded = list(_expand(body, message_id)) if self.expand else []
        with self.lock:
            self.requests.append(body if self.expand else {})
            self.emails.extend(expanded)
            self.recipients += sum(len(p["to"]) for p in body["personalizations"])
            for p in body["personalizations"]:
                delivery = (p.get("custom_args") or {}).get("delivery_id")
                if delivery is not None:
                    self.duplicates += delivery in self.seen
                    self.seen.add(delivery)
        return message_id


def _error(message: str, field_name: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field_name, "help": None}


def validate(body: Any) -> list[dict[str, Any]]:
    """The subset of SendGrid's Mail Send validation that a well-formed client can hit."""
    if not isinstance(body, dict):
        return [_error("Bad Request", None)]
    errors = []
    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        errors.append(_error("The from object must be provided for every email send. "
                             "It is an object that requires the email parameter, but may also contain a name parameter.",
                             "from.email"))
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(_error("The personalizations field is required and must have at least one personalization.",
                             "personalizations"))
        personalizations = []
    elif len(personalizations) > MAX_PERSONALIZATIONS:
        errors.append(_error("The personalizations field must have at most 1000 personalizations.", "personalizations"))
    recipients = 0
    for index, p in enumerate(personalizations):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to or not all(isinstance(t, dict) and t.get("email") for t in to):
            errors.append(_error("The to array is required for all personalization objects, and must have at least "
                                 "one email object with a valid email address.", f"personalizations.{index}.to"))
            continue
        recipients += sum(len(p.get(k) or []) for k in ("to", "cc", "bcc"))
        if not body.get("subject") and not p.get("subject") and not body.get("template_id"):
            errors.append(_error("The subject is required. You can get around this requirement if you use a template "
                                 "with a subject defined or if every personalization has a subject defined.", "subject"))
        args = p.get("custom_args") or {}
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            errors.append(_error("Custom args must be string values.", f"personalizations.{index}.custom_args"))
        subs = p.get("substitutions") or {}
        if sum(len(str(k).encode()) + len(str(v).encode()) for k, v in subs.items()) > 10_000:
            errors.append(_error("The total size of your substitutions must be less than 10,000 bytes per "
                                 "personalization object.", f"personalizations.{index}.substitutions"))
    if recipients > MAX_RECIPIENTS:
        errors.append(_error("The total number of recipients must be no more than 1000.", "personalizations"))
    content = body.get("content")
    if not body.get("template_id"):
        if not isinstance(content, list) or not content:
            errors.append(_error("Unless a valid template_id is provided, the content parameter is required. "
                                 "There must be at least one defined content block.", "content"))
        else:
            types = [c.get("type") for c in content if isinstance(c, dict)]
            if any(not (isinstance(c, dict) and c.get("type") and isinstance(c.get("value"), str) and c.get("value"))
                   for c in content):
                errors.append(_error("The content value must be a string at least one character in length.",
                                     "content.0.value"))
            if "text/plain" in types and "text/html" in types and types.index("text/plain") > types.index("text/html"):
                errors.append(_error("If present, text/plain content must be first, followed by text/html.",
                                     "content.0.type"))
    return errors


def _expand(body: dict[str, Any], message_id: str):
    content = {c["type"]: c["value"] for c in body.get("content", [])}
    for p in body["personalizations"]:
        subs = p.get("substitutions") or {}

        def fill(text: str) -> str:
            for key, value in subs.items():
                text = text.replace(key, value)
            return text

        for to in p["to"]:
            yield ReceivedEmail(
                message_id=message_id,
                to_email=to["email"].lower(),
                to_name=to.get("name"),
                subject=fill(p.get("subject") or body.get("subject", "")),
                text=fill(content.get("text/plain", "")),
                html=fill(content.get("text/html", "")),
                custom_args={**(body.get("custom_args") or {}), **(p.get("custom_args") or {})},
                attachments=body.get("attachments") or [],
                tracking_settings=body.get("tracking_settings") or {},
            )


class _Handler(FastHandler):
    @property
    def double(self) -> SendGridDouble:
        return self.server.double  # type: ignore[attr-defined]

    def _reply(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/_stats":  # the double's own counters, for a benchmark running it in another process
            with self.double.lock:
                stats = {"requests": len(self.double.requests), "recipients": self.double.recipients,
                         "attempts": self.double.attempts, "duplicates": self.double.duplicates}
            self._reply(200, stats)
        else:
            self._reply(404, {"errors": [_error("Not found")]})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v3/mail/send":
            self._reply(404, {"errors": [_error("Not found")]})
            return
        fault = self.double._next_fault()
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            if fault.status:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                self._reply(fault.status, {"errors": [_error(f"injected {fault.status}")]}, headers)
                return
        if self.headers.get("Authorization") != f"Bearer {self.double.api_key}":
            self._reply(401, {"errors": [_error("The provided authorization grant is invalid, expired, or revoked")]})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._reply(400, {"errors": [_error("Bad Request")]})
            return
        errors = validate(body)
        if errors:
            self._reply(400, {"errors": errors})
            return
        message_id = self.double.accept(body)
        self._reply(202, headers={"X-Message-Id": message_id})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3030)
    parser.add_argument("--api-key", default="SG.test-key")
    parser.add_argument("--count-only", action="store_true", help="validate and count; keep no email bodies")
    args = parser.parse_args()
    double = SendGridDouble(api_key=args.api_key, host=args.host, port=args.port, expand=not args.count_only)
    print(f"SendGrid double on {double.url} (key {args.api_key!r}); Ctrl-C stops it", flush=True)
    print(f"webhook verification key: {double.public_key}", flush=True)
    try:
        double.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
