"""The few queries the domain needs, each a set-based statement; no SQL lives elsewhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session, selectinload

from storage.models import Deal, DealChange, NextStep, PostMortem, Quota, Team, TeamMember

# How many candidates an ambiguous reference offers; more than this is a prompt to type more.
MAX_CANDIDATES = 5
# Ids are INTEGER columns: 32-bit signed on PostgreSQL, the narrowest backend.
MAX_ROW_ID = 2**31 - 1


def name_key(text: str) -> str:
    """Return the case- and space-insensitive key that deal and team lookups compare."""
    return " ".join(text.casefold().split())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class DealRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, deal_id: int) -> Deal | None:
        """Return the deal with this id, or None; an id past the column's range names none."""
        # `#10^30` typed by a rep, or forged into a button, would overflow the driver.
        if not 0 < deal_id <= MAX_ROW_ID:
            return None
        return self.session.get(Deal, deal_id)

    def add(self, deal: Deal) -> Deal:
        self.session.add(deal)
        self.session.flush()
        return deal

    def by_external_ref(self, external_ref: str) -> Deal | None:
        """Return the deal imported from this source record, if any."""
        return self.session.scalars(select(Deal).where(Deal.external_ref == external_ref)).first()

    def by_account_and_title(self, account: str, title: str | None) -> list[Deal]:
        """Return the deals with exactly this account and title (case and spaces aside)."""
        title_matches = (
            Deal.title_key.is_(None) if title is None else Deal.title_key == name_key(title)
        )
        statement = (
            select(Deal)
            .where(Deal.account_key == name_key(account), title_matches)
            .order_by(Deal.id)
            .limit(MAX_CANDIDATES + 1)
        )
        return list(self.session.scalars(statement))

    def find_by_reference(self, text: str) -> list[Deal]:
        """Return deals whose account or title is `text`, else those starting with it.

        Open deals win over closed ones, so "Initech" finds this year's open deal rather
        than asking about last year's lost one.
        """
        key = name_key(text)
        exact = self._matching(or_(Deal.account_key == key, Deal.title_key == key))
        if exact:
            return exact
        prefix = _escape_like(key) + "%"
        return self._matching(
            or_(
                Deal.account_key.like(prefix, escape="\\"),
                Deal.title_key.like(prefix, escape="\\"),
            )
        )

    def _matching(self, condition: object) -> list[Deal]:
        statement = (
            select(Deal)
            .where(condition)  # type: ignore[arg-type]
            .order_by((Deal.status == "open").desc(), Deal.account_key, Deal.id)
            .limit(MAX_CANDIDATES * 4)
        )
        deals = list(self.session.scalars(statement))
        open_deals = [deal for deal in deals if deal.status == "open"]
        return (open_deals or deals)[: MAX_CANDIDATES + 1]

    def record_change(
        self,
        deal: Deal,
        *,
        field: str,
        old: str | None,
        new: str | None,
        by: str,
        at: dt.datetime,
    ) -> None:
        deal.changes.append(
            DealChange(field=field, old_value=old, new_value=new, changed_by=by, changed_at=at)
        )

    def add_post_mortem(self, post_mortem: PostMortem) -> None:
        self.session.add(post_mortem)
        self.session.flush()

    def open_next_steps_overdue_for(self, owner_id: str, today: dt.date) -> Sequence[NextStep]:
        """Return open next steps this user owns (or whose deal they own) due before today."""
        statement = (
            select(NextStep)
            .join(Deal)
            .where(
                NextStep.done.is_(False),
                NextStep.due_date < today,
                Deal.status == "open",
                or_(
                    NextStep.owner_id == owner_id,
                    and_(NextStep.owner_id.is_(None), Deal.owner_id == owner_id),
                ),
            )
            .options(selectinload(NextStep.deal))
            .order_by(NextStep.due_date)
        )
        return self.session.scalars(statement).all()


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

    def quota_for(self, team: Team, user_id: str, period: str) -> Quota | None:
        return next((q for q in team.quotas if q.user_id == user_id and q.period == period), None)
