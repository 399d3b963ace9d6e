"""A local double of the Canvas LMS REST API that speaks real HTTP.

It implements exactly the endpoints Policy Nudge calls, with Canvas's JSON
shapes: course get, sections list, discussion topic create (honouring
``is_announcement``, ``delayed_post_at`` and ``specific_sections``; a switch
reproduces Canvas creating an ordinary discussion when the token may not post
announcements), announcements list by ``context_codes``, topic get (with
``as_user_id`` masquerading and per-user ``read_state``) and delete, account
user search, ``Link``-header pagination, Bearer auth (401) and throttling
(403 "Rate Limit Exceeded" with ``X-Rate-Limit-Remaining``/``X-Request-Cost``).

Run alone: ``python -m service.doubles.canvas --port 3031 --token canvas-test``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from service.doubles.http import BackgroundServer, FastHandler

BUCKET_SIZE = 700.0
REQUEST_COST = 50.0


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Topic:
    id: int
    course_id: int
    title: str
    message: str
    is_announcement: bool
    delayed_post_at: datetime | None
    created_at: datetime
    section_ids: list[int]
    read_by: set[int] = field(default_factory=set)

    def to_json(self, base_url: str, for_user: int | None) -> dict[str, Any]:
        posted = self.delayed_post_at or self.created_at
        kind = "announcements" if self.is_announcement else "discussion_topics"
        return {
            "id": self.id,
            "title": self.title,
            "message": self.message,
            "html_url": f"{base_url}/courses/{self.course_id}/{kind}/{self.id}",
            "posted_at": _iso(posted),
            "delayed_post_at": _iso(self.delayed_post_at),
            "last_reply_at": None,
            "is_announcement": self.is_announcement,
            "published": True,
            "locked": False,
            "pinned": False,
            "discussion_type": "side_comment",
            "context_code": f"course_{self.course_id}",
            "is_section_specific": bool(self.section_ids),
            "sections": [{"id": s} for s in self.section_ids],
            "read_state": "read" if for_user in self.read_by else "unread",
            "unread_count": 0,
            "subscribed": False,
            "user_name": "Policy Nudge",
            "subscription_hold": "topic_is_announcement" if self.is_announcement else None,
        }


@dataclass
class CanvasDouble(BackgroundServer):
    token: str = "canvas-test-token"
    host: str = "127.0.0.1"
    port: int = 0
    page_size: int = 10
    courses: dict[int, dict[str, Any]] = field(default_factory=dict)
    sections: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    users: list[dict[str, Any]] = field(default_factory=list)
    topics: dict[int, Topic] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    can_post_announcements: bool = True
    throttle_every: int = 0  # every Nth request answers 403 Rate Limit Exceeded (0: off)
    fail_next: int = 0  # the next N requests answer 500 without doing anything
    fail_after_create: int = 0  # the next N topic creations succeed but answer 500 (the nasty case)
    bucket: float = BUCKET_SIZE  # Canvas's leaky bucket: each request costs, time refills it
    refill_per_second: float = 10_000.0  # effectively unthrottled unless a test lowers it
    calls: int = 0

    def __post_init__(self) -> None:
        BackgroundServer.__init__(self, _Handler, self.host, self.port)
        self.lock = threading.Lock()
        self._next_topic = 1000
        self._last_refill = time.monotonic()

    def add_course(self, course_id: int, name: str = "Faculty & Staff", sections: list[tuple[int, str]] = ()) -> None:
        self.courses[course_id] = {"id": course_id, "name": name, "course_code": f"STAFF-{course_id}",
                                   "account_id": 1, "workflow_state": "available"}
        self.sections[course_id] = [{"id": sid, "name": sname, "course_id": course_id} for sid, sname in sections]

    def add_user(self, user_id: int, email: str, name: str = "", login_id: str | None = None) -> None:
        self.users.append({"id": user_id, "name": name or email, "sortable_name": name or email,
                           "login_id": login_id or email, "email": email})

    def mark_read(self, topic_id: int, user_id: int) -> None:
        self.topics[topic_id].read_by.add(user_id)

    def announcements(self, course_id: int | None = None) -> list[Topic]:
        return [t for t in self.topics.values() if t.is_announcement and (course_id is None or t.course_id == course_id)]

    def discussions(self) -> list[Topic]:
        return [t for t in self.topics.values() if not t.is_announcement]

    def new_topic(self, course_id: int, form: dict[str, Any]) -> Topic:
        with self.lock:
            self._next_topic += 1
            sections = [int(s) for s in str(form.get("specific_sections") or "").split(",") if s.strip().isdigit()]
            topic = Topic(
                id=self._next_topic,
                course_id=course_id,
                title=form.get("title", ""),
                message=form.get("message", ""),
                is_announcement=form.get("is_announcement") == "true" and self.can_post_announcements,
                delayed_post_at=_parse_time(form.get("delayed_post_at")),
                created_at=_now(),
                section_ids=sections,
            )
            self.topics[topic.id] = topic
            return topic


class _Handler(FastHandler):
    @property
    def double(self) -> CanvasDouble:
        return self.server.double  # type: ignore[attr-defined]

    # ---------------------------------------------------------------- plumbing

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8" if not isinstance(payload, bytes) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _paginate(self, items: list[dict[str, Any]], query: list[tuple[str, str]], headers: dict[str, str]) -> None:
        params = dict(query)
        per_page = min(int(params.get("per_page", 10)), self.double.page_size)
        page = int(params.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        base = f"{self.double.url}{urlsplit(self.path).path}"
        kept = [(k, v) for k, v in query if k not in ("page", "per_page")]

        def link(n: int, rel: str) -> str:
            return f'<{base}?{urlencode(kept + [("page", str(n)), ("per_page", str(per_page))])}>; rel="{rel}"'

        links = [link(page, "current"), link(1, "first")]
        if page * per_page < len(items):
            links.append(link(page + 1, "next"))
        headers["Link"] = ", ".join(links)
        self._send(200, chunk, headers)

    def _gate(self) -> dict[str, str] | None:
        """Auth, throttling and injected failures; returns the rate headers, or None if answered."""
        double = self.double
        with double.lock:
            double.calls += 1
            call = double.calls
            now = time.monotonic()
            double.bucket = min(BUCKET_SIZE, double.bucket + (now - double._last_refill) * double.refill_per_second)
            double._last_refill = now
            double.bucket -= REQUEST_COST
            remaining = max(0.0, double.bucket)
        headers = {"X-Rate-Limit-Remaining": f"{remaining:.1f}", "X-Request-Cost": f"{REQUEST_COST:.1f}"}
        if self.headers.get("Authorization") != f"Bearer {double.token}":
            headers["WWW-Authenticate"] = 'Bearer realm="canvas-lms"'
            self._send(401, {"errors": [{"message": "Invalid access token."}]}, headers)
            return None
        if (double.throttle_every and call % double.throttle_every == 0) or double.bucket <= 0:
            headers["X-Rate-Limit-Remaining"] = "0.0"
            self._send(403, b"403 Forbidden (Rate Limit Exceeded)", headers)
            return None
        with double.lock:
            fail = double.fail_next > 0
            double.fail_next -= fail
        if fail:
            self._send(500, {"errors": [{"message": "An error occurred."}]}, headers)
            return None
        return headers

    def _route(self, method: str) -> None:
        split = urlsplit(self.path)
        query = parse_qsl(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True)) if length else {}
        self.double.requests.append((method, split.path, {**dict(query), **form}))
        headers = self._gate()
        if headers is None:
            return
        parts = [p for p in split.path.split("/") if p][2:]  # drop "api", "v1"
        handler = getattr(self, f"_{method.lower()}_{'_'.join(p if not p.isdigit() else 'id' for p in parts)}", None)
        ids = [int(p) for p in parts if p.isdigit()]
        if handler is None:
            self._send(404, {"errors": [{"message": "The specified resource does not exist."}]}, headers)
            return
        handler(ids, query, form, headers)

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")

    def _missing(self, headers: dict[str, str]) -> None:
        self._send(404, {"errors": [{"message": "The specified resource does not exist."}]}, headers)

    # ---------------------------------------------------------------- endpoints

    def _get_courses_id(self, ids, query, form, headers) -> None:
        course = self.double.courses.get(ids[0])
        self._send(200, course, headers) if course else self._missing(headers)

    def _get_courses_id_sections(self, ids, query, form, headers) -> None:
        if ids[0] not in self.double.courses:
            return self._missing(headers)
        self._paginate(self.double.sections[ids[0]], query, headers)

    def _post_courses_id_discussion_topics(self, ids, query, form, headers) -> None:
        if ids[0] not in self.double.courses:
            return self._missing(headers)
        topic = self.double.new_topic(ids[0], form)
        with self.double.lock:
            lie = self.double.fail_after_create > 0
            self.double.fail_after_create -= lie
        if lie:
            return self._send(502, {"errors": [{"message": "Bad gateway"}]}, headers)
        self._send(200, topic.to_json(self.double.url, None), headers)

    def _topic(self, ids) -> Topic | None:
        topic = self.double.topics.get(ids[1])
        return topic if topic and topic.course_id == ids[0] else None

    def _get_courses_id_discussion_topics_id(self, ids, query, form, headers) -> None:
        topic = self._topic(ids)
        if topic is None:
            return self._missing(headers)
        as_user = dict(query).get("as_user_id")
        self._send(200, topic.to_json(self.double.url, int(as_user) if as_user else None), headers)

    def _delete_courses_id_discussion_topics_id(self, ids, query, form, headers) -> None:
        topic = self._topic(ids)
        if topic is None:
            return self._missing(headers)
        del self.double.topics[topic.id]
        self._send(200, topic.to_json(self.double.url, None), headers)

    def _get_announcements(self, ids, query, form, headers) -> None:
        codes = [v for k, v in query if k in ("context_codes[]", "context_codes")]
        params = dict(query)
        start = _parse_time(params.get("start_date")) or datetime.min.replace(tzinfo=UTC)
        end = _parse_time(params.get("end_date")) or datetime.max.replace(tzinfo=UTC)
        if not codes:
            return self._send(400, {"errors": [{"message": "context_codes is required"}]}, headers)
        found = [
            t.to_json(self.double.url, None)
            for t in sorted(self.double.topics.values(), key=lambda t: t.id, reverse=True)
            if t.is_announcement and f"course_{t.course_id}" in codes
            and start <= (t.delayed_post_at or t.created_at) <= end
        ]
        self._paginate(found, query, headers)

    def _get_accounts_id(self, ids, query, form, headers) -> None:
        if ids[0] != 1:
            return self._missing(headers)
        self._send(200, {"id": 1, "name": "School", "workflow_state": "active"}, headers)

    def _get_accounts_id_users(self, ids, query, form, headers) -> None:
        term = dict(query).get("search_term", "").lower()
        found = [u for u in self.double.users if term in u["login_id"].lower() or term in u["email"].lower()
                 or term in u["name"].lower()]
        self._paginate(found, query, headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3031)
    parser.add_argument("--token", default="canvas-test-token")
    parser.add_argument("--course", type=int, action="append", default=[], help="course id to create (repeatable)")
    args = parser.parse_args()
    double = CanvasDouble(token=args.token, host=args.host, port=args.port)
    for course_id in args.course or [101]:
        double.add_course(course_id)
    print(f"Canvas double on {double.url} (token {args.token!r}, courses {sorted(double.courses)}); Ctrl-C stops it",
          flush=True)
    try:
        double.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
