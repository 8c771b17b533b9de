"""Weekly snapshots of open deals and reps' accuracy scores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, literal, or_, select
from sqlalchemy.orm import Session, selectinload

from storage.database import insert_ignoring_conflicts
from storage.models import AccuracyScore, Deal, DealChange, DealSnapshot, UTCDateTime


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

    def earliest_week_since(self, *, first_week: str, owner_ids: Iterable[str]) -> str | None:
        statement = select(func.min(DealSnapshot.week)).where(
            DealSnapshot.week >= first_week, DealSnapshot.owner_id.in_(list(owner_ids))
        )
        return self.session.scalar(statement)

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
    ) -> list[Deal]:
        """Return the owners' open deals, deals closed or created since the given times."""
        statement = (
            select(Deal)
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                Deal.is_live(),
                or_(
                    Deal.status == "open",
                    Deal.closed_at >= closed_since,
                    Deal.created_at >= created_since,
                ),
            )
            .options(selectinload(Deal.post_mortem))
            .order_by(Deal.id)
        )
        return list(self.session.scalars(statement))

    def changes_since(self, *, owner_ids: Iterable[str], since: dt.datetime) -> list[DealChange]:
        """Return stage and close-date changes to the owners' deals since `since`."""
        statement = (
            select(DealChange)
            .join(Deal)
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                Deal.is_live(),
                DealChange.changed_at >= since,
                DealChange.field.in_(("stage", "close_date")),
                DealChange.old_value.is_not(None),
            )
            .order_by(DealChange.id)
        )
        return list(self.session.scalars(statement))

    def close_date_pushes_since(self, *, owner_ids: Iterable[str], since: dt.datetime) -> int:
        """Return how many of the owners' deals had their close date pushed since `since`."""
        statement = (
            select(func.count(func.distinct(DealChange.deal_id)))
            .join(Deal)
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                Deal.is_live(),
                DealChange.field == "close_date",
                DealChange.changed_at >= since,
                DealChange.old_value.is_not(None),
                DealChange.new_value > DealChange.old_value,
            )
        )
        return self.session.scalar(statement) or 0
