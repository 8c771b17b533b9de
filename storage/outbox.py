"""The outbox: messages jobs queue, claimed and sent once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import and_, func, or_, select, true, update
from sqlalchemy.orm import Session

from storage.database import insert_ignoring_conflicts
from storage.models import OutboxMessage

_OUTBOX = OutboxMessage.__table__


def _of_job(job: str | None) -> Any:
    """Return `job = :job`, or a condition that always holds for every job (the sweeper)."""
    return OutboxMessage.job == job if job is not None else true()


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_new(self, rows: list[dict[str, Any]]) -> int:
        """Insert rows whose idempotency key is new; return how many were inserted."""
        statement = insert_ignoring_conflicts(
            self.session, _OUTBOX, ["job", "period", "recipient", "subject"]
        ).values(status="pending", attempts=0, file_sent=False)
        inserted = 0
        # One statement per row keeps rowcount exact on both backends; a run sends at most
        # a few thousand messages, and each is then a Slack call anyway.
        for row in rows:
            inserted += self.session.execute(statement, row).rowcount or 0
        return inserted

    def release_lapsed_claims(self, *, now: dt.datetime, job: str | None = None) -> int:
        """Hand "sending" rows whose lease ran out back to "pending"; return how many.

        A live sender renews its lease, so a lapsed one means its process died (or hung
        longer than the lease) somewhere between claiming the row and recording the answer.
        """
        result = self.session.execute(
            update(OutboxMessage)
            .where(
                _of_job(job),
                OutboxMessage.status == "sending",
                or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
            )
            .values(status="pending", claimed_by=None, lease_until=None)
        )
        return result.rowcount or 0

    def expire(self, *, now: dt.datetime, job: str | None = None) -> int:
        """Mark pending messages whose moment has passed as expired; return how many."""
        result = self.session.execute(
            update(OutboxMessage)
            .where(
                _of_job(job),
                OutboxMessage.status == "pending",
                OutboxMessage.not_after.is_not(None),
                OutboxMessage.not_after < now,
            )
            .values(status="expired")
        )
        return result.rowcount or 0

    def pending_sends(
        self, *, job: str | None = None, due_by: dt.datetime | None = None
    ) -> list[tuple[int, str]]:
        """Return (id, channel) of pending rows, oldest first; with `due_by`, only those due.

        The channel is the one Slack named when the message was posted (a retried upload),
        else the recipient: a DM's channel is one per user, so either keys Slack's
        per-channel limit.
        """
        statement = (
            select(
                OutboxMessage.id,
                func.coalesce(OutboxMessage.slack_channel, OutboxMessage.recipient),
            )
            .where(_of_job(job), OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
        )
        if due_by is not None:
            statement = statement.where(
                or_(
                    OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= due_by
                )
            )
        return [
            (message_id, str(channel)) for message_id, channel in self.session.execute(statement)
        ]

    def claim(
        self, message_id: int, *, at: dt.datetime, owner: str, lease_until: dt.datetime
    ) -> dict[str, Any] | None:
        """Return the row, now "sending" under `owner`'s lease, or None when another holds it.

        PostgreSQL: lock the row with FOR UPDATE SKIP LOCKED, so a competing claim skips it
        instead of waiting. SQLite compiles FOR UPDATE to nothing, so the conditional UPDATE
        and its rowcount decide (SQLite serializes writers, so exactly one sees rowcount 1).
        """
        if self.session.get_bind().dialect.name == "postgresql":
            locked = self.session.scalar(
                select(OutboxMessage.id)
                .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending")
                .with_for_update(skip_locked=True)
            )
            if locked is None:
                return None
        result = self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending")
            .values(
                status="sending",
                claimed_at=at,
                claimed_by=owner,
                lease_until=lease_until,
                attempts=OutboxMessage.attempts + 1,
            )
        )
        if result.rowcount != 1:
            return None
        row = self.session.execute(select(_OUTBOX).where(_OUTBOX.c.id == message_id)).one()
        return dict(row._mapping)

    def renew_leases(
        self, message_ids: Iterable[int], *, owner: str, lease_until: dt.datetime
    ) -> int:
        """Extend `owner`'s leases on these rows while it still holds them; return how many."""
        ids = list(message_ids)
        if not ids:
            return 0
        result = self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.claimed_by == owner,
                OutboxMessage.status == "sending",
            )
            .values(lease_until=lease_until)
        )
        return result.rowcount or 0

    def mark_posted(self, message_id: int, *, channel: str, ts: str) -> None:
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(slack_channel=channel, slack_ts=ts)
        )

    def mark_sent(self, message_id: int, *, at: dt.datetime) -> None:
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(status="sent", sent_at=at, file_sent=True, last_error=None, lease_until=None)
        )

    def mark_failed_attempt(
        self,
        message_id: int,
        *,
        error: str,
        permanent: bool,
        max_attempts: int,
        retry_at: Callable[[int], dt.datetime],
    ) -> str:
        """Return the row's new status: "failed" if hopeless, else "pending" for a retry.

        A retried row waits until `retry_at(attempts so far)` before the sweeper tries again.
        """
        attempts = (
            self.session.scalar(
                select(OutboxMessage.attempts).where(OutboxMessage.id == message_id)
            )
            or 0
        )
        status = "failed" if permanent or attempts >= max_attempts else "pending"
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(
                status=status,
                last_error=error,
                lease_until=None,
                next_attempt_at=retry_at(attempts) if status == "pending" else None,
            )
        )
        return status

    def count_pending(self, *, now: dt.datetime, job: str | None = None) -> int:
        """Return how many messages wait to be sent: pending, or held by a lapsed claim.

        A row another live run is sending right now is that run's business, not pending.
        """
        statement = select(func.count()).where(
            _of_job(job),
            or_(
                OutboxMessage.status == "pending",
                and_(
                    OutboxMessage.status == "sending",
                    or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
                ),
            ),
        )
        return self.session.scalar(statement) or 0

    def messages(self, job: str | None = None) -> list[OutboxMessage]:
        statement = select(OutboxMessage).order_by(OutboxMessage.id)
        if job is not None:
            statement = statement.where(OutboxMessage.job == job)
        return list(self.session.scalars(statement))
