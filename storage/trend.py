"""What the forecast chart's weekly trend is drawn from: commit snapshots and won deals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from storage.models import Deal, DealSnapshot


class CommitSnapshot(NamedTuple):
    """A deal snapshotted as commit in one week, as it stood that week."""

    week: str
    deal_id: int
    amount: Decimal | None
    currency: str
    close_date: dt.date


class WonDeal(NamedTuple):
    deal_id: int
    amount: Decimal | None
    currency: str
    closed_at: dt.datetime


class TrendRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def commit_snapshots(
        self,
        *,
        owner_ids: Iterable[str],
        first_week: str,
        last_week: str,
        closing: tuple[dt.date, dt.date],
        other_than: str | None = None,
    ) -> list[CommitSnapshot]:
        """Return the owners' commit snapshots of weeks `first_week`..`last_week` (inclusive)
        whose close date was within `closing` (inclusive) that week, by week then deal;
        with `other_than`, only those in another currency (`commit_totals` sums the rest).

        Week keys ("2026-W48") sort as text in time order, across years too.
        """
        owners = list(owner_ids)
        if not owners:
            return []
        other = () if other_than is None else (DealSnapshot.currency != other_than,)
        statement = (
            select(
                DealSnapshot.week,
                DealSnapshot.deal_id,
                DealSnapshot.amount,
                DealSnapshot.currency,
                DealSnapshot.close_date,
            )
            .join(Deal, Deal.id == DealSnapshot.deal_id)
            .where(*_commit_closing(owners, first_week, last_week, closing), *other)
            .order_by(DealSnapshot.week, DealSnapshot.deal_id)
        )
        return [CommitSnapshot(*row) for row in self.session.execute(statement)]

    def commit_totals(
        self,
        *,
        owner_ids: Iterable[str],
        first_week: str,
        last_week: str,
        closing: tuple[dt.date, dt.date],
        currency: str,
    ) -> dict[str, Decimal]:
        """Return, per week, the summed amounts of the commit snapshots `commit_snapshots`
        returns that are in `currency` (no conversion, so no per-deal rounding: the database
        may add them up). Weeks without such a snapshot are left out.

        Summed as whole cents, so the sum is exact on SQLite too (whose NUMERIC is a float).
        """
        owners = list(owner_ids)
        if not owners:
            return {}
        cents = cast(func.sum(func.round(DealSnapshot.amount * 100)), BigInteger)
        statement = (
            select(DealSnapshot.week, cents)
            .join(Deal, Deal.id == DealSnapshot.deal_id)
            .where(
                *_commit_closing(owners, first_week, last_week, closing),
                DealSnapshot.currency == currency,
                DealSnapshot.amount.is_not(None),
            )
            .group_by(DealSnapshot.week)
        )
        return {
            week: Decimal(int(total)).scaleb(-2)
            for week, total in self.session.execute(statement)
            if total is not None
        }

    def snapshot_weeks(
        self, *, owner_ids: Iterable[str], first_week: str, last_week: str
    ) -> list[str]:
        """Return the weeks `first_week`..`last_week` in which any of the owners' deals were
        snapshotted, in order: a week with snapshots but no commit still has a point."""
        owners = list(owner_ids)
        if not owners:
            return []
        statement = (
            select(DealSnapshot.week)
            .where(
                DealSnapshot.owner_id.in_(owners),
                DealSnapshot.week >= first_week,
                DealSnapshot.week <= last_week,
            )
            .distinct()
            .order_by(DealSnapshot.week)
        )
        return list(self.session.scalars(statement))

    def won_between(
        self, *, owner_ids: Iterable[str], start: dt.datetime, end: dt.datetime
    ) -> list[WonDeal]:
        """Return the owners' live deals won in [start, end), in the order they closed."""
        owners = list(owner_ids)
        if not owners:
            return []
        statement = (
            select(Deal.id, Deal.amount, Deal.currency, Deal.closed_at)
            .where(
                Deal.owner_id.in_(owners),
                Deal.status == "won",
                Deal.is_live(),
                Deal.closed_at >= start,
                Deal.closed_at < end,
            )
            .order_by(Deal.closed_at, Deal.id)
        )
        return [WonDeal(*row) for row in self.session.execute(statement)]


def _commit_closing(
    owners: list[str], first_week: str, last_week: str, closing: tuple[dt.date, dt.date]
) -> tuple[ColumnElement[bool], ...]:
    """The owners' live commit snapshots of `first_week`..`last_week` closing in `closing`."""
    return (
        DealSnapshot.owner_id.in_(owners),
        DealSnapshot.week >= first_week,
        DealSnapshot.week <= last_week,
        DealSnapshot.forecast_category == "commit",
        DealSnapshot.close_date >= closing[0],
        DealSnapshot.close_date <= closing[1],
        # A deal deleted since (logged by mistake, merged) leaves past weeks too. Joined by
        # key, not `NOT IN (deleted ids)`: that list is built by scanning every deal.
        Deal.is_live(),
    )
