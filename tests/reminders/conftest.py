"""Fixtures for the job tests: a seeded world on SQLite (PostgreSQL where it matters)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.fake_slack import FakeSlackWebAPI
from tests.databases import BACKENDS, database_url_for, sqlite_url
from tests.reminders.world import World, build_world


@pytest.fixture
def world(tmp_path: Path, slack_api: FakeSlackWebAPI) -> Iterator[World]:
    built = build_world(sqlite_url(tmp_path), slack_api)
    try:
        yield built
    finally:
        built.database.dispose()


@pytest.fixture
def lenient_world(tmp_path: Path, slack_api_lenient: FakeSlackWebAPI) -> Iterator[World]:
    built = build_world(sqlite_url(tmp_path), slack_api_lenient)
    try:
        yield built
    finally:
        built.database.dispose()


@pytest.fixture(params=BACKENDS)
def any_world(
    request: pytest.FixtureRequest, tmp_path: Path, slack_api: FakeSlackWebAPI
) -> Iterator[World]:
    """A seeded world on each backend, for jobs whose claims and caches live in SQL."""
    with database_url_for(request.param, tmp_path) as url:
        built = build_world(url, slack_api)
        try:
            yield built
        finally:
            built.database.dispose()
