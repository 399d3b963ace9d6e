"""Canvas LMS channel: course announcements through the official ``canvasapi`` library.

:class:`CanvasAPI` is a thin adapter and the only code that imports canvasapi;
it returns small dataclasses and turns Canvas's errors into three kinds:
configuration errors (401, 404, forbidden: the channel pauses, email goes on),
throttling (403 "Rate Limit Exceeded" or 429: wait and retry, and slow down
before the bucket runs dry) and temporary failures (5xx, timeouts).

:class:`CanvasChannel` posts each message exactly once: it first looks for
the message's marker (its outbox key, written into the post) among the
course's recent announcements, so a crash between Canvas accepting a post and
our commit never double-posts. After creating, it checks that Canvas really
made an announcement (a token without that permission silently gets an
ordinary discussion): if not, it deletes the topic and pauses the channel.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import requests
from canvasapi import Canvas
from canvasapi.course import Course
from canvasapi.exceptions import (
    CanvasException,
    Forbidden,
    InvalidAccessToken,
    RateLimitExceeded,
    ResourceDoesNotExist,
    Unauthorized,
)

from service.channels.base import Message, Result, unsendable
from service.config import ConfigError, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class CanvasConfigError(Exception):
    """Canvas refused us in a way only an admin can fix (token, course id, permissions)."""


class CanvasUnavailable(Exception):
    """Canvas did not answer usefully for now (5xx, timeouts, throttled past our patience)."""


@dataclass(frozen=True)
class CanvasTopic:
    id: int
    title: str
    message: str
    is_announcement: bool
    html_url: str
    read_state: str | None = None


@dataclass(frozen=True)
class CanvasSection:
    id: int
    name: str


@dataclass(frozen=True)
class CanvasUser:
    id: int
    name: str
    login_id: str
    email: str


def _topic(raw: Any) -> CanvasTopic:
    html_url = getattr(raw, "html_url", "") or ""
    flag = getattr(raw, "is_announcement", None)
    is_announcement = bool(flag) if flag is not None else "/announcements/" in html_url
    return CanvasTopic(int(raw.id), getattr(raw, "title", "") or "", getattr(raw, "message", "") or "",
                       is_announcement, html_url, getattr(raw, "read_state", None))


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


class CanvasAPI:
    """What Policy Nudge needs from Canvas, with throttling and error handling built in."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        retries: int = 6,
        backoff_seconds: float = 1.0,
        low_water: float = 150.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # canvasapi warns on http:// (the local double)
            self._canvas = Canvas(url, key)
        self._requester = self._canvas._Canvas__requester  # type: ignore[attr-defined]
        self._requester._session = _TimeoutSession(timeout)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.low_water = low_water
        self.sleep = sleep
        self.calls = 0
        self.throttled = 0

    # ------------------------------------------------------------ error policy

    def _remaining(self) -> float | None:
        cache = getattr(self._requester, "_cache", None)
        if not cache:
            return None
        try:
            return float(cache[0].headers.get("X-Rate-Limit-Remaining"))
        except (TypeError, ValueError):
            return None

    def _call(self, what: str, fn: Callable[[], T], *, idempotent: bool = True,
              missing: str | None = None, setting: str = "NUDGE_CANVAS_COURSE_IDS") -> T:
        """Run one API call: wait out throttling, retry temporary failures if safe to repeat."""
        for attempt in range(self.retries + 1):
            remaining = self._remaining()
            if remaining is not None and remaining < self.low_water:
                self.sleep(self.backoff_seconds)  # slow down before the bucket runs dry
            self.calls += 1
            try:
                return fn()
            except RateLimitExceeded:
                self.throttled += 1
            except Forbidden as exc:
                if "rate limit exceeded" not in str(exc).lower():
                    raise CanvasConfigError(f"Canvas forbids {what}: the token lacks permission") from None
                self.throttled += 1
            except (InvalidAccessToken, Unauthorized):
                raise CanvasConfigError("Canvas rejected CANVAS_API_KEY (401): check the token") from None
            except ResourceDoesNotExist:
                raise CanvasConfigError(f"Canvas could not find {missing or what} (404): check {setting}") from None
            except (CanvasException, requests.RequestException) as exc:
                if not idempotent:
                    raise CanvasUnavailable(f"Canvas failed during {what}: {exc}") from None
                if attempt == self.retries:
                    raise CanvasUnavailable(f"Canvas unavailable for {what}: {exc}") from None
            self.sleep(self.backoff_seconds * 2**attempt)
        raise CanvasUnavailable(f"Canvas kept throttling {what}; will retry later")

    # ------------------------------------------------------------ operations

    def _course(self, course_id: int) -> Course:
        """A course handle without a round trip (a wrong id still surfaces as 404 on use)."""
        return Course(self._requester, {"id": course_id})

    def course_name(self, course_id: int) -> str:
        return self._call(f"course {course_id}", lambda: self._canvas.get_course(course_id)).name

    def sections(self, course_id: int) -> list[CanvasSection]:
        def fetch() -> list[CanvasSection]:
            course = self._canvas.get_course(course_id)
            return [CanvasSection(int(s.id), s.name) for s in course.get_sections()]

        return self._call(f"the sections of course {course_id}", fetch)

    def announcements(self, course_id: int, start: datetime, end: datetime) -> list[CanvasTopic]:
        def fetch() -> list[CanvasTopic]:
            found = self._canvas.get_announcements(
                context_codes=[f"course_{course_id}"], start_date=start, end_date=end
            )
            return [_topic(t) for t in found]

        return self._call(f"the announcements of course {course_id}", fetch)

    def create_announcement(
        self, course_id: int, title: str, html: str, post_at: datetime | None, section_ids: list[int]
    ) -> CanvasTopic:
        params: dict[str, Any] = {"title": title, "message": html, "is_announcement": True}
        if post_at is not None:
            params["delayed_post_at"] = post_at
        if section_ids:
            params["specific_sections"] = ",".join(str(s) for s in section_ids)
        course = self._course(course_id)
        # not idempotent: a failure after Canvas accepted the post must not post again here;
        # the channel's marker check handles the retry
        raw = self._call(f"an announcement in course {course_id}",
                         lambda: course.create_discussion_topic(**params), idempotent=False,
                         missing=f"course {course_id}")
        return _topic(raw)

    def delete_topic(self, course_id: int, topic_id: int) -> None:
        self._call(f"topic {topic_id} of course {course_id}",
                   lambda: self._course(course_id).get_discussion_topic(topic_id).delete())

    def read_state(self, course_id: int, topic_id: int, as_user_id: int) -> str | None:
        def fetch() -> str | None:
            topic = self._course(course_id).get_discussion_topic(topic_id, as_user_id=as_user_id)
            return getattr(topic, "read_state", None)

        return self._call(f"topic {topic_id} as user {as_user_id} (masquerading)", fetch)

    def find_users(self, account_id: int, term: str) -> list[CanvasUser]:
        def fetch() -> list[CanvasUser]:
            account = self._canvas.get_account(account_id)
            return [
                CanvasUser(int(u.id), getattr(u, "name", ""), getattr(u, "login_id", "") or "",
                           getattr(u, "email", "") or "")
                for u in account.get_users(search_term=term)
            ]

        return self._call(f"users of account {account_id}", fetch, setting="NUDGE_CANVAS_ACCOUNT_ID")


