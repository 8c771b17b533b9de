"""Deal owners' Slack timezones, cached for a day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from storage.database import dialect_insert
from storage.models import Deal, RepZone, Team, TeamMember


class RepZoneRepository:
    """Deal owners and the timezone each one's Slack profile gave (cached for a day)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def stale_owners(self, *, fetched_before: dt.datetime, closed_since: dt.datetime) -> list[str]:
        """Return the owners in scope whose Slack zone is unknown or was fetched before then."""
        owners = _active_owners(closed_since)
        statement = (
            select(owners.c.owner_id)
            .outerjoin(RepZone, RepZone.user_id == owners.c.owner_id)
            .where(or_(RepZone.fetched_at.is_(None), RepZone.fetched_at <= fetched_before))
            .order_by(owners.c.owner_id)
        )
        return list(self.session.scalars(statement))

    def save(self, user_id: str, *, tz: str | None, at: dt.datetime) -> None:
        """Remember the zone Slack gave for `user_id` (None: it gave none) as of `at`."""
        values = {"user_id": user_id, "tz": tz, "fetched_at": at}
        table = RepZone.__table__
        statement = (
            dialect_insert(self.session, table)
            .values(values)
            .on_conflict_do_update(index_elements=["user_id"], set_={"tz": tz, "fetched_at": at})
        )
        self.session.execute(statement)

    def owner_timezones(
        self, *, default_timezone: str, closed_since: dt.datetime
    ) -> list[tuple[str, str]]:
        """Return (owner id, zone) for every owner of an open deal or one closed since then.

        The zone is the owner's Slack profile's, else their team's (as a rep first), else
        `default_timezone`: a rep who logs deals before anyone builds a team still has one.
        """
        owners = _active_owners(closed_since)
        team_of = (
            select(
                TeamMember.user_id,
                func.coalesce(
                    func.min(case((TeamMember.role == "rep", TeamMember.team_id))),
                    func.min(TeamMember.team_id),
                ).label("team_id"),
            )
            .group_by(TeamMember.user_id)
            .subquery()
        )
        statement = (
            select(owners.c.owner_id, RepZone.tz, Team.timezone)
            .outerjoin(RepZone, RepZone.user_id == owners.c.owner_id)
            .outerjoin(team_of, team_of.c.user_id == owners.c.owner_id)
            .outerjoin(Team, Team.id == team_of.c.team_id)
            .order_by(owners.c.owner_id)
        )
        return [
            (owner, own or team or default_timezone)
            for owner, own, team in self.session.execute(statement)
        ]


def _active_owners(closed_since: dt.datetime) -> Any:
    """Return a subquery of the owners of open deals and of deals closed since then."""
    return (
        select(Deal.owner_id)
        .where(or_(Deal.status == "open", Deal.closed_at >= closed_since), Deal.is_live())
        .distinct()
        .subquery()
    )
