"""Engine set-up: SQLite's WAL and foreign keys, URL normalisation, sessions that roll back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from storage.database import Database, normalize_url
from storage.migrate import upgrade
from storage.models import NextStep, Team, TeamMember
from tests.databases import sqlite_url


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    url = sqlite_url(tmp_path)
    upgrade(url)
    db = Database.from_url(url)
    yield db
    db.dispose()


def _team(**overrides: Any) -> Team:
    values: dict[str, Any] = {
        "name": "West",
        "name_key": "west",
        "channel_id": "C0WEST",
        "timezone": "America/Los_Angeles",
        "created_by": "UADMIN",
    }
    values.update(overrides)
    return Team(**values)


def test_sqlite_file_database_is_in_wal_mode(sqlite_database: Database) -> None:
    with sqlite_database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_sqlite_deleting_a_team_cascades_to_its_members(sqlite_database: Database) -> None:
    with sqlite_database.session() as session:
        team = _team()
        team.members = [TeamMember(user_id="UREP", role="rep")]
        session.add(team)
        session.flush()
        team_id = team.id

    # A Core DELETE bypasses the ORM cascade, so only the database's ON DELETE CASCADE
    # (which SQLite ignores unless foreign keys are on) can remove the members.
    with sqlite_database.session() as session:
        session.execute(text("DELETE FROM teams WHERE id = :id"), {"id": team_id})

    with sqlite_database.session() as session:
        assert session.scalar(select(func.count()).select_from(TeamMember)) == 0


def test_sqlite_next_step_for_a_missing_deal_is_refused(sqlite_database: Database) -> None:
    with pytest.raises(IntegrityError), sqlite_database.session() as session:
        session.add(NextStep(deal_id=4242, what="Send the proposal", created_by="UREP"))
        session.flush()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://bob:pw@db:5432/sales", "postgresql+psycopg://bob:pw@db:5432/sales"),
        ("postgresql://bob:pw@db:5432/sales", "postgresql+psycopg://bob:pw@db:5432/sales"),
        ("postgresql+psycopg://db/sales", "postgresql+psycopg://db/sales"),
        ("sqlite:///dealbot.sqlite3", "sqlite:///dealbot.sqlite3"),
    ],
)
def test_normalize_url_picks_the_psycopg_driver(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_a_session_that_raises_writes_nothing(database: Database) -> None:
    with pytest.raises(RuntimeError, match="slack timed out"), database.session() as session:
        session.add(_team())
        session.flush()  # the row reaches the database inside the transaction...
        raise RuntimeError("slack timed out")

    # ...and is gone once the session has rolled back.
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Team)) == 0


def test_regression_sqlite_dropped_timezone_offsets_and_read_back_naive_datetimes(
    database: Database,
) -> None:
    # 09:00 in New York is 14:00 UTC; SQLite used to store "09:00" and hand back a naive 09:00.
    created_at = dt.datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    with database.session() as session:
        team = _team(created_at=created_at)
        session.add(team)
        session.flush()
        team_id = team.id

    with database.session() as session:
        stored = session.scalar(select(Team.created_at).where(Team.id == team_id))

    assert stored == created_at
    assert stored is not None and stored.utcoffset() == dt.timedelta(0)


def test_naive_datetimes_are_refused_rather_than_guessed(database: Database) -> None:
    with pytest.raises(StatementError, match="timezone-aware"), database.session() as session:
        session.add(_team(created_at=dt.datetime(2026, 11, 23, 9, 0)))
        session.flush()


def test_timestamps_read_back_as_utc_whatever_the_stored_text_or_session_zone(
    database: Database,
) -> None:
    with database.session() as session:
        team = _team()
        session.add(team)
        session.flush()
        team_id = team.id
    postgresql = database.engine.dialect.name == "postgresql"
    if postgresql:
        # dealbot's sessions are in UTC, whatever the server's default zone.
        with database.engine.connect() as connection:
            assert connection.scalar(text("SHOW TIME ZONE")) == "UTC"
            assert connection.scalar(text("SELECT now()")).tzinfo is dt.UTC
    # SQLite: text another writer may have left (no fraction, a "T", an offset of its own).
    # PostgreSQL: read in a session zone other than the UTC dealbot sets.
    stored_texts = (
        ["2026-11-23 09:00:00-05:00"]
        if postgresql
        else ["2026-11-23 14:00:00", "2026-11-23T14:00:00", "2026-11-23 15:00:00+01:00"]
    )
    expected = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)
    for stored_text in stored_texts:
        with database.session() as session:
            session.execute(
                text("UPDATE teams SET created_at = :at WHERE id = :id"),
                {"at": stored_text, "id": team_id},
            )
            if postgresql:
                session.execute(text("SET LOCAL TIME ZONE 'America/New_York'"))
            stored = session.scalar(select(Team.created_at).where(Team.id == team_id))
        assert stored == expected
        assert stored is not None and stored.tzinfo is dt.UTC
