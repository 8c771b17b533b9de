"""What deals' history says: closed deals, close-date pushes, the weekly snapshots to compare.

The reads behind the closed figures, forecast accuracy and the week's flow
(`reminders.forecast_history`). Every read takes the owners it covers and leaves deleted
deals out, as every figure does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from storage.models import Deal, DealChange, DealSnapshot

# The fields whose old values rebuild how a deal stood a week ago when no snapshot was taken.
FLOW_FIELDS = ("amount", "close_date", "forecast_category", "status")


class HistoryDeal(NamedTuple):
    """A deal as the history figures read it: its columns, no relationships."""

    id: int
    account: str
    title: str | None
    owner_id: str
    amount: Decimal | None
    currency: str
    forecast_category: str
    close_date: dt.date | None
    status: str
    created_at: dt.datetime
    closed_at: dt.datetime | None


class CalledCommit(NamedTuple):
    """A commit deal as a weekly snapshot called it, beside how the deal stands now."""

    deal_id: int
    amount: Decimal | None  # as called
    currency: str
    close_date: dt.date | None
    taken_at: dt.datetime
    # The deal now: its name, whether and when it closed, at what amount.
    account: str
    title: str | None
    status: str
    closed_on: dt.date | None  # the close date now: the day it closed, once closed
    amount_now: Decimal | None
    currency_now: str


class SnapshotStand(NamedTuple):
    """How a deal stood in a weekly snapshot: the fields the week's flow compares."""

    amount: Decimal | None
    currency: str
    forecast_category: str
    close_date: dt.date | None


class FlowRow(NamedTuple):
    """A deal the week's flow may list, with how it stood in the snapshot (None: not in it)."""

    deal: HistoryDeal
    then: SnapshotStand | None


class FieldChange(NamedTuple):
    deal_id: int
    field: str
    old_value: str | None
    new_value: str | None
    changed_at: dt.datetime


def _deal_columns() -> tuple[object, ...]:
    return (
        Deal.id,
        Deal.account,
        Deal.title,
        Deal.owner_id,
        Deal.amount,
        Deal.currency,
        Deal.forecast_category,
        Deal.close_date,
        Deal.status,
        Deal.created_at,
        Deal.closed_at,
    )


def _closing_move() -> object:
    """Return the condition "this close-date row was written when the deal closed".

    Closing a deal writes its close date (the day it closed) at the very moment of its
    status change to won or lost: that row records the close, not a date a rep pushed.
    """
    status = aliased(DealChange)
    return exists().where(
        status.deal_id == DealChange.deal_id,
        status.field == "status",
        status.new_value.in_(("won", "lost")),
        status.changed_at == DealChange.changed_at,
    )


class HistoryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def closed_between(
        self, *, owner_ids: Iterable[str], first_day: dt.date, last_day: dt.date
    ) -> list[HistoryDeal]:
        """Return the owners' deals won or lost with a close date (the day they closed) in
        `first_day`..`last_day`."""
        statement = (
            select(*_deal_columns())
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                Deal.is_live(),
                Deal.status.in_(("won", "lost")),
                Deal.close_date >= first_day,
                Deal.close_date <= last_day,
            )
            .order_by(Deal.id)
        )
        return [HistoryDeal(*row) for row in self.session.execute(statement)]

    def slip_counts(
        self,
        *,
        owner_ids: Iterable[str],
        first_day: dt.date,
        created_before: dt.datetime,
        pushed_since: dt.datetime,
    ) -> tuple[int, int]:
        """Return (deals counted, deals of those pushed) for the slip rate, counted in SQL.

        Counted: the owners' deals open at any time from `first_day` on (created before
        `created_before`, open now or closed on or after `first_day`). Pushed: their close
        date was moved later since `pushed_since`, the move written when a deal closed aside
        (ISO dates sort as text). Two counts, not every deal's row: a team's slip rate reads
        one row however many deals it has.
        """
        pushed = exists().where(
            DealChange.deal_id == Deal.id,
            DealChange.field == "close_date",
            DealChange.changed_at >= pushed_since,
            DealChange.old_value.is_not(None),
            DealChange.new_value > DealChange.old_value,
            ~_closing_move(),  # type: ignore[operator]
        )
        statement = select(func.count(), func.count(case((pushed, 1)))).where(
            Deal.owner_id.in_(list(owner_ids)),
            Deal.is_live(),
            Deal.created_at < created_before,
            or_(Deal.status == "open", Deal.close_date >= first_day),
        )
        counted, slipped = self.session.execute(statement).one()
        return int(counted), int(slipped)

    def earliest_snapshot_week(
        self, *, owner_ids: Iterable[str], first_week: str, last_week: str
    ) -> str | None:
        """Return the earliest week in `first_week`..`last_week` with a snapshot of these
        owners' deals ("2026-W40" keys sort as text, across years too)."""
        statement = select(func.min(DealSnapshot.week)).where(
            DealSnapshot.owner_id.in_(list(owner_ids)),
            DealSnapshot.week >= first_week,
            DealSnapshot.week <= last_week,
        )
        return self.session.scalar(statement)

    def commit_called(
        self, *, week: str, owner_ids: Iterable[str], closing: tuple[dt.date, dt.date]
    ) -> list[CalledCommit]:
        """Return the owners' commit deals snapshotted in `week` closing in `closing` (first
        and last day, inclusive), by deal, each beside the deal now, deleted deals aside.

        The commit called, filtered by the database rather than read and dropped, and read
        with the deals it joins anyway: what each became is in the same row.
        """
        statement = (
            select(
                DealSnapshot.deal_id,
                DealSnapshot.amount,
                DealSnapshot.currency,
                DealSnapshot.close_date,
                DealSnapshot.taken_at,
                Deal.account,
                Deal.title,
                Deal.status,
                Deal.close_date,
                Deal.amount,
                Deal.currency,
            )
            .join(Deal, Deal.id == DealSnapshot.deal_id)
            .where(
                # A one-week range, not `week = :week`: with an equality SQLite takes the
                # (week, deal_id) unique index and walks every owner's rows of the week; the
                # range makes the (owner_id, week) index the cheaper path, as it is.
                DealSnapshot.week >= week,
                DealSnapshot.week <= week,
                DealSnapshot.owner_id.in_(list(owner_ids)),
                Deal.is_live(),
                DealSnapshot.forecast_category == "commit",
                DealSnapshot.close_date >= closing[0],
                DealSnapshot.close_date <= closing[1],
            )
            .order_by(DealSnapshot.deal_id)
        )
        return [CalledCommit(*row) for row in self.session.execute(statement)]

    def snapshot_taken(self, *, week: str, owner_ids: Iterable[str]) -> dt.datetime | None:
        """Return when the owners' snapshot of `week` was taken (its first row), deleted deals
        aside; None when there is none."""
        statement = (
            select(func.min(DealSnapshot.taken_at))
            .join(Deal, Deal.id == DealSnapshot.deal_id)
            .where(
                # A one-week range for the (owner_id, week) index, as in `commit_called`.
                DealSnapshot.week >= week,
                DealSnapshot.week <= week,
                DealSnapshot.owner_id.in_(list(owner_ids)),
                Deal.is_live(),
            )
        )
        taken: dt.datetime | None = self.session.scalar(statement)
        return taken

    def moved_since_snapshot(
        self, *, week: str, owner_ids: Iterable[str], since: dt.datetime
    ) -> list[FlowRow]:
        """Return the owners' deals that may sit on a line of the week's flow, by id.

        Each deal open now, or closed or created since `since`, beside its row of the owners'
        snapshot of `week`, but only if something could have moved: not in the snapshot and
        created or closed since, in it and closed since, or in it, open, and its close date,
        amount (or currency) or category differs from the snapshot's. The database compares,
        so a team's unchanged deals (most of them) are never read; the caller decides the
        lines exactly from what is returned.
        """
        owners = list(owner_ids)
        closed_since = and_(Deal.closed_at.is_not(None), Deal.closed_at >= since)
        in_snapshot = DealSnapshot.id.is_not(None)
        # A NULL on either side compares as unknown, i.e. not different: as the flow treats it.
        differs = or_(
            DealSnapshot.close_date != Deal.close_date,
            and_(
                Deal.amount.is_not(None),
                DealSnapshot.amount.is_not(None),
                or_(Deal.amount != DealSnapshot.amount, Deal.currency != DealSnapshot.currency),
            ),
            DealSnapshot.forecast_category != Deal.forecast_category,
        )
        statement = (
            select(
                *_deal_columns(),
                DealSnapshot.id,
                DealSnapshot.amount,
                DealSnapshot.currency,
                DealSnapshot.forecast_category,
                DealSnapshot.close_date,
            )
            .outerjoin(
                DealSnapshot,
                and_(
                    DealSnapshot.deal_id == Deal.id,
                    DealSnapshot.week == week,
                    DealSnapshot.owner_id.in_(owners),
                ),
            )
            .where(
                Deal.owner_id.in_(owners),
                Deal.is_live(),
                or_(
                    and_(~in_snapshot, or_(Deal.created_at >= since, closed_since)),
                    and_(in_snapshot, Deal.status != "open", closed_since),
                    and_(in_snapshot, Deal.status == "open", differs),
                ),
            )
            .order_by(Deal.id)
        )
        rows = []
        for row in self.session.execute(statement):
            deal = HistoryDeal(*row[:11])
            then = SnapshotStand(*row[12:]) if row[11] is not None else None
            rows.append(FlowRow(deal, then))
        return rows

    def live_since(self, *, owner_ids: Iterable[str], since: dt.datetime) -> list[HistoryDeal]:
        """Return the owners' deals open now, or closed or created since `since`."""
        statement = (
            select(*_deal_columns())
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                Deal.is_live(),
                or_(
                    Deal.status == "open",
                    and_(Deal.closed_at.is_not(None), Deal.closed_at >= since),
                    Deal.created_at >= since,
                ),
            )
            .order_by(Deal.id)
        )
        return [HistoryDeal(*row) for row in self.session.execute(statement)]

    def changes_since(self, *, owner_ids: Iterable[str], since: dt.datetime) -> list[FieldChange]:
        """Return the owners' deals' changes to the flow's fields since `since`, oldest first,
        the close-date row written when a deal closed aside."""
        statement = (
            select(
                DealChange.deal_id,
                DealChange.field,
                DealChange.old_value,
                DealChange.new_value,
                DealChange.changed_at,
            )
            .join(Deal, Deal.id == DealChange.deal_id)
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                Deal.is_live(),
                DealChange.changed_at >= since,
                DealChange.field.in_(FLOW_FIELDS),
                or_(DealChange.field != "close_date", ~_closing_move()),  # type: ignore[operator]
            )
            .order_by(DealChange.changed_at, DealChange.id)
        )
        return [FieldChange(*row) for row in self.session.execute(statement)]
