"""Learned stage limits kept per team (0013): replaced at once, read by a rep's membership."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from alembic import command
from sqlalchemy import event, inspect, text
from sqlalchemy.orm import Session

from storage.database import Database, create_db_engine
from storage.migrate import alembic_config, upgrade
from storage.models import Team, TeamMember
from storage.stage_limits import StageLimit, StageLimitRepository

MONDAY = dt.date(2026, 11, 23)


def _team(session: Session, name: str, *members: tuple[str, str]) -> Team:
    team = Team(
        name=name, name_key=name.lower(), channel_id="C1", timezone="UTC", created_by="UADMIN"
    )
    team.members = [TeamMember(user_id=user, role=role) for user, role in members]
    session.add(team)
    session.flush()
    return team


def test_0013_adds_the_table_keeps_teams_and_goes_with_a_deleted_team(database_url: str) -> None:
    upgrade(database_url, "0012")
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO teams (id, name, name_key, channel_id, timezone, created_by, "
                    "created_at) VALUES (1, 'East', 'east', 'C1', 'UTC', 'U0ROOT', :at)"
                ),
                {"at": "2026-11-23 10:00:00+00:00"},
            )
        upgrade(database_url)
        assert "team_stage_limits" in inspect(engine).get_table_names()
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO team_stage_limits (team_id, stage, days, learned_on, won_deals) "
                    "VALUES (1, 'discovery', 8, :on, 5)"
                ),
                {"on": MONDAY},
            )
        with Database.from_url(database_url).session() as session:
            assert StageLimitRepository(session).for_team(1) == (
                StageLimit(stage="discovery", days=8, learned_on=MONDAY, won_deals=5),
            )
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM teams WHERE id = 1"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM team_stage_limits")).scalar() == 0

        command.downgrade(alembic_config(database_url), "0012")
        assert "team_stage_limits" not in inspect(engine).get_table_names()
        assert "teams" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_saving_replaces_the_teams_limits_and_leaves_other_teams_alone(
    database: Database,
) -> None:
    with database.session() as session:
        east = _team(session, "East", ("U0ANA", "rep")).id
        west = _team(session, "West", ("U0WES", "rep")).id
        limits = StageLimitRepository(session)
        limits.save_for_team(
            east,
            [("discovery", 8), ("demo", 12)],
            learned_on=MONDAY,
            won_deals={"discovery": 5, "demo": 7},
        )
        limits.save_for_team(west, [("demo", 20)], learned_on=MONDAY, won_deals={"demo": 6})
    later = MONDAY + dt.timedelta(days=7)
    with database.session() as session:
        # A week later East has learned only discovery's: demo's old limit must not linger.
        StageLimitRepository(session).save_for_team(
            east, [("discovery", 9)], learned_on=later, won_deals={"discovery": 6}
        )
    with database.session() as session:
        limits = StageLimitRepository(session)
        assert limits.for_team(east) == (
            StageLimit(stage="discovery", days=9, learned_on=later, won_deals=6),
        )
        assert limits.for_team(west) == (
            StageLimit(stage="demo", days=20, learned_on=MONDAY, won_deals=6),
        )
        # Too few won deals to learn from any more: nothing kept, the file's limits stand.
        limits.save_for_team(east, [], learned_on=later, won_deals={})
    with database.session() as session:
        assert StageLimitRepository(session).for_team(east) == ()
        assert StageLimitRepository(session).for_team(west) != ()


def test_an_owner_reads_their_teams_limits_as_a_rep_in_one_statement(
    database: Database,
) -> None:
    with database.session() as session:
        east = _team(session, "East", ("U0ANA", "rep"), ("U0BEN", "rep"), ("U0MARIA", "manager"))
        _team(session, "Paris", ("U0PIERRE", "rep"), ("U0ANA", "manager"))
        StageLimitRepository(session).save_for_team(
            east.id,
            [("discovery", 8), ("demo", 12)],
            learned_on=MONDAY,
            won_deals={"discovery": 5, "demo": 5},
        )

    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    with database.session() as session:
        limits = StageLimitRepository(session)
        event.listen(database.engine, "before_cursor_execute", count)
        try:
            by_owner = limits.for_owners(["U0ANA", "U0BEN", "U0MARIA", "U0PIERRE", "U0CARL"])
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
        # Ana manages Paris too, but her deals are East's; Maria only manages East (a
        # manager's own deals are not the team's); Pierre's team learned nothing; Carl is
        # on no team.
        assert by_owner == {
            "U0ANA": {"discovery": 8, "demo": 12},
            "U0BEN": {"discovery": 8, "demo": 12},
        }
        assert len(statements) == 1
        assert limits.for_owner("U0BEN") == {"discovery": 8, "demo": 12}
        assert limits.for_owner("U0PIERRE") == {}
        assert limits.for_owners([]) == {}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_jobs_saving_one_team_at_once_both_succeed_the_last_one_kept(
    database: Database,
) -> None:
    # The post and the chase may learn the same team at the same moment: without the lock on
    # the team's row, the second delete misses the first's new rows and its insert breaks
    # the primary key.
    with database.session() as session:
        east = _team(session, "East", ("U0ANA", "rep")).id
    later = MONDAY + dt.timedelta(days=7)
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with database.session() as session:
                StageLimitRepository(session).save_for_team(
                    east, [("discovery", 9)], learned_on=later, won_deals={"discovery": 6}
                )
        except BaseException as error:  # reported to the test's thread below
            errors.append(error)

    with database.session() as session:
        StageLimitRepository(session).save_for_team(
            east, [("discovery", 8)], learned_on=MONDAY, won_deals={"discovery": 5}
        )
        waiting = threading.Thread(target=second)
        waiting.start()
        waiting.join(timeout=1)
        # The second save waits on the team's row until this transaction commits.
        assert waiting.is_alive()
    waiting.join(timeout=10)
    assert not waiting.is_alive() and errors == []
    with database.session() as session:
        assert StageLimitRepository(session).for_team(east) == (
            StageLimit(stage="discovery", days=9, learned_on=later, won_deals=6),
        )
