"""Teams, their members and quotas, and the timezone a user's team keeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, selectinload

from storage.deals import name_key
from storage.models import Deal, Quota, Team, TeamMember


@dataclass(frozen=True, kw_only=True)
class WonDeal:
    """A deal won in a period: what attainment adds up, with what to name it by if excluded."""

    id: int
    owner_id: str
    account: str
    title: str | None
    amount: Decimal | None
    currency: str
    close_date: dt.date | None = None
    closed_at: dt.datetime | None = None

    def rate_day(self, zone: dt.tzinfo) -> dt.date:
        """Return the day whose exchange rate the deal converts at: its close date.

        A won deal's close date is the day it closed; one without (an old row) falls back
        to when it was closed, as a day in `zone`, the team's.
        """
        if self.close_date is not None:
            return self.close_date
        if self.closed_at is None:
            raise ValueError(f"won deal {self.id} has neither a close date nor a closed time")
        closed = self.closed_at
        if closed.tzinfo is None:  # SQLite hands back UTC without saying so
            closed = closed.replace(tzinfo=dt.UTC)
        return closed.astimezone(zone).date()


@cache
def _timezone_statement() -> Select[tuple[str]]:
    return (
        select(Team.timezone)
        .join(TeamMember)
        .where(TeamMember.user_id == bindparam("user_id"))
        .order_by(Team.id)
        .limit(1)
    )


class TeamRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_name(self, name: str) -> Team | None:
        statement = (
            select(Team)
            .where(Team.name_key == name_key(name))
            .options(selectinload(Team.members), selectinload(Team.quotas))
        )
        return self.session.scalars(statement).first()

    def all(self) -> Sequence[Team]:
        statement = (
            select(Team)
            .options(selectinload(Team.members), selectinload(Team.quotas))
            .order_by(Team.name_key)
        )
        return self.session.scalars(statement).all()

    def add(self, team: Team) -> Team:
        self.session.add(team)
        self.session.flush()
        return team

    def teams_of(self, user_id: str, role: str | None = None) -> Sequence[Team]:
        """Return the teams where this user is a member (in `role`, when given)."""
        membership = select(TeamMember.team_id).where(TeamMember.user_id == user_id)
        if role is not None:
            membership = membership.where(TeamMember.role == role)
        statement = (
            select(Team)
            .where(Team.id.in_(membership))
            .options(selectinload(Team.members), selectinload(Team.quotas))
            .order_by(Team.name_key)
        )
        return self.session.scalars(statement).all()

    def memberships_of(self, user_ids: Sequence[str]) -> dict[str, list[TeamMember]]:
        """Return each user's team memberships (with their team), oldest first, in one query."""
        if not user_ids:
            return {}
        statement = (
            select(TeamMember)
            .where(TeamMember.user_id.in_(list(user_ids)))
            .options(selectinload(TeamMember.team))
            .order_by(TeamMember.id)
        )
        found: dict[str, list[TeamMember]] = {}
        for membership in self.session.scalars(statement):
            found.setdefault(membership.user_id, []).append(membership)
        return found

    def reps_managed_by(self, manager_id: str) -> set[str]:
        """Return the reps in every team this user manages."""
        managed_teams = select(TeamMember.team_id).where(
            TeamMember.user_id == manager_id, TeamMember.role == "manager"
        )
        statement = select(TeamMember.user_id).where(
            TeamMember.team_id.in_(managed_teams), TeamMember.role == "rep"
        )
        return set(self.session.scalars(statement))

    def timezone_of(self, user_id: str) -> str | None:
        """Return the timezone of the first team this user belongs to, if any."""
        # Every command asks this for "today": a statement built once, run as Core on the
        # session's connection (which does not autoflush: flush team changes before asking).
        result = self.session.connection().execute(_timezone_statement(), {"user_id": user_id})
        return result.scalar()

    def team_stages_of(self, deal_ids: Sequence[int]) -> dict[int, str]:
        """Return the team stage (`<team key>:<stage key>`) of those deals that have one."""
        if not deal_ids:
            return {}
        statement = select(Deal.id, Deal.team_stage).where(
            Deal.id.in_(list(deal_ids)), Deal.team_stage.is_not(None)
        )
        return {row.id: row.team_stage for row in self.session.execute(statement)}

    def quota_for(self, team: Team, user_id: str, period: str) -> Quota | None:
        return next((q for q in team.quotas if q.user_id == user_id and q.period == period), None)

    def won_between(
        self, owner_ids: Sequence[str], *, start: dt.datetime, end: dt.datetime
    ) -> list[WonDeal]:
        """Return the live deals these owners won with `start <= closed_at < end`, by id.

        Half-open bounds, so a deal closed on the stroke of midnight between two quarters
        counts in exactly one of them; deleted (or merged) deals count in none.
        """
        if not owner_ids:
            return []
        statement = (
            select(
                Deal.id,
                Deal.owner_id,
                Deal.account,
                Deal.title,
                Deal.amount,
                Deal.currency,
                Deal.close_date,
                Deal.closed_at,
            )
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                Deal.status == "won",
                Deal.closed_at >= start,
                Deal.closed_at < end,
                Deal.is_live(),
            )
            .order_by(Deal.id)
        )
        return [
            WonDeal(
                id=row.id,
                owner_id=row.owner_id,
                account=row.account,
                title=row.title,
                amount=row.amount,
                currency=row.currency,
                close_date=row.close_date,
                closed_at=row.closed_at,
            )
            for row in self.session.execute(statement)
        ]
