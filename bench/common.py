"""Shared set-up for the benchmarks."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402

from service.db import make_engine  # noqa: E402
from service.db.migrate import upgrade  # noqa: E402
from service.models import Base  # noqa: E402


def fresh_database(url: str) -> Engine:
    """An empty database at ``url`` with the schema built by the migrations."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        Base.metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    upgrade(engine)
    return engine


def load_content(factory, now) -> None:
    """The seed policy (version 1), then the tip pack: a tip is sendable only where the policy
    text has its quotes, as after `nudge db upgrade`."""
    from service.content import import_pack, import_version
    from service.paths import CONTENT_DIR

    with factory() as s, s.begin():
        import_version(s, CONTENT_DIR / "policies" / "social-media-v1.txt", slug="social-media", label="1",
                       title="Social Media Best Practices", now=now)
        import_pack(s, CONTENT_DIR / "social_media.yaml")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")
