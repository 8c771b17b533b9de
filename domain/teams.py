"""Teams: a channel, managers, reps, a timezone and quotas per rep and period."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from domain.clock import Clock, ZoneCache
from domain.deals import Actor
from domain.errors import InvalidChange, NotAllowed, Person, TeamNotFound
from domain.money import Money
from domain.views import QuotaView, TeamView
from storage.database import Database
from storage.deals import name_key
from storage.models import Quota, Team, TeamMember
from storage.teams import TeamRepository


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
        """Return the team and the users newly added in `role` (already-members are skipped).

        A manager may add to their own team only people on no team, and only as reps;
        naming managers and taking people from another team are an admin's. Everyone
        named is checked before anyone is added, so a refusal writes nothing.
        """
        wanted = tuple(dict.fromkeys(user_ids))
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._find(teams, name)
            admin = actor.is_admin  # asked only when the rule needs it: it may ask Slack
            if not (self._manages(team, actor) or admin()):
                raise NotAllowed(f"Only {team.name}'s managers or a workspace admin can change it.")
            if role == "manager" and not admin():
                raise NotAllowed(
                    "Only a workspace admin can name managers; a manager adds reps.",
                    f"/dealbot team add {_as_typed(team.name)} rep @someone",
                )
            present = {(m.user_id, m.role) for m in team.members}
            added = [user_id for user_id in wanted if (user_id, role) not in present]
            memberships = teams.memberships_of(added)
            for user_id in added:
                elsewhere = [m for m in memberships.get(user_id, ()) if m.team_id != team.id]
                if role == "rep" and any(m.role == "rep" for m in elsewhere):
                    other = next(m for m in elsewhere if m.role == "rep").team.name
                    raise InvalidChange(
                        (
                            Person(user_id),
                            f" is already a rep in {other}, and a rep is on one team only; "
                            "an admin can move them.",
                        ),
                        ("/dealbot team move ", Person(user_id), f" {_as_typed(team.name)}"),
                    )
                if memberships.get(user_id) and not admin():
                    other = memberships[user_id][0].team.name
                    raise NotAllowed(
                        (
                            Person(user_id),
                            f" is already on {other}; a manager adds only people on no team, "
                            "and an admin can move them.",
                        ),
                        ("/dealbot team move ", Person(user_id), f" {_as_typed(team.name)}"),
                    )
            for user_id in added:
                team.members.append(TeamMember(user_id=user_id, role=role))
            session.flush()
            self.zones.clear()
            return _team_view(team), tuple(added)

    def remove_member(self, actor: Actor, *, name: str, user_id: str) -> TeamView:
        """Return the team without this user (in every role); only admins remove people."""
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._find(teams, name)
            if not actor.is_admin():
                raise NotAllowed("Only a workspace admin can remove people from a team.")
            leaving = [m for m in team.members if m.user_id == user_id]
            if not leaving:
                raise InvalidChange(
                    (Person(user_id), f" is not on {team.name}."),
                    f"/dealbot team show {_as_typed(team.name)}",
                )
            for membership in leaving:
                team.members.remove(membership)
            session.flush()
            self.zones.clear()
            return _team_view(team)

    def move_member(self, actor: Actor, *, user_id: str, name: str) -> TeamView:
        """Return the team this user now belongs to, in the roles they had (a rep if none).

        Only admins move people: the user leaves every other team.
        """
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._find(teams, name)
            if not actor.is_admin():
                raise NotAllowed("Only a workspace admin can move people between teams.")
            memberships = teams.memberships_of([user_id]).get(user_id, [])
            roles = {m.role for m in memberships} or {"rep"}
            for membership in memberships:
                if membership.team_id != team.id:
                    session.delete(membership)
            # The old rep row must be gone before the new one: one team per rep is a
            # unique index, checked row by row.
            session.flush()
            present = {m.role for m in team.members if m.user_id == user_id}
            for role in sorted(roles - present):
                team.members.append(TeamMember(user_id=user_id, role=role))
            session.flush()
            session.refresh(team)
            self.zones.clear()
            return _team_view(team)

    def list_teams(self) -> tuple[TeamView, ...]:
        """Return every team, by name."""
        with self.database.session() as session:
            return tuple(_team_view(team) for team in TeamRepository(session).all())

    def set_quota(
        self, actor: Actor, *, name: str, user_id: str, amount: Money, period: str
    ) -> TeamView:
        """Return the team with the rep's quota for `period` set (replacing an earlier one)."""
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._team_for_change(teams, actor, name)
            if not any(m.user_id == user_id and m.role == "rep" for m in team.members):
                raise InvalidChange(
                    (Person(user_id), f" is not a rep in {team.name}."),
                    (f"/dealbot team add {team.name} rep ", Person(user_id)),
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
    def _find(teams: TeamRepository, name: str) -> Team:
        """Return the named team, or refuse with how to create it."""
        team = teams.by_name(name)
        if team is None:
            raise TeamNotFound(
                f"There is no team called “{name}”.",
                f"/dealbot team create {name} #sales tz:America/New_York",
            )
        return team

    @staticmethod
    def _manages(team: Team, actor: Actor) -> bool:
        """Return whether the actor is one of this team's managers."""
        return any(m.user_id == actor.user_id and m.role == "manager" for m in team.members)

    def _team_for_change(self, teams: TeamRepository, actor: Actor, name: str) -> Team:
        """Return the named team if the actor manages it or is an admin."""
        team = self._find(teams, name)
        if not self._manages(team, actor) and not actor.is_admin():
            raise NotAllowed(f"Only {team.name}'s managers or a workspace admin can change it.")
        return team


def _as_typed(name: str) -> str:
    """Return a team name as a command takes it: quoted when it has spaces."""
    return f'"{name}"' if " " in name else name


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
