"""SMTP backend: one connection reused for a batch, optional STARTTLS and login."""

from __future__ import annotations

import smtplib
import socket

from service.channels.base import Message, Result, unsendable
from service.channels.mime import Sender, build_mime
from service.config import Settings

TIMEOUT_SECONDS = 30


class SmtpChannel:
    name = "smtp"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.sender = Sender.from_settings(settings)
        self._conn: smtplib.SMTP | None = None

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            try:
                if self._conn.noop()[0] == 250:
                    return self._conn
            except smtplib.SMTPException:
                pass
            self.close()
        s = self.settings
        conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=TIMEOUT_SECONDS)
        if s.smtp_starttls:
            conn.starttls()
        if s.smtp_user:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            conn.login(s.smtp_user, password)
        self._conn = conn
        return conn

    def send(self, messages: list[Message]) -> list[Result]:
        results: list[Result] = []
        for index, message in enumerate(messages):
            try:
                mime = build_mime(message, self.sender)
                mime.as_bytes()  # a header the email library refuses fails here, before any SMTP command
            except Exception as exc:  # noqa: BLE001 - one bad message never stops the batch
                results.append(unsendable(message, exc))
                continue
            try:
                conn = self._connection()
                conn.send_message(mime)
                results.append(Result.sent(None))
            except smtplib.SMTPAuthenticationError as exc:
                self.close()
                reason = Result.paused(f"SMTP login refused ({exc.smtp_code}): check NUDGE_SMTP_USER and "
                                       "NUDGE_SMTP_PASSWORD")
                results.extend(reason for _ in messages[index:])
                break
            except (smtplib.SMTPNotSupportedError, UnicodeEncodeError) as exc:
                self.close()  # a command may have been half sent: start the next message afresh
                results.append(unsendable(message, exc))
            except smtplib.SMTPRecipientsRefused as exc:
                code, reason = next(iter(exc.recipients.values()))
                results.append(_by_code(code, reason))
            except smtplib.SMTPResponseException as exc:
                results.append(_by_code(exc.smtp_code, exc.smtp_error))
                if exc.smtp_code == 421:
                    self.close()
            except (smtplib.SMTPException, OSError, socket.timeout) as exc:
                self.close()
                error = f"SMTP connection problem: {exc.__class__.__name__}"
                results.extend(Result.retry(error) for _ in messages[index:])
                break
            except Exception as exc:  # noqa: BLE001 - one bad message never stops the batch
                self.close()
                results.append(unsendable(message, exc))
        return results

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._conn = None


def _by_code(code: int, reason: bytes | str) -> Result:
    text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    error = f"SMTP {code}: {text}"[:500]
    return Result.retry(error) if 400 <= code < 500 else Result.failed(error)
