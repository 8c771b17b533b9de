"""The stage limits each team's won deals taught STALLED_IN_STAGE, as the jobs last learned them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import Team, TeamMember, TeamStageLimit


@dataclass(frozen=True)
class StageLimit:
    """One learned limit: days a deal may sit in `stage`, from `won_deals` won deals."""

    stage: str
    days: int
    learned_on: dt.date
    won_deals: int


class StageLimitRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def save_for_team(
        self,
        team_id: int,
        limits: Iterable[tuple[str, int]],
        *,
        learned_on: dt.date,
        won_deals: Mapping[str, int],
    ) -> None:
        """Replace the team's limits with `limits` (stage, days), in the caller's transaction.

        An empty `limits` leaves the team with none: the file's limits then stand, as they do
        in the jobs when too few deals were won to learn from.
        """
        # The team's row is locked first: two jobs learning the same team at once (the post
        # and the chase) would otherwise both delete, then both insert, and the second insert
        # would break the primary key. SQLite serialises writers anyway and ignores the lock.
        self.session.execute(select(Team.id).where(Team.id == team_id).with_for_update())
        self.session.execute(delete(TeamStageLimit).where(TeamStageLimit.team_id == team_id))
        self.session.add_all(
            TeamStageLimit(
                team_id=team_id,
                stage=stage,
                days=days,
                learned_on=learned_on,
                won_deals=won_deals.get(stage, 0),
            )
            for stage, days in limits
        )
        self.session.flush()

    def for_team(self, team_id: int) -> tuple[StageLimit, ...]:
        """Return the team's stored limits, by stage key; empty if none were learned yet."""
        rows = self.session.scalars(
            select(TeamStageLimit)
            .where(TeamStageLimit.team_id == team_id)
            .order_by(TeamStageLimit.stage)
        )
        return tuple(_limit(row) for row in rows)

    def for_owner(self, owner_id: str) -> dict[str, int]:
        """Return stage -> days for the team `owner_id` is a rep on; empty if none (or no team)."""
        return self.for_owners([owner_id]).get(owner_id, {})

    def for_owners(self, owner_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """Return, for each of these owners whose team has limits, stage -> days: one read.

        A rep is on at most one team (uq_team_members_one_team_per_rep), so each owner has
        one set of limits. The read goes by team_members' (user_id, role) index, then the
        limits' primary key (team_id, stage).
        """
        owners = sorted(set(owner_ids))
        if not owners:
            return {}
        rows = self.session.execute(
            select(TeamMember.user_id, TeamStageLimit.stage, TeamStageLimit.days)
            .join(TeamStageLimit, TeamStageLimit.team_id == TeamMember.team_id)
            .where(TeamMember.user_id.in_(owners), TeamMember.role == "rep")
        )
        limits: dict[str, dict[str, int]] = {}
        for user_id, stage, days in rows:
            limits.setdefault(user_id, {})[stage] = days
        return limits


def _limit(row: TeamStageLimit) -> StageLimit:
    return StageLimit(
        stage=row.stage, days=row.days, learned_on=row.learned_on, won_deals=row.won_deals
    )