def api_from_settings(settings: Settings, **kwargs: Any) -> CanvasAPI:
    if not (settings.canvas_api_url and settings.canvas_api_key):
        raise ConfigError("CANVAS_API_URL and CANVAS_API_KEY: both are needed for Canvas")
    return CanvasAPI(settings.canvas_api_url, settings.canvas_api_key.get_secret_value(), **kwargs)


class CanvasChannel:
    name = "canvas"

    def __init__(self, settings: Settings, api: CanvasAPI | None = None):
        self.api = api or api_from_settings(settings)

    def send(self, messages: list[Message]) -> list[Result]:
        results: list[Result] = []
        paused: str | None = None
        for message in messages:
            if paused:
                results.append(Result.paused(paused))
                continue
            try:
                results.append(self._post(message))
            except CanvasConfigError as exc:
                paused = str(exc)
                results.append(Result.paused(paused))
            except CanvasUnavailable as exc:
                results.append(Result.retry(str(exc)))
            except Exception as exc:  # noqa: BLE001 - one bad post never stops the batch
                results.append(unsendable(message, exc))
        return results

    def _post(self, message: Message) -> Result:
        options = message.options
        course_id, marker = int(options["course_id"]), options["marker"]
        for topic in self.api.announcements(course_id, options["search_from"], options["search_to"]):
            if marker in topic.message:
                log.info("canvas: %s already posted as topic %s; not posting again", marker, topic.id)
                return Result.sent(str(topic.id))
        topic = self.api.create_announcement(
            course_id, message.subject, message.html, options.get("post_at"), list(options.get("section_ids") or [])
        )
        if not topic.is_announcement:
            try:
                self.api.delete_topic(course_id, topic.id)
                cleanup = "it was deleted"
            except (CanvasConfigError, CanvasUnavailable):
                cleanup = f"delete topic {topic.id} by hand"
            raise CanvasConfigError(
                f"the Canvas token may not post announcements in course {course_id}: Canvas created an "
                f"ordinary discussion instead ({cleanup}); give the token's user a teacher or admin role"
            )
        return Result.sent(str(topic.id))

    def close(self) -> None:
        pass
