"""Teams: a channel, managers, reps, a timezone and quotas per rep and period."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from domain.clock import Clock, ZoneCache
from domain.deals import Actor
from domain.errors import InvalidChange, NotAllowed, TeamNotFound
from domain.money import Money
from domain.views import QuotaView, TeamView
from storage.database import Database
from storage.models import Quota, Team, TeamMember
from storage.repositories import TeamRepository, name_key


class TeamService:
    def __init__(
        self,
        *,
        database: Database,
        clock: Clock,
        default_timezone: str,
        zones: ZoneCache | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.default_timezone = default_timezone
        # Shared with DealService: membership decides a user's "today".
        self.zones = zones or ZoneCache()

    def create_team(
        self, actor: Actor, *, name: str, channel_id: str, timezone: str | None
    ) -> TeamView:
        """Return the new team; only admins create teams."""
        if not actor.is_admin():
            raise NotAllowed("Only a workspace admin can create teams.")
        with self.database.session() as session:
            teams = TeamRepository(session)
            if teams.by_name(name) is not None:
                raise InvalidChange(
                    f"A team called “{name}” already exists.", f"/dealbot team show {name}"
                )
            team = teams.add(
                Team(
                    name=name,
                    name_key=name_key(name),
                    channel_id=channel_id,
                    timezone=timezone or self.default_timezone,
                    created_by=actor.user_id,
                    created_at=self.clock.now(),
                )
            )
            return _team_view(team)

    def add_members(
        self, actor: Actor, *, name: str, role: str, user_ids: Iterable[str]
    ) -> tuple[TeamView, tuple[str, ...]]:
        """Return the team and the users newly added in `role` (already-members are skipped)."""
        with self.database.session() as session:
            team = self._team_for_change(TeamRepository(session), actor, name)
            present = {(m.user_id, m.role) for m in team.members}
            added: list[str] = []
            for user_id in dict.fromkeys(user_ids):
                if (user_id, role) not in present:
                    team.members.append(TeamMember(user_id=user_id, role=role))
                    added.append(user_id)
            session.flush()
            self.zones.clear()
            return _team_view(team), tuple(added)

    def set_quota(
        self, actor: Actor, *, name: str, user_id: str, amount: Money, period: str
    ) -> TeamView:
        """Return the team with the rep's quota for `period` set (replacing an earlier one)."""
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._team_for_change(teams, actor, name)
            if not any(m.user_id == user_id and m.role == "rep" for m in team.members):
                raise InvalidChange(
                    f"<@{user_id}> is not a rep in {team.name}.",
                    f"/dealbot team add {team.name} rep <@{user_id}>",
                )
            quota = teams.quota_for(team, user_id, period)
            if quota is None:
                team.quotas.append(
                    Quota(
                        user_id=user_id,
                        period=period,
                        amount=amount.amount,
                        currency=amount.currency,
                    )
                )
            else:
                quota.amount = amount.amount
                quota.currency = amount.currency
            session.flush()
            return _team_view(team)

    def show_teams(self, actor: Actor, name: str | None) -> tuple[TeamView, ...]:
        """Return the named team, or the teams the actor is in (all teams for admins)."""
        with self.database.session() as session:
            teams = TeamRepository(session)
            if name:
                team = teams.by_name(name)
                if team is None:
                    raise TeamNotFound(
                        f"There is no team called “{name}”.", "/dealbot team show lists them."
                    )
                return (_team_view(team),)
            mine = teams.teams_of(actor.user_id)
            if mine:
                return tuple(_team_view(team) for team in mine)
            return tuple(_team_view(team) for team in teams.all())

    @staticmethod
    def _team_for_change(teams: TeamRepository, actor: Actor, name: str) -> Team:
        team = teams.by_name(name)
        if team is None:
            raise TeamNotFound(
                f"There is no team called “{name}”.",
                f"/dealbot team create {name} #sales tz:America/New_York",
            )
        is_manager = any(m.user_id == actor.user_id and m.role == "manager" for m in team.members)
        if not is_manager and not actor.is_admin():
            raise NotAllowed(f"Only {team.name}'s managers or a workspace admin can change it.")
        return team


def _team_view(team: Team) -> TeamView:
    return TeamView(
        id=team.id,
        name=team.name,
        channel_id=team.channel_id,
        timezone=team.timezone,
        managers=tuple(m.user_id for m in team.members if m.role == "manager"),
        reps=tuple(m.user_id for m in team.members if m.role == "rep"),
        quotas=tuple(
            QuotaView(
                user_id=q.user_id, period=q.period, amount=Money(Decimal(q.amount), q.currency)
            )
            for q in team.quotas
        ),
    )
