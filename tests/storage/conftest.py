"""Storage fixtures: every test asking for a database runs once per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.database import Database
from storage.migrate import upgrade
from tests.databases import BACKENDS, database_url_for


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty throw-away database on each backend in turn."""
    with database_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """Yield a Database on a schema built by the migrations (not create_all), as in production."""
    upgrade(database_url)
    db = Database.from_url(database_url)
    try:
        yield db
    finally:
        # Pooled connections would block DROP DATABASE and leak file handles on SQLite.
        db.dispose()
