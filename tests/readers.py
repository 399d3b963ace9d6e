"""Readers who act only through the real doors: the open pixel, tracked links, the acknowledge
page's button, the quick check's answer page and SendGrid's signed webhook, against a live server whose clock the test moves.

Tests that need engagement use these instead of writing events or aggregates themselves.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from service.doubles.sendgrid import ReceivedEmail, SendGridDouble

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
# a mail gateway that follows links before delivery, announcing an old Office client, not a browser
GATEWAY = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"


class Clock:
    """The moment the live server stamps on every signal; tests move it."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Links:
    pixel: str | None
    clicks: list[str]
    ack: str | None
    options: list[str]  # a quick check's answers, in order


def links_in(received: ReceivedEmail) -> Links:
    html = received.html
    pixel = re.search(r'src="([^"]*/o/[^"]+\.gif)"', html)
    ack = re.search(r'href="([^"]*/ack/[^"]+)"', html)
    return Links(pixel.group(1) if pixel else None, re.findall(r'href="([^"]*/c/[^"]+)"', html),
                 ack.group(1) if ack else None, re.findall(r'href="([^"]*/q/[^"]+)"', html))


class Readers:
    """Acts on emails the SendGrid double received, at moments the test chooses."""

    def __init__(self, live, clock: Clock, sendgrid: SendGridDouble, base_url: str):
        self.live, self.clock, self.sendgrid, self.base_url = live, clock, sendgrid, base_url
        self.http = httpx.Client(timeout=30, follow_redirects=False)
        self.seen = 0

    def fresh(self) -> list[ReceivedEmail]:
        """Emails that arrived since the last call."""
        emails = self.sendgrid.emails[self.seen:]
        self.seen = len(self.sendgrid.emails)
        return emails

    def _url(self, url: str) -> str:
        return url.replace(self.base_url, self.live.url)

    def at(self, moment: datetime) -> Readers:
        self.clock.now = moment
        return self

    def open(self, received: ReceivedEmail, agent: str = CHROME) -> None:
        found = links_in(received).pixel
        assert found, f"no pixel in {received.subject!r}"
        assert self.http.get(self._url(found), headers={"User-Agent": agent}).status_code == 200
        self.live.app.state.opens.flush()  # opens are written in batches

    def click(self, received: ReceivedEmail, index: int = 0, agent: str = CHROME) -> None:
        found = links_in(received).clicks
        answer = self.http.get(self._url(found[index]), headers={"User-Agent": agent})
        assert answer.status_code == 302, answer.status_code

    def burst(self, received: ReceivedEmail, indexes: list[int], agent: str, *, gap: timedelta) -> None:
        """A scanner: several clicks on the message's links, ``gap`` apart (repeats allowed)."""
        for index in indexes:
            self.click(received, index, agent)
            self.clock.now += gap

    def acknowledge(self, received: ReceivedEmail, agent: str = CHROME) -> None:
        found = links_in(received).ack
        assert found, f"no acknowledge link in {received.subject!r}"
        url = self._url(found)
        assert self.http.get(url, headers={"User-Agent": agent}).status_code == 200  # the page, then its button
        answer = self.http.post(url, headers={"User-Agent": agent})
        assert answer.status_code == 200, answer.status_code

    def webhook(self, events: list[dict], *, at: datetime) -> dict:
        status, body = self.sendgrid.post_events(f"{self.live.url}/webhooks/sendgrid", events,
                                                 timestamp=int(at.timestamp()))
        assert status == 200, body
        return body

    def close(self) -> None:
        self.http.close()


class Doors:
    """The same doors on an in-process client, for emails the outbox channel wrote to its folder."""

    def __init__(self, settings, factory):
        from fastapi.testclient import TestClient

        from service.web.app import create_app

        self.clock = Clock(datetime.now(UTC))
        self.app = create_app(settings, factory, clock=self.clock)
        self.client = TestClient(self.app, follow_redirects=False)
        self.folder = Path(settings.outbox_dir)

    def links(self, kind: str, delivery_id: int) -> Links:
        raw = (self.folder / kind / f"{delivery_id:08d}.eml").read_bytes()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        html = message.get_body(("html",)).get_content()
        return links_in(ReceivedEmail("", "", None, "", "", html, {}, [], {}))

    def open(self, kind: str, delivery_id: int, at: datetime, agent: str = CHROME) -> None:
        self.clock.now = at
        assert self.client.get(self.links(kind, delivery_id).pixel, headers={"User-Agent": agent}).status_code == 200
        self.app.state.opens.flush()  # opens are written in batches

    def click(self, kind: str, delivery_id: int, at: datetime, agent: str = CHROME, index: int = 0) -> None:
        self.clock.now = at
        url = self.links(kind, delivery_id).clicks[index]
        assert self.client.get(url, headers={"User-Agent": agent}).status_code == 302

    def acknowledge(self, kind: str, delivery_id: int, at: datetime, agent: str = CHROME) -> None:
        self.clock.now = at
        url = self.links(kind, delivery_id).ack
        assert self.client.post(url, headers={"User-Agent": agent}).status_code == 200

    def answer(self, delivery_id: int, at: datetime, option: int, agent: str = CHROME):
        """Tap an option of the digest's quick check (the page), then press "Check my answer"."""
        self.clock.now = at
        url = self.links("digest", delivery_id).options[option]
        assert self.client.get(url, headers={"User-Agent": agent}).status_code == 200
        answer = self.client.post(url, data={"choice": str(option)}, headers={"User-Agent": agent})
        assert answer.status_code == 200, answer.status_code
        return answer
