"""Job firings: which process won each scheduled firing, and how the run ended."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.database import insert_ignoring_conflicts
from storage.models import JobRun


class JobRunRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim_firing(
        self, *, job: str, scope: str, fire_time: dt.datetime, runner: str, at: dt.datetime
    ) -> int | None:
        """Return the new run's id if this process won the firing, None if another did."""
        statement = insert_ignoring_conflicts(
            self.session, JobRun.__table__, ["job", "scope", "fire_time"]
        ).values(
            job=job,
            scope=scope,
            fire_time=fire_time,
            status="running",
            runner=runner,
            started_at=at,
        )
        result = self.session.execute(statement.returning(JobRun.__table__.c.id))
        return result.scalar()

    def has_firing(self, *, job: str, scope: str, fire_time: dt.datetime) -> bool:
        statement = select(JobRun.id).where(
            JobRun.job == job, JobRun.scope == scope, JobRun.fire_time == fire_time
        )
        return self.session.scalar(statement) is not None

    def finish(self, run_id: int, *, status: str, summary: str, at: dt.datetime) -> None:
        self.session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=status, summary=summary[:200], finished_at=at)
        )

    def last_finished(self, job: str) -> JobRun | None:
        statement = (
            select(JobRun)
            .where(JobRun.job == job, JobRun.finished_at.is_not(None))
            .order_by(JobRun.finished_at.desc())
            .limit(1)
        )
        return self.session.scalars(statement).first()

    def running(
        self, jobs: tuple[str, ...], *, since: dt.datetime
    ) -> list[tuple[str, str, dt.datetime]]:
        """Return (job, scope, fire_time) of these jobs' runs still running since `since`.

        A row left "running" by a process that died is older than any live run, so callers
        pass a `since` that bounds how long a live run may take.
        """
        statement = (
            select(JobRun.job, JobRun.scope, JobRun.fire_time)
            .where(JobRun.job.in_(jobs), JobRun.status == "running", JobRun.started_at >= since)
            .order_by(JobRun.id)
        )
        return [(row.job, row.scope, row.fire_time) for row in self.session.execute(statement)]
