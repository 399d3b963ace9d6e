"""A SQLite database locked by another process never keeps a reader waiting: a click redirects at
once and is written once the lock is gone, an acknowledgement answers 503 within two seconds,
and /healthz says the database is degraded. (SQLite only: PostgreSQL has no database-wide lock.)"""

import re
import sqlite3
import time

import httpx
import pytest
from sqlalchemy import func, select

from service.models import Acknowledgement, EngagementEvent
from tests.test_webhook import delivered  # noqa: F401 - digests sent through SendGrid's double


@pytest.fixture
def locked(database_url, factory):
    """Hold SQLite's write lock from another connection, as a long import in another process would."""
    if not database_url.startswith("sqlite"):
        pytest.skip("one lock for the whole database is SQLite's")
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None, timeout=1)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


def links(sendgrid_double) -> tuple[str, str]:
    html = sendgrid_double.emails[0].html
    return re.search(r'href="([^"]*/c/[^"]+)"', html).group(1), re.search(r'href="([^"]*/ack/[^"]+)"', html).group(1)


def test_readers_never_wait_on_a_locked_database(factory, live, sendgrid_double, delivered, locked) -> None:  # noqa: F811
    click, ack = (url.replace("http://nudge.test", live.url) for url in links(sendgrid_double))
    agent = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0"}
    started = time.monotonic()
    answer = httpx.get(click, headers=agent, follow_redirects=False)
    assert answer.status_code == 302 and time.monotonic() - started < 1.0
    started = time.monotonic()
    answer = httpx.post(ack, headers=agent)
    assert answer.status_code == 503 and "try again" in answer.text and time.monotonic() - started < 3.0
    started = time.monotonic()
    health = httpx.get(f"{live.url}/healthz").json()
    assert health == {"status": "degraded", "database": "locked"} and time.monotonic() - started < 2.0

    locked.execute("ROLLBACK")  # the other process finishes
    locked.execute("BEGIN")  # (the fixture's teardown rolls this one back)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with factory() as s:
            clicks = s.scalar(select(func.count()).select_from(EngagementEvent).where(EngagementEvent.kind == "click"))
        if clicks:
            break
        time.sleep(0.2)
    assert clicks == 1  # the click was kept and written once the lock was gone
    assert httpx.post(ack, headers=agent).status_code == 200
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Acknowledgement)) == 1
    assert httpx.get(f"{live.url}/healthz").json()["status"] == "ok"
