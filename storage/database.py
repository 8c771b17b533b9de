"""Engine and session factory; SQLite gets WAL and foreign keys, PostgreSQL a sane pool."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """Return the URL with the psycopg 3 driver for plain postgres:// or postgresql:// URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def dialect_insert(session: Session, table: Any) -> Any:
    """Return an INSERT into `table` in this session's dialect, which has ON CONFLICT clauses."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignoring_conflicts(session: Session, table: Any, key: list[str]) -> Any:
    """Return an INSERT … ON CONFLICT (key) DO NOTHING for this session's dialect."""
    return dialect_insert(session, table).on_conflict_do_nothing(index_elements=key)


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (slash commands) run while a job writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _use_utc_sessions(dbapi_connection: Any, _record: Any) -> None:
    # Every timestamp dealbot stores is UTC, whatever the server's default zone: in a UTC
    # session psycopg reads them as datetime.timezone.utc ones, which need no conversion
    # (under a named zone, each timestamp a job reads is converted to it and back).
    # Committed: a SET in a transaction rolled back later would be undone.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Return an engine for `url` configured for concurrent use by web threads and jobs."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _enable_sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _use_utc_sessions)
    return engine


class Database:
    """Owns the engine and hands out sessions that commit on success and roll back on error."""

    def __init__(self, *, engine: Engine, connection: Connection | None = None) -> None:
        self.engine = engine
        # On a caller's connection, sessions join its transaction: their commits leave it
        # open and their rollbacks roll all of it back (see `one_transaction`).
        self._sessions = sessionmaker(
            connection or engine, expire_on_commit=False, join_transaction_mode="rollback_only"
        )

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(engine=create_db_engine(url))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def one_transaction(self, *, commit: bool = True) -> Iterator[Database]:
        """Yield a Database whose sessions all share one transaction.

        It commits when the block ends, unless `commit` is False; an error anywhere rolls
        back everything written through it. Domain calls that each open their own session
        (create a deal, then close it) become one all-or-nothing unit this way.
        """
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                yield Database(engine=self.engine, connection=connection)
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                raise
            if not transaction.is_active:
                # A session rolled it back and the error was swallowed inside the block.
                if commit:
                    raise RuntimeError("one_transaction: rolled back by an error caught inside")
            elif commit:
                transaction.commit()
            else:
                transaction.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
