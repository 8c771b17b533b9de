"""Throw-away databases for tests: a SQLite file or a fresh database on a local PostgreSQL.

Storage code must behave the same on both backends, so tests that touch SQL run on each.
PostgreSQL being unreachable is a failure, not a skip: a silently skipped backend is how
"works on SQLite" ships to production. Set DEALBOT_SKIP_POSTGRES=1 to opt out knowingly.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

BACKENDS = ("sqlite", "postgresql")

POSTGRES_URL_ENV = "DEALBOT_TEST_POSTGRES_URL"
SKIP_POSTGRES_ENV = "DEALBOT_SKIP_POSTGRES"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def sqlite_url(tmp_path: Path) -> str:
    """Return the URL of a new SQLite file under `tmp_path` (a file, so WAL mode applies)."""
    return f"sqlite:///{tmp_path / 'dealbot.sqlite3'}"


def postgres_admin_url() -> str:
    """Return the URL of the PostgreSQL database the test databases are created from."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def postgres_skipped() -> bool:
    """Return whether the PostgreSQL backend was switched off on purpose for this run."""
    return os.environ.get(SKIP_POSTGRES_ENV, "").strip() in {"1", "true", "yes"}


def _create_database(admin: Engine, name: str) -> str | None:
    """Create database `name`; return why the server could not be reached, or None."""
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        lines = str(error.orig).strip().splitlines()
        return lines[0] if lines else type(error.orig).__name__
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    """Yield the URL of a new, uniquely named PostgreSQL database, dropped afterwards."""
    if postgres_skipped():
        pytest.skip(f"PostgreSQL tests switched off by {SKIP_POSTGRES_ENV}=1")
    admin_url = make_url(postgres_admin_url())
    name = f"dealbot_test_{secrets.token_hex(6)}"
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        unreachable = _create_database(admin, name)
        if unreachable is not None:
            # Failed outside the except block so the report is this message, not a traceback.
            pytest.fail(
                f"PostgreSQL is not reachable at "
                f"{admin_url.render_as_string(hide_password=True)}: {unreachable}\n"
                f"Start it with scripts/ensure-postgres, point {POSTGRES_URL_ENV} at another "
                f"server, or set {SKIP_POSTGRES_ENV}=1 to skip the PostgreSQL tests.",
                pytrace=False,
            )
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            # FORCE ends sessions a failed test left open (PostgreSQL 13+).
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def database_url_for(backend: str, tmp_path: Path) -> Iterator[str]:
    """Yield a throw-away database URL on `backend` ("sqlite" or "postgresql")."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path)
    elif backend == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        raise ValueError(f"unknown database backend {backend!r}; expected one of {BACKENDS}")
