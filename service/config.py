"""Settings, read once at start-up from the environment and passed in.

Nothing in the package reads the environment at import time: the CLI, the
web app and the jobs call :func:`load_settings` and hand the result down.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit
from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.errors import NudgeError

ADMIN_TOKEN_MIN = 24
SECRET_KEY_MIN_BYTES = 32
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
PLACEHOLDERS = {"change-me-in-production", "change-me-too"}  # docker-compose.yml's defaults
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ConfigError(NudgeError):
    """A setting is missing or wrong; the message is one line naming the variable."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    # the environment wins over a `.env` file in the working folder (`nudge init` writes one)
    model_config = SettingsConfigDict(env_prefix="NUDGE_", extra="ignore", populate_by_name=True,
                                      env_file=".env", env_file_encoding="utf-8")

    database_url: str = "sqlite:///nudge.db"
    email_backend: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    outbox_dir: str = "outbox"

    sendgrid_api_key: SecretStr | None = Field(None, validation_alias=_env("SENDGRID_API_KEY"))
    sendgrid_host: str = "https://api.sendgrid.com"
    sendgrid_webhook_public_key: str | None = Field(
        None, validation_alias=_env("SENDGRID_WEBHOOK_PUBLIC_KEY")
    )

    smtp_host: str = "localhost"
    smtp_port: int = Field(1025, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False

    canvas_api_url: str | None = Field(None, validation_alias=_env("CANVAS_API_URL"))
    canvas_api_key: SecretStr | None = Field(None, validation_alias=_env("CANVAS_API_KEY"))
    canvas_course_ids: Annotated[list[int], NoDecode] = []
    canvas_account_id: int = 1
    # role -> section ids of the staff course, e.g. "coach:12,13;teacher:11"
    canvas_role_sections: Annotated[dict[str, list[int]], NoDecode] = {}
    canvas_read_sync: bool = False
    canvas_sync_interval: float = Field(0.5, ge=0)

    secret_key: SecretStr | None = None
    base_url: str = "http://localhost:8000"
    admin_token: SecretStr | None = None  # the dashboard is on only with one of ADMIN_TOKEN_MIN characters
    webhook_max_bytes: int = Field(5_000_000, ge=1_000)  # SendGrid batches are far smaller
    metrics_token: SecretStr | None = None  # when set, /metrics needs "Authorization: Bearer <it>"
    timezone: str = "America/Chicago"
    admin_email: str | None = None
    from_email: str = "nudge@localhost"
    from_name: str = "Policy Nudge"
    reply_to: str | None = None  # where a reader's reply goes (a person), if not to the sender address

    organisation: str = "Staff Guidelines"
    calendar_file: str | None = None  # default: content/calendar.yaml of the project
    dispatch_batch_size: int = Field(500, ge=1, le=1000)
    dispatch_lease_seconds: int = Field(300, ge=1)
    dispatch_max_attempts: int = Field(8, ge=1)
    scanner_cidrs: Annotated[list[str], NoDecode] = []  # e.g. link-protection ranges of a mail filter
    machine_seconds: float = Field(10.0, ge=0)  # opens/clicks sooner than this after delivery are machines
    trust_proxy: bool = False  # take the client IP from X-Forwarded-For (behind a reverse proxy)
    notice_due_days: int = Field(14, ge=1)
    reminder_days: Annotated[list[int], NoDecode] = [7, 2, 0]  # reminders this many days before the due date
    escalation_step_days: int = Field(7, ge=1)  # supervisor -> their supervisor -> admin
    never_engaged_digests: int = Field(4, ge=1)  # K delivered digests without a human signal
    never_engaged_grace_digests: int = Field(2, ge=1)  # after the nudge, before the supervisor hears
    new_hire_days: int = Field(14, ge=0)
    summary_weekday: Literal[WEEKDAYS] = "friday"  # type: ignore[valid-type]
    summary_time: time = time(15, 0)
    retention_days: int = Field(400, ge=30)  # raw events older than this are summed per person and month
    leader_retry_seconds: float = Field(5.0, gt=0)
    dispatch_interval_seconds: float = Field(15.0, gt=0)
    log_format: Literal["text", "json"] = "text"
    tips_per_digest: int = Field(3, ge=1, le=10)
    digest_weekday: Literal[WEEKDAYS] = "monday"  # type: ignore[valid-type]
    # the days reminders, nudges and escalations go out (outside the calendar's breaks)
    school_days: Annotated[list[str], NoDecode] = ["monday", "tuesday", "wednesday", "thursday", "friday"]
    digest_time: time = time(7, 30)

    @field_validator("canvas_course_ids", mode="before")
    @classmethod
    def _split_course_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            for part in parts:
                if not part.isdigit():
                    raise ValueError(f"course id {part!r} is not a number")
            return [int(p) for p in parts]
        return value

    @field_validator("canvas_role_sections", mode="before")
    @classmethod
    def _parse_role_sections(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        mapping: dict[str, list[int]] = {}
        for entry in filter(None, (e.strip() for e in value.split(";"))):
            role, _, ids = entry.partition(":")
            numbers = [i.strip() for i in ids.split(",") if i.strip()]
            if not role.strip() or not numbers or not all(n.isdigit() for n in numbers):
                raise ValueError(f"{entry!r} is not role:section_id,section_id")
            mapping[role.strip().lower()] = [int(n) for n in numbers]
        return mapping

    @field_validator("reminder_days", mode="before")
    @classmethod
    def _split_days(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts):
            raise ValueError(f"{value!r} is not a list of whole days like 7,2,0")
        return sorted({int(p) for p in parts}, reverse=True)

    @field_validator("scanner_cidrs", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        cidrs = [c.strip() for c in value.split(",") if c.strip()]
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR range like 40.92.0.0/15") from None
        return cidrs

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        match = re.match(r"([a-z][a-z0-9]*)(\+[a-z0-9_]+)?://", value)
        if match is None:
            raise ValueError("not a database URL like sqlite:///nudge.db or postgresql+psycopg://host/db")
        backend = match.group(1)
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"{backend!r} databases are not supported: use SQLite or PostgreSQL")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("digest_weekday", "summary_weekday", mode="before")
    @classmethod
    def _lower_weekday(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("school_days", mode="before")
    @classmethod
    def _school_days(cls, value: object) -> object:
        days = [d.strip().lower() for d in value.split(",") if d.strip()] if isinstance(value, str) else value
        unknown = [d for d in days if d not in WEEKDAYS] if isinstance(days, list) else []
        if unknown or not days:
            raise ValueError(f"give weekdays like monday,tuesday (not {', '.join(map(str, unknown)) or 'nothing'})")
        return days

    @model_validator(mode="after")
    def _deployment_secrets(self) -> Settings:
        """A deployment others reach (a base URL that is not this machine) needs real secrets."""
        host = urlsplit(self.base_url).hostname or ""
        if host in LOCAL_HOSTS or host.endswith(".localhost") or not self.secret_key:
            return self
        for key in self.secret_keys:
            if key in PLACEHOLDERS or len(key.encode()) < SECRET_KEY_MIN_BYTES:
                raise ValueError(f"NUDGE_SECRET_KEY: with NUDGE_BASE_URL on {host} every key needs at least "
                                 f"{SECRET_KEY_MIN_BYTES} bytes and no placeholder; make one with "
                                 "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
        if self.admin_token is not None and self.admin_token.get_secret_value() in PLACEHOLDERS:
            raise ValueError("NUDGE_ADMIN_TOKEN: still the placeholder of docker-compose.yml")
        return self

    @property
    def admin_enabled(self) -> bool:
        """An empty or short admin token is as good as none: it turns the dashboard off."""
        return self.admin_token is not None and len(self.admin_token.get_secret_value()) >= ADMIN_TOKEN_MIN

    @property
    def canvas_enabled(self) -> bool:
        return bool(self.canvas_api_url and self.canvas_api_key and self.canvas_course_ids)

    @property
    def secret_keys(self) -> list[str]:
        """Signing keys, newest first: the first signs, all verify (key rotation)."""
        if not self.secret_key:
            return []
        return [k.strip() for k in self.secret_key.get_secret_value().split(",") if k.strip()]


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"NUDGE_{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; raise ConfigError with one clear line on a bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:  # a rule about several settings names them itself
                problems.append(message)
                continue
            field = str(err["loc"][0])
            name = env_name(field) if field in Settings.model_fields else field
            problems.append(f"{name}: {message}")
        raise ConfigError("bad configuration: " + "; ".join(problems)) from None
