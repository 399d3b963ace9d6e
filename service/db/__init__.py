"""Engine and session helpers. Sessions are passed explicitly to domain code."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, Integer, any_, bindparam, case, create_engine, event, func, literal_column, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


SQLITE_BUSY_SECONDS = 30  # how long a SQLite connection waits for a lock, unless a web request says less
SHORTENED = "nudge_busy_timeout_shortened"  # connection-record flag: restore the wait at the next checkout
SECOND_LANE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="second-lane")  # see side_by_side
First = TypeVar("First")
Second = TypeVar("Second")


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets foreign keys, a busy timeout and WAL; PostgreSQL runs without
    JIT compilation (it spent 100-200 ms compiling each report query that then ran in less), in
    UTC (psycopg then returns timestamps as aware UTC values: no conversion per value), with 32 MB
    to sort or hash in (the default 4 MB sent a district's grouping of 100,000 people to disk).
    psycopg prepares none of our statements, so each is planned for its own parameters (a prepared
    statement's generic plan treats the head of a district, 100,000 people below, like a lead of
    19), while the database's own cached plans stay generic: forcing custom plans server-wide
    re-planned every foreign-key check: two thirds of writing a week's digest items (17.7 -> 6.0 s)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            if parsed.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @event.listens_for(engine, "checkout")
        def _restore_busy_timeout(dbapi_conn, record, _proxy):  # only after shorten_sqlite_wait
            if record.info.pop(SHORTENED, False):
                dbapi_conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")

        return engine
    if parsed.get_backend_name() == "postgresql" and "options" not in parsed.query:
        options = "-c jit=off -c timezone=UTC -c work_mem=32MB"
        kwargs["connect_args"] = {"options": options, "prepare_threshold": None,
                                  **dict(kwargs.get("connect_args") or {})}
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], *, dry_run: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on error (and always on a dry run)."""
    with factory() as session:
        if dry_run:
            try:
                yield session
            finally:
                session.rollback()
        else:
            with session.begin():
                yield session


def shorten_sqlite_wait(session: Session, wait_ms: int) -> None:
    """Let this session's SQLite connection wait at most ``wait_ms`` for a lock (a reader's request must
    not wait the engine's half minute); the pool restores the usual wait when the connection is next
    checked out. Nothing on PostgreSQL."""
    if is_postgres(session):
        return
    pooled = session.connection().connection
    pooled.driver_connection.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
    pooled.info[SHORTENED] = True


def sqlite_write_locked(session: Session, wait_ms: int) -> bool:
    """Whether another process holds SQLite's write lock for longer than ``wait_ms`` (PostgreSQL: never
    one lock for the whole database). Takes the lock for an instant and gives it back."""
    if is_postgres(session):
        return False
    shorten_sqlite_wait(session, wait_ms)
    raw = session.connection().connection.driver_connection
    if raw.in_transaction:
        return False
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    raw.execute("ROLLBACK")
    return False


def side_by_side(session: Session, first: Callable[[Session], First], second: Callable[[Session], Second]
                 ) -> tuple[First, Second]:
    """Two independent reads: ``first`` in ``session`` and, on PostgreSQL, ``second`` at the same
    time in a session of its own, because a district head's figures wait on statements of 50-150 ms
    each and the database has a core to spare; on SQLite (one writer, short reads) both in
    ``session``, one after the other. Read committed gives each statement its own snapshot anyway,
    so two transactions read no less consistently than one; neither read may need what ``session``
    has written and not yet committed."""
    if not is_postgres(session):
        return first(session), second(session)

    def read() -> Second:
        with Session(session.get_bind()) as other:
            return second(other)

    pending = SECOND_LANE.submit(read)
    return first(session), pending.result()


def is_postgres(bind: Session | Engine | Connection) -> bool:
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name == "postgresql"


def in_ids(session: Session | Connection, column: Any, ids: Collection[int]) -> ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL one array parameter (``= ANY``) instead of one per id,
    which spares the driver and the planner most of the work for batches of thousands."""
    if is_postgres(session):
        return column == any_(bindparam(None, list(ids), type_=postgresql.ARRAY(Integer)))
    return column.in_(ids)


def insert_ignore(
    session: Session, model: Any, rows: list[dict[str, Any]], conflict: list[str], returning: Any = None
) -> list[Any]:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL; returns what was inserted.

    Idempotency lives in the database: a duplicate (by the ``conflict`` unique
    key) is skipped, even when two workers race.
    """
    if not rows:
        return []
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    columns = returning if returning is not None else (model.__mapper__.primary_key[0],)
    inserted: list[Any] = []
    for start in range(0, len(rows), 5000):
        statement = insert(model).on_conflict_do_nothing(index_elements=conflict).returning(*columns)
        inserted.extend(session.execute(statement, rows[start : start + 5000]).all())
    return inserted


BULK_ROWS = 10_000


def refresh_statistics(session: Session, *tables: str) -> None:
    """ANALYZE tables a bulk write just changed (PostgreSQL; counts this transaction's rows too).

    Autovacuum gets there within a minute, but the dispatcher starts at once: on stale
    statistics the planner sorts every due row instead of walking the claim index.
    """
    if is_postgres(session):
        for table in tables:
            session.execute(text(f"ANALYZE {table}"))


def bulk_insert(session: Session, table: Any, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Write many rows in one go: COPY on PostgreSQL, a Core executemany elsewhere."""
    if is_postgres(session):
        copy_rows(session, table.name, columns, [tuple(row[c] for c in columns) for row in rows])
    else:
        session.connection().execute(table.insert(), rows)


def upsert_adding(session: Session, model: Any, rows: list[dict[str, Any]], conflict: list[str], column: str,
                  *, latest: str | None = None) -> None:
    """INSERT, or add the row's ``column`` to the stored one when the ``conflict`` key exists
    (and keep the later of the two ``latest`` values)."""
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    statement = insert(model)
    changes = {column: getattr(model, column) + getattr(statement.excluded, column)}
    if latest is not None:
        stored, new = getattr(model, latest), getattr(statement.excluded, latest)
        changes[latest] = case((stored.is_(None), new), (new > stored, new), else_=stored)
    statement = statement.on_conflict_do_update(index_elements=conflict, set_=changes)
    session.execute(statement, rows)


def month_of(session: Session, column: Any) -> ColumnElement[str]:
    """A timestamp's month as text, "2026-09"."""
    return func.to_char(column, "YYYY-MM") if is_postgres(session) else func.strftime("%Y-%m", column)


def copy_rows(session: Session, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL COPY of many rows in one stream: the fastest way to write bulk data."""
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """SQL: how many rows of a group meet ``condition``."""
    return func.sum(case((condition, 1), else_=0))


# written out, not a bound parameter, so the planner can use ix_deliveries_notice_person
NOTICE_ROWS = literal_column("deliveries.kind") == literal_column("'notice'")
