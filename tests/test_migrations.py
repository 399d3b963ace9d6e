from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.db import make_engine
from service.errors import NudgeError
from service.db.migrate import current_revision, head_revision, require_current_schema
from service.models import Base


def test_migrations_produce_exactly_the_models_schema(engine) -> None:
    """The session's database was built by the Alembic migrations alone."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    assert current_revision(engine) == head_revision()


def test_an_unmigrated_database_gets_a_clear_message(tmp_path) -> None:
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        require_current_schema(empty)
    except NudgeError as exc:
        assert "not initialised: run `nudge db upgrade`" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected NudgeError")
    finally:
        empty.dispose()


def test_migrations_downgrade_and_upgrade_again(tmp_path) -> None:
    from alembic import command

    from service.db.migrate import alembic_config, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    upgrade(engine)
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()
