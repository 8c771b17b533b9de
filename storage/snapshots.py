"""Weekly snapshots of open deals and reps' accuracy scores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from storage.database import insert_ignoring_conflicts
from storage.models import (
    AccuracyScore,
    Deal,
    DealSnapshot,
    PostMortem,
    UTCDateTime,
)


class ClosedTeamDeal(NamedTuple):
    """A deal won or lost as the manager digest lists it: with its post-mortem's reason."""

    id: int
    account: str
    title: str | None
    owner_id: str
    amount: Decimal | None
    currency: str
    status: str  # "won" or "lost"
    closed_at: dt.datetime
    close_reason: str | None
    post_mortem_reason: str | None  # None: no post-mortem


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

    def open_deal_count(self, *, owner_ids: Iterable[str]) -> int:
        """Return how many of the owners' deals are open, counted by the database: the digest
        shows the number, so a team's tens of thousands of open deals are never read."""
        statement = select(func.count()).where(
            Deal.owner_id.in_(list(owner_ids)), Deal.status == "open", Deal.is_live()
        )
        return int(self.session.execute(statement).scalar_one())

    def closed_since(self, *, owner_ids: Iterable[str], since: dt.datetime) -> list[ClosedTeamDeal]:
        """Return the owners' deals won or lost since `since`, by id, with their post-mortems'
        reasons."""
        statement = (
            select(
                Deal.id,
                Deal.account,
                Deal.title,
                Deal.owner_id,
                Deal.amount,
                Deal.currency,
                Deal.status,
                Deal.closed_at,
                Deal.close_reason,
                PostMortem.primary_reason,
            )
            .outerjoin(PostMortem, PostMortem.deal_id == Deal.id)
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                Deal.status.in_(("won", "lost")),
                Deal.is_live(),
                Deal.closed_at >= since,
            )
            .order_by(Deal.id)
        )
        return [ClosedTeamDeal(*row) for row in self.session.connection().execute(statement)]
