"""Snoozes, nudges and whether reps acted on them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from storage.database import insert_ignoring_conflicts
from storage.models import Deal, DealChange, DealSnooze, NextStep, Nudge, OutboxMessage

_NUDGES = Nudge.__table__
_NUDGE_COLUMNS = ("period", "rep_id", "deal_id", "checks", "nudged_at")
_NUDGES_FROM_ARRAYS = text(
    """
    INSERT INTO nudges (period, rep_id, deal_id, checks, nudged_at)
    SELECT * FROM unnest(
        CAST(:period AS varchar[]), CAST(:rep_id AS varchar[]), CAST(:deal_id AS integer[]),
        CAST(:checks AS varchar[]), CAST(:nudged_at AS timestamptz[])
    )
    ON CONFLICT (period, rep_id, deal_id) DO NOTHING
    """
)


class NudgeRepository:
    """Snoozes, nudges and whether reps acted on them."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def snoozed_until(self, deal_ids: Iterable[int] | None = None) -> dict[int, dt.date]:
        statement = select(DealSnooze.deal_id, DealSnooze.until)
        if deal_ids is not None:
            statement = statement.where(DealSnooze.deal_id.in_(list(deal_ids)))
        return {deal_id: until for deal_id, until in self.session.execute(statement)}

    def snooze(self, *, deal_id: int, until: dt.date, by: str, at: dt.datetime) -> None:
        existing = self.session.scalar(select(DealSnooze).where(DealSnooze.deal_id == deal_id))
        if existing is None:
            self.session.add(DealSnooze(deal_id=deal_id, until=until, snoozed_by=by, snoozed_at=at))
        else:
            existing.until, existing.snoozed_by, existing.snoozed_at = until, by, at
        self.session.flush()

    def record_nudges(self, rows: list[dict[str, Any]]) -> None:
        """Insert the (period, rep, deal) nudges not yet recorded, in one batch."""
        if not rows:
            return
        if self.session.get_bind().dialect.name == "postgresql":
            # One statement over one array per column: a chase records tens of thousands of
            # nudges, and an executemany of them took PostgreSQL about half as long again.
            self.session.execute(
                _NUDGES_FROM_ARRAYS,
                {column: [row[column] for row in rows] for column in _NUDGE_COLUMNS},
            )
            return
        statement = insert_ignoring_conflicts(
            self.session, _NUDGES, ["period", "rep_id", "deal_id"]
        )
        self.session.execute(statement, rows)

    def mark_acted(self, *, at: dt.datetime) -> int:
        """Record, set-based, which open nudges the rep acted on since; return how many."""
        later_step = (
            select(NextStep.id)
            .where(NextStep.deal_id == Nudge.deal_id, NextStep.created_at > Nudge.nudged_at)
            .exists()
        )
        later_change = (
            select(DealChange.id)
            .where(
                DealChange.deal_id == Nudge.deal_id,
                DealChange.changed_at > Nudge.nudged_at,
                DealChange.field.in_(("close_date", "stage", "amount", "forecast_category")),
            )
            .exists()
        )
        closed = (
            select(Deal.id)
            .where(Deal.id == Nudge.deal_id, Deal.closed_at > Nudge.nudged_at)
            .exists()
        )
        touched = 0
        for action, condition in (
            ("closed", closed),
            ("next_step", later_step),
            ("change", later_change),
        ):
            result = self.session.execute(
                update(Nudge)
                .where(Nudge.acted_at.is_(None), condition)
                .values(acted_at=at, action=action)
                .execution_options(synchronize_session=False)
            )
            touched += result.rowcount or 0
        return touched

    def check_response(
        self, *, rep_ids: Iterable[str], since: dt.datetime
    ) -> dict[str, tuple[int, int]]:
        """Return check id -> (deals nudged, deals acted on) for sent nudges since `since`."""
        sent = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.job == "chase-next-steps",
                OutboxMessage.period == Nudge.period,
                OutboxMessage.recipient == Nudge.rep_id,
                OutboxMessage.status == "sent",
            )
            .exists()
        )
        statement = select(Nudge.checks, Nudge.acted_at).where(
            Nudge.rep_id.in_(list(rep_ids)), Nudge.nudged_at >= since, sent
        )
        response: dict[str, tuple[int, int]] = {}
        for checks, acted_at in self.session.execute(statement):
            for check in checks.split(","):
                nudged, acted = response.get(check, (0, 0))
                response[check] = (nudged + 1, acted + (acted_at is not None))
        return response
