"""Run Alembic migrations from code (``nudge db upgrade``, tests, the demo)."""

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from service.errors import NudgeError
from service.paths import ALEMBIC_INI


def alembic_config(url: str) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def require_current_schema(engine: Engine) -> None:
    """Fail with one clear line when the database is missing tables or behind the code."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        current = current_revision(engine)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
        raise NudgeError(f"cannot open database {where}: {reason}") from None
    head = head_revision()
    if current is None:
        raise NudgeError(f"database {where} is not initialised: run `nudge db upgrade`")
    if current != head:
        raise NudgeError(f"database {where} is at revision {current}, code needs {head}: run `nudge db upgrade`")
