"""A rep is on at most one team, enforced by the database itself, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.clock import FixedClock
from domain.deals import Actor
from domain.teams import TeamService
from storage.database import Database
from storage.migrate import upgrade
from storage.models import Team, TeamMember


def _team(session: Session, name: str) -> Team:
    team = Team(
        name=name, name_key=name.lower(), channel_id="C1", timezone="UTC", created_by="UADMIN"
    )
    session.add(team)
    session.flush()
    return team


def test_the_database_refuses_a_rep_on_two_teams(database: Database) -> None:
    # Bug: nothing stopped a rep from being on two teams (two pipelines, two accuracy posts).
    with pytest.raises(IntegrityError), database.session() as session:
        east, west = _team(session, "East"), _team(session, "West")
        session.add_all(
            [
                TeamMember(team_id=east.id, user_id="UREP", role="rep"),
                TeamMember(team_id=west.id, user_id="UREP", role="rep"),
            ]
        )
        session.flush()


def test_a_manager_may_run_two_teams(database: Database) -> None:
    with database.session() as session:
        east, west = _team(session, "East"), _team(session, "West")
        session.add_all(
            [
                TeamMember(team_id=east.id, user_id="UBOSS", role="manager"),
                TeamMember(team_id=west.id, user_id="UBOSS", role="manager"),
            ]
        )


def test_moving_a_rep_keeps_them_on_exactly_one_team(database: Database) -> None:
    teams = TeamService(
        database=database,
        clock=FixedClock(at=dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC)),
        default_timezone="UTC",
    )
    admin = Actor("UADMIN", is_admin=lambda: True)
    with database.session() as session:
        east = _team(session, "East")
        _team(session, "West")
        session.add(TeamMember(team_id=east.id, user_id="UREP", role="rep"))

    west = teams.move_member(admin, user_id="UREP", name="West")

    assert west.reps == ("UREP",)
    [east] = teams.show_teams(admin, "East")
    assert east.team.reps == () and east.reps == ()


def test_the_migration_keeps_each_reps_oldest_team(database_url: str) -> None:
    upgrade(database_url, "0004")
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            for team_id, name in ((1, "East"), (2, "West")):
                connection.execute(
                    text(
                        "INSERT INTO teams (id, name, name_key, channel_id, timezone, "
                        "created_by, created_at) VALUES (:id, :name, :key, 'C1', 'UTC', "
                        "'UADMIN', '2026-11-23 10:00:00+00:00')"
                    ),
                    {"id": team_id, "name": name, "key": name.lower()},
                )
            rows = [
                (1, 1, "UANA", "rep"),
                (2, 2, "UANA", "rep"),  # added later to a second team: dropped
                (3, 2, "UBOSS", "manager"),
                (4, 1, "UBOSS", "manager"),  # managers may run several teams: kept
                (5, 2, "UBEN", "rep"),
            ]
            for row_id, team_id, user_id, role in rows:
                connection.execute(
                    text(
                        "INSERT INTO team_members (id, team_id, user_id, role) "
                        "VALUES (:id, :team, :user, :role)"
                    ),
                    {"id": row_id, "team": team_id, "user": user_id, "role": role},
                )

        upgrade(database_url)

        with engine.connect() as connection:
            kept = connection.execute(text("SELECT id FROM team_members ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [row_id for (row_id,) in kept] == [1, 3, 4, 5]
