"""Closed deals with the history their calibration is read from, for many reps at once.

Rep calibration and learned thresholds (`reminders/calibration.py`) look back a year or two
at every deal a team closed. Two set-based statements serve any number of reps: the closed
deals (with whether a post-mortem is in), then the close-date, forecast and stage changes of
exactly those deals, in order — never one query per deal.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Deal, DealChange, PostMortem

# The history fields calibration reads: what the rep called, what they forecast, where the
# deal sat. Amount and status changes are not needed (the deal row has both at closing).
CALIBRATION_FIELDS = ("close_date", "forecast_category", "stage")


class HistoryEntry(NamedTuple):
    field: str
    old_value: str | None
    new_value: str | None
    changed_at: dt.datetime


class ClosedDeal(NamedTuple):
    """A won or lost deal and its tracked history, oldest change first."""

    deal_id: int
    owner_id: str
    status: str  # "won" or "lost"
    created_at: dt.datetime
    closed_at: dt.datetime
    close_date: dt.date | None
    forecast_category: str
    amount: Decimal | None
    currency: str
    has_post_mortem: bool
    history: tuple[HistoryEntry, ...]


class CalibrationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def closed_deals(
        self, *, owner_ids: Iterable[str], closed_from: dt.datetime, closed_before: dt.datetime
    ) -> list[ClosedDeal]:
        """Return the owners' deals closed in [closed_from, closed_before), with history.

        Deleted (and merged-away) deals are left out: they are not the rep's record.
        """
        owners = sorted(set(owner_ids))
        if not owners:
            return []
        in_scope = (
            Deal.owner_id.in_(owners),
            Deal.status.in_(("won", "lost")),
            Deal.deleted_at.is_(None),
            Deal.closed_at >= closed_from,
            Deal.closed_at < closed_before,
        )
        deals = self.session.execute(
            select(
                Deal.id,
                Deal.owner_id,
                Deal.status,
                Deal.created_at,
                Deal.closed_at,
                Deal.close_date,
                Deal.forecast_category,
                Deal.amount,
                Deal.currency,
                PostMortem.id.is_not(None).label("has_post_mortem"),
            )
            .outerjoin(PostMortem, PostMortem.deal_id == Deal.id)
            .where(*in_scope)
            .order_by(Deal.owner_id, Deal.closed_at, Deal.id)
        ).all()
        history: dict[int, list[HistoryEntry]] = defaultdict(list)
        changes = self.session.execute(
            select(
                DealChange.deal_id,
                DealChange.field,
                DealChange.old_value,
                DealChange.new_value,
                DealChange.changed_at,
            )
            .where(
                DealChange.deal_id.in_(select(Deal.id).where(*in_scope)),
                DealChange.field.in_(CALIBRATION_FIELDS),
            )
            # The id breaks ties: changes made by one command share their changed_at.
            .order_by(DealChange.deal_id, DealChange.changed_at, DealChange.id)
        )
        for deal_id, field, old, new, at in changes:
            history[deal_id].append(HistoryEntry(field, old, new, at))
        # Positional, in ClosedDeal's field order (the select's): keywords cost a visible
        # share of a team's year of closed deals.
        return [ClosedDeal(*row[:9], bool(row[9]), tuple(history.get(row[0], ()))) for row in deals]
