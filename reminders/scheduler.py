"""The scheduler: APScheduler as a ticker in each process, the database deciding who works.

APScheduler 3 cannot share one job store between processes (its FAQ says so), so every
process that runs `dealbot serve` without `--no-scheduler` keeps its triggers in memory and,
when one fires, tries to insert a (job, scope, fire time) row in `job_runs`. The insert uses
ON CONFLICT DO NOTHING: exactly one process gets the row and runs the job; the others stand
down. Even if two did run a job, the outbox's idempotency keys and row claims would still
send each message once.

Downtime: on start, each trigger's most recent firing within `CATCH_UP_WINDOW` that has no
`job_runs` row is run once (the in-memory store forgets missed runs across a restart), and
APScheduler's coalescing turns a backlog inside one process into one run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from domain.clock import Clock, SystemClock
from reminders.delivery import DeliverySummary
from reminders.jobs import TEAM_TIMEZONE, Job, JobContext, run_job
from storage.database import Database
from storage.reminder_repositories import JobRunRepository, ReminderRepository

logger = logging.getLogger(__name__)

CATCH_UP_WINDOW = dt.timedelta(hours=6)
# New teams (and so new timezones) are picked up this often without a restart.
TRIGGER_REFRESH = dt.timedelta(minutes=15)

ContextFactory = Callable[[dt.datetime, frozenset[str] | None], JobContext]


@dataclass(frozen=True)
class Firing:
    job: str
    scope: str
    fire_time: dt.datetime


def trigger_for(job: Job, zone: str) -> CronTrigger:
    return CronTrigger(timezone=zone, **dict(job.schedule.cron))


def last_fire_time(
    trigger: CronTrigger, *, now: dt.datetime, since: dt.datetime
) -> dt.datetime | None:
    """Return the trigger's latest fire time in (since, now], or None."""
    last = None
    moment = trigger.get_next_fire_time(None, since)
    while moment is not None and moment <= now:
        last = moment
        moment = trigger.get_next_fire_time(moment, moment + dt.timedelta(seconds=1))
    return last


class JobScheduler:
    def __init__(
        self,
        *,
        jobs: Mapping[str, Job],
        database: Database,
        context_factory: ContextFactory,
        default_timezone: str = "UTC",
        clock: Clock | None = None,
        runner: str | None = None,
    ) -> None:
        self.jobs = dict(jobs)
        self.database = database
        self.context_factory = context_factory
        self.default_timezone = default_timezone
        self.clock = clock or SystemClock()
        self.runner = runner or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._scheduler: BackgroundScheduler | None = None

    # --- what fires when -------------------------------------------------------------------

    def zones_for(self, job: Job) -> list[str]:
        if job.schedule.timezone != TEAM_TIMEZONE:
            return [job.schedule.timezone]
        with self.database.session() as session:
            zones = ReminderRepository(session).team_timezones()
        return sorted(zones or {self.default_timezone})

    def next_run(self, job: Job, *, now: dt.datetime | None = None) -> dt.datetime | None:
        """Return when `job` fires next in any of its zones."""
        now = now or self.clock.now()
        times = [
            trigger_for(job, zone).get_next_fire_time(None, now) for zone in self.zones_for(job)
        ]
        found = [moment for moment in times if moment is not None]
        return min(found) if found else None

    # --- running ---------------------------------------------------------------------------

    def fire(self, job_name: str, zone: str, fire_time: dt.datetime) -> DeliverySummary | None:
        """Run one firing if this process wins it; return the summary, or None if it lost."""
        job = self.jobs[job_name]
        with self.database.session() as session:
            run_id = JobRunRepository(session).claim_firing(
                job=job.name, scope=zone, fire_time=fire_time, runner=self.runner
            )
        if run_id is None:
            logger.info("%s at %s (%s) is run by another process", job.name, fire_time, zone)
            return None
        status, summary_line, summary = "failed", "crashed", None
        try:
            summary = run_job(job, self.context_factory(self.clock.now(), frozenset({zone})))
            status, summary_line = "done", summary.line()
            logger.info("%s (%s): %s", job.name, zone, summary_line)
        except Exception:
            logger.exception("%s (%s) failed", job.name, zone)
        finally:
            with self.database.session() as session:
                JobRunRepository(session).finish(run_id, status=status, summary=summary_line)
        return summary

    def _tick(self, job_name: str, zone: str) -> None:
        # APScheduler does not pass the scheduled time; the trigger's latest one is it, and
        # it is the same in every process, which is what makes the firing row unique.
        now = self.clock.now()
        trigger = trigger_for(self.jobs[job_name], zone)
        fire_time = last_fire_time(trigger, now=now, since=now - CATCH_UP_WINDOW)
        if fire_time is not None:
            self.fire(job_name, zone, fire_time)

    def catch_up(self) -> list[Firing]:
        """Run each trigger's latest missed firing (within CATCH_UP_WINDOW) once."""
        now = self.clock.now()
        ran: list[Firing] = []
        for job in self.jobs.values():
            for zone in self.zones_for(job):
                fire_time = last_fire_time(
                    trigger_for(job, zone), now=now, since=now - CATCH_UP_WINDOW
                )
                if fire_time is None:
                    continue
                with self.database.session() as session:
                    known = JobRunRepository(session).has_firing(
                        job=job.name, scope=zone, fire_time=fire_time
                    )
                if not known and self.fire(job.name, zone, fire_time) is not None:
                    ran.append(Firing(job.name, zone, fire_time))
        return ran

    def sync_triggers(self) -> None:
        """Add or replace one cron trigger per job and zone (new team zones included)."""
        if self._scheduler is None:
            return
        wanted: set[str] = set()
        for job in self.jobs.values():
            for zone in self.zones_for(job):
                trigger_id = f"{job.name}@{zone}"
                wanted.add(trigger_id)
                if self._scheduler.get_job(trigger_id) is None:
                    self._scheduler.add_job(
                        self._tick,
                        trigger_for(job, zone),
                        args=(job.name, zone),
                        id=trigger_id,
                        name=trigger_id,
                    )
        for scheduled in self._scheduler.get_jobs():
            if "@" in scheduled.id and scheduled.id not in wanted:
                scheduled.remove()

    def start(self) -> None:
        """Start ticking in a background thread, after catching up on missed firings."""
        self._scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            job_defaults={
                # A backlog (the machine slept) runs once, not once per missed tick.
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(CATCH_UP_WINDOW.total_seconds()),
            },
        )
        self.sync_triggers()
        self._scheduler.add_job(
            self.sync_triggers,
            IntervalTrigger(seconds=int(TRIGGER_REFRESH.total_seconds())),
            id="refresh-triggers",
        )
        self._scheduler.start()
        threading.Thread(
            target=self._catch_up_quietly, name="dealbot-catch-up", daemon=True
        ).start()

    def _catch_up_quietly(self) -> None:
        try:
            for firing in self.catch_up():
                logger.info(
                    "caught up on %s at %s (%s)", firing.job, firing.fire_time, firing.scope
                )
        except Exception:
            logger.exception("catching up on missed jobs failed")

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
