"""Test database: NUDGE_TEST_DATABASE_URL (PostgreSQL in CI's second run), else a temp SQLite file.

The schema is built once per run by the real Alembic migrations; each test starts
from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from service.config import Settings, load_settings
from service.db import make_engine, make_sessionmaker
from service.db.migrate import upgrade
from service.models import Base

REPO = Path(__file__).resolve().parent.parent
POLICY_DAY = datetime(2026, 1, 5, tzinfo=UTC)  # the seed policy's and the sample roster's import


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("NUDGE_TEST_DATABASE_URL", "")
    if url in ("", "sqlite://", "sqlite:///:memory:"):
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    yield engine
    engine.dispose()


def _empty_tables(engine: Engine) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in tables)
            conn.execute(text("SET LOCAL lock_timeout = '30s'"))  # a session a test left open fails loudly
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def clean_db(engine: Engine) -> Iterator[Engine]:
    _empty_tables(engine)
    yield engine
    _empty_tables(engine)


@pytest.fixture
def session(clean_db: Engine) -> Iterator[Session]:
    factory = make_sessionmaker(clean_db)
    with factory() as session:
        yield session
        session.rollback()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(database_url=database_url, outbox_dir=str(tmp_path / "outbox"))


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, clean_db: Engine, database_url: str, tmp_path: Path) -> Path:
    """Environment for running `nudge` against the clean test database."""
    monkeypatch.setenv("NUDGE_DATABASE_URL", database_url)
    monkeypatch.setenv("NUDGE_OUTBOX_DIR", str(tmp_path / "outbox"))
    return tmp_path


@pytest.fixture
def factory(clean_db: Engine):
    return make_sessionmaker(clean_db)


@pytest.fixture
def loaded(factory) -> None:
    """The default content pack, version 1 of its policy (tips are sent only against a text
    that holds their quotes) and the 40-person sample roster, committed. The roster is imported on
    the day the policy is (not today), so no test's week finds its people new hires as the real
    date moves on."""
    load_policy(factory)
    from service.roster import import_roster

    with factory() as s, s.begin():
        import_roster(s, REPO / "content" / "sample_roster.csv", now=POLICY_DAY)


def load_policy(factory, version: str = "1") -> None:
    with factory() as s, s.begin():
        store_policy(s, version)


def store_policy(session, version: str = "1") -> None:
    """The shipped tip pack and a version of the seed policy, as `nudge policy import` and
    `nudge content import` store them (tips are sent only against a text that holds their quotes)."""
    from service.content import import_pack, import_version

    import_version(session, REPO / "content" / "policies" / f"social-media-v{version}.txt", slug="social-media",
                   label=version, title="Social Media Best Practices", now=POLICY_DAY)
    import_pack(session, REPO / "content" / "social_media.yaml")


@pytest.fixture
def sendgrid_double():
    from service.doubles.sendgrid import SendGridDouble

    with SendGridDouble() as double:
        yield double


@pytest.fixture
def sendgrid_settings(settings: Settings, sendgrid_double) -> Settings:
    return settings.model_copy(
        update={
            "email_backend": "sendgrid",
            "sendgrid_host": sendgrid_double.url,
            "sendgrid_api_key": SecretStr(sendgrid_double.api_key),
        }
    )


def add_people(factory, count: int, role: str = "teacher", prefix: str = "p") -> None:
    """Bulk-create ``count`` active people (no supervisor) quickly."""
    from service.models import Person, utcnow

    now = utcnow()
    rows = [
        {"email": f"{prefix}{i:06d}@example.org", "name": f"Person {i}", "role": role, "active": True,
         "joined_at": now, "updated_at": now}
        for i in range(count)
    ]
    with factory() as s, s.begin():
        s.execute(Person.__table__.insert(), rows)


class LiveServer:
    """Runs an ASGI app with uvicorn in a thread on a free port (real HTTP for tests)."""

    def __init__(self, app) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        import time

        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def web_settings(settings: Settings, sendgrid_double) -> Settings:
    return settings.model_copy(update={
        "secret_key": SecretStr("new-key,old-key"),
        "sendgrid_webhook_public_key": sendgrid_double.public_key,
        "base_url": "http://nudge.test",
    })


@pytest.fixture
def live(factory, web_settings):
    from service.web.app import create_app

    with LiveServer(create_app(web_settings, factory)) as server:
        yield server
