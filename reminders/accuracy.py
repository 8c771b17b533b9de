"""Placeholder while the job is being built (issue 3)."""

from __future__ import annotations

from reminders.jobs import Job, JobContext, OutgoingMessage, Schedule


def plan(context: JobContext) -> list[OutgoingMessage]:
    return []


JOB = Job(
    name="accuracy", description="(being built)", schedule=Schedule(cron={"hour": "9"}), plan=plan
)
