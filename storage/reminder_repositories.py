"""SQL behind the scheduled jobs: firings, the outbox, and the set-based reminder queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import JobRun, OutboxMessage, Team, TeamMember


def _insert_ignoring_conflicts(session: Session, table: Any, key: list[str]) -> Any:
    """Return an INSERT … ON CONFLICT (key) DO NOTHING for this session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=key)


class JobRunRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim_firing(
        self, *, job: str, scope: str, fire_time: dt.datetime, runner: str
    ) -> int | None:
        """Return the new run's id if this process won the firing, None if another did."""
        statement = _insert_ignoring_conflicts(
            self.session, JobRun.__table__, ["job", "scope", "fire_time"]
        ).values(
            job=job,
            scope=scope,
            fire_time=fire_time,
            status="running",
            runner=runner,
            started_at=dt.datetime.now(dt.UTC),
        )
        result = self.session.execute(statement.returning(JobRun.__table__.c.id))
        return result.scalar()

    def has_firing(self, *, job: str, scope: str, fire_time: dt.datetime) -> bool:
        statement = select(JobRun.id).where(
            JobRun.job == job, JobRun.scope == scope, JobRun.fire_time == fire_time
        )
        return self.session.scalar(statement) is not None

    def finish(self, run_id: int, *, status: str, summary: str) -> None:
        self.session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=status, summary=summary[:200], finished_at=dt.datetime.now(dt.UTC))
        )

    def last_finished(self, job: str) -> JobRun | None:
        statement = (
            select(JobRun)
            .where(JobRun.job == job, JobRun.finished_at.is_not(None))
            .order_by(JobRun.finished_at.desc())
            .limit(1)
        )
        return self.session.scalars(statement).first()


_OUTBOX = OutboxMessage.__table__


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_new(self, rows: list[dict[str, Any]]) -> int:
        """Insert rows whose idempotency key is new; return how many were inserted."""
        statement = _insert_ignoring_conflicts(
            self.session, _OUTBOX, ["job", "period", "recipient", "subject"]
        ).values(status="pending", attempts=0, file_sent=False)
        inserted = 0
        # One statement per row keeps rowcount exact on both backends; a run sends at most
        # a few thousand messages, and each is then a Slack call anyway.
        for row in rows:
            inserted += self.session.execute(statement, row).rowcount or 0
        return inserted

    def release_stale_claims(self, job: str, *, older_than: dt.datetime) -> int:
        result = self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.job == job,
                OutboxMessage.status == "sending",
                OutboxMessage.claimed_at < older_than,
            )
            .values(status="pending")
        )
        return result.rowcount or 0

    def expire(self, job: str, *, now: dt.datetime) -> int:
        """Mark pending messages whose moment has passed as expired; return how many."""
        result = self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.job == job,
                OutboxMessage.status == "pending",
                OutboxMessage.not_after.is_not(None),
                OutboxMessage.not_after < now,
            )
            .values(status="expired")
        )
        return result.rowcount or 0

    def pending_ids(self, job: str) -> list[int]:
        statement = (
            select(OutboxMessage.id)
            .where(OutboxMessage.job == job, OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
        )
        return list(self.session.scalars(statement))

    def claim(self, message_id: int, *, at: dt.datetime) -> dict[str, Any] | None:
        """Return the row, now marked "sending", or None when another process holds it.

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
            .values(status="sending", claimed_at=at, attempts=OutboxMessage.attempts + 1)
        )
        if result.rowcount != 1:
            return None
        row = self.session.execute(select(_OUTBOX).where(_OUTBOX.c.id == message_id)).one()
        return dict(row._mapping)

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
            .values(status="sent", sent_at=at, file_sent=True, last_error=None)
        )

    def mark_failed_attempt(
        self, message_id: int, *, error: str, permanent: bool, max_attempts: int
    ) -> str:
        """Return the row's new status: "failed" if hopeless, else "pending" for a retry."""
        attempts = self.session.scalar(
            select(OutboxMessage.attempts).where(OutboxMessage.id == message_id)
        )
        status = "failed" if permanent or (attempts or 0) >= max_attempts else "pending"
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(status=status, last_error=error)
        )
        return status

    def count_pending(self, job: str) -> int:
        statement = select(func.count()).where(
            OutboxMessage.job == job, OutboxMessage.status.in_(("pending", "sending"))
        )
        return self.session.scalar(statement) or 0

    def messages(self, job: str | None = None) -> list[OutboxMessage]:
        statement = select(OutboxMessage).order_by(OutboxMessage.id)
        if job is not None:
            statement = statement.where(OutboxMessage.job == job)
        return list(self.session.scalars(statement))


class ReminderRepository:
    """The set-based reads the jobs plan from."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def team_timezones(self) -> set[str]:
        return set(self.session.scalars(select(Team.timezone).distinct()))

    def rep_timezones(self, default_timezone: str) -> list[tuple[str, str]]:
        """Return (rep id, timezone of the rep's first team) for every rep in a team."""
        first_team = (
            select(TeamMember.user_id, func.min(TeamMember.team_id).label("team_id"))
            .where(TeamMember.role == "rep")
            .group_by(TeamMember.user_id)
            .subquery()
        )
        statement = (
            select(first_team.c.user_id, Team.timezone)
            .join(Team, Team.id == first_team.c.team_id)
            .order_by(first_team.c.user_id)
        )
        return [
            (user_id, zone or default_timezone) for user_id, zone in self.session.execute(statement)
        ]


__all__ = ["JobRunRepository", "OutboxRepository", "ReminderRepository"]
