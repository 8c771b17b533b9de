"""Weekly snapshots of open deals and reps' accuracy scores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Select, literal, or_, select
from sqlalchemy.orm import Session

from storage.database import insert_ignoring_conflicts
from storage.models import (
    AccuracyScore,
    Deal,
    DealSnapshot,
    PostMortem,
    UTCDateTime,
)


class TeamDeal(NamedTuple):
    """A deal as the manager digest reads it: its columns and its post-mortem's reason."""

    id: int
    account: str
    title: str | None
    owner_id: str
    amount: Decimal | None
    currency: str
    stage: str
    forecast_category: str
    close_date: dt.date | None
    status: str
    closed_at: dt.datetime | None
    created_at: dt.datetime
    close_reason: str | None
    post_mortem_reason: str | None  # None: no post-mortem
    # `<team key>:<stage key>` on a team with its own stages (its probability weighs the deal).
    team_stage: str | None = None


def team_deals_query(
    *, owner_ids: Iterable[str], closed_since: dt.datetime, created_since: dt.datetime
) -> Select[Any]:
    """Return the statement of `WeeklyRepository.team_deals` (`bench.plan_jobs` times it bare)."""
    return (
        select(
            Deal.id,
            Deal.account,
            Deal.title,
            Deal.owner_id,
            Deal.amount,
            Deal.currency,
            Deal.stage,
            Deal.forecast_category,
            Deal.close_date,
            Deal.status,
            Deal.closed_at,
            Deal.created_at,
            Deal.close_reason,
            PostMortem.primary_reason,
            Deal.team_stage,
        )
        .outerjoin(PostMortem, PostMortem.deal_id == Deal.id)
        .where(
            Deal.owner_id.in_(list(owner_ids)),
            Deal.is_live(),
            or_(
                Deal.status == "open",
                Deal.closed_at >= closed_since,
                Deal.created_at >= created_since,
            ),
        )
        .order_by(Deal.id)
    )


class WeeklyRepository:
    """Weekly snapshots of open deals and reps' accuracy scores."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def snapshot_open_deals(self, *, week: str, owner_ids: Iterable[str], at: dt.datetime) -> int:
        """Snapshot these owners' open deals for `week` (once: later calls add nothing)."""
        owners = list(owner_ids)
        if not owners:
            return 0
        source = select(
            literal(week),
            Deal.id,
            Deal.owner_id,
            Deal.stage,
            Deal.amount,
            Deal.currency,
            Deal.forecast_category,
            Deal.close_date,
            literal(at, UTCDateTime()),
        ).where(Deal.status == "open", Deal.is_live(), Deal.owner_id.in_(owners))
        columns = [
            "week",
            "deal_id",
            "owner_id",
            "stage",
            "amount",
            "currency",
            "forecast_category",
            "close_date",
            "taken_at",
        ]
        table = DealSnapshot.__table__
        statement = insert_ignoring_conflicts(self.session, table, ["week", "deal_id"])
        statement = statement.from_select(columns, source)
        return self.session.execute(statement).rowcount or 0

    def snapshots(self, *, weeks: Iterable[str], owner_ids: Iterable[str]) -> list[DealSnapshot]:
        deleted = select(Deal.id).where(Deal.deleted_at.is_not(None))
        statement = select(DealSnapshot).where(
            DealSnapshot.week.in_(list(weeks)),
            DealSnapshot.owner_id.in_(list(owner_ids)),
            # A deal deleted since (logged by mistake, merged) leaves last weeks' figures too.
            DealSnapshot.deal_id.not_in(deleted),
        )
        return list(self.session.scalars(statement))

    def save_scores(
        self, *, week: str, scores: Iterable[tuple[str, int, int]], at: dt.datetime
    ) -> None:
        """Keep the first score computed for each rep and week (the one that was posted)."""
        rows = [
            {"week": week, "rep_id": rep, "passed": passed, "checked": checked, "computed_at": at}
            for rep, passed, checked in scores
        ]
        if rows:
            statement = insert_ignoring_conflicts(
                self.session, AccuracyScore.__table__, ["week", "rep_id"]
            )
            self.session.execute(statement, rows)

    def scores(self, *, week: str, rep_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        statement = select(AccuracyScore.rep_id, AccuracyScore.passed, AccuracyScore.checked).where(
            AccuracyScore.week == week, AccuracyScore.rep_id.in_(list(rep_ids))
        )
        return {rep: (passed, checked) for rep, passed, checked in self.session.execute(statement)}

    def team_deals(
        self, *, owner_ids: Iterable[str], closed_since: dt.datetime, created_since: dt.datetime
    ) -> list[TeamDeal]:
        """Return the owners' open deals, deals closed or created since the given times."""
        statement = team_deals_query(
            owner_ids=owner_ids, closed_since=closed_since, created_since=created_since
        )
        # Plain rows, not ORM Deals: a team's digest reads tens of thousands at a large org.
        return [TeamDeal(*row) for row in self.session.connection().execute(statement)]
