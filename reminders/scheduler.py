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

Delivery: every `SWEEP_INTERVAL` each process also sweeps the outbox (`sweep`): claims of
dead processes go back to pending, and pending messages of every job whose backoff is over
are sent, so a message that failed at 9:00 (Slack down, a 429 storm) goes out minutes after
Slack is back, not at the job's next firing. Row claims keep two sweepers from sending a
message twice.

Rep zones: a job scheduled in `"rep"` time gets one trigger per zone of the deal owners;
the trigger refresh asks Slack for zones older than a day first (`reminders/rep_zones.py`).
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
from slack_sdk import WebClient

from domain.clock import Clock, SystemClock
from reminders.delivery import Delivery, DeliverySummary
from reminders.jobs import (
    REP_TIMEZONE,
    TEAM_TIMEZONE,
    Job,
    JobContext,
    collect_garbage_less_often,
    run_job,
)
from reminders.rep_zones import ACTIVE_OWNER_WINDOW, cached_owner_timezones, refresh_rep_zones
from storage.database import Database
from storage.facts import ReminderRepository
from storage.job_runs import JobRunRepository

logger = logging.getLogger(__name__)

CATCH_UP_WINDOW = dt.timedelta(hours=6)
# New teams (and so new timezones) are picked up this often without a restart.
TRIGGER_REFRESH = dt.timedelta(minutes=15)
# Pending messages are retried (and dead claims released) this often, in every process.
SWEEP_INTERVAL = dt.timedelta(minutes=1)

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
        client: WebClient,
        default_timezone: str = "UTC",
        clock: Clock | None = None,
        runner: str | None = None,
    ) -> None:
        self.jobs = dict(jobs)
        self.database = database
        self.context_factory = context_factory
        self.client = client
        self.default_timezone = default_timezone
        self.clock = clock or SystemClock()
        self.runner = runner or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        self._scheduler: BackgroundScheduler | None = None

    # --- what fires when -------------------------------------------------------------------

    def zones_for(self, job: Job) -> list[str]:
        """Return the zones `job` has a trigger in (rep zones as stored: no Slack call)."""
        if job.schedule.timezone == REP_TIMEZONE:
            owners = cached_owner_timezones(
                self.database,
                closed_since=self.clock.now() - ACTIVE_OWNER_WINDOW,
                default_timezone=self.default_timezone,
            )
            return sorted({zone for _, zone in owners} or {self.default_timezone})
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
                job=job.name,
                scope=zone,
                fire_time=fire_time,
                runner=self.runner,
                at=self.clock.now(),
            )
        if run_id is None:
            logger.info("%s at %s (%s) is run by another process", job.name, fire_time, zone)
            return None
        status, summary_line, summary = "failed", "crashed", None
        try:
            context = self.context_factory(self.clock.now(), frozenset({zone}))
            delivery = Delivery(
                database=self.database, client=context.client, wall_clock=self.clock
            )
            summary = run_job(job, context, delivery=delivery)
            status, summary_line = "done", summary.line()
            logger.info("%s (%s): %s", job.name, zone, summary_line)
        except Exception:
            logger.exception("%s (%s) failed", job.name, zone)
        finally:
            with self.database.session() as session:
                JobRunRepository(session).finish(
                    run_id, status=status, summary=summary_line, at=self.clock.now()
                )
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

    def sweep(self) -> DeliverySummary:
        """Retry the due pending messages of every job and free dead claims; return counts."""
        summary = Delivery(
            database=self.database, client=self.client, wall_clock=self.clock
        ).sweep()
        if summary.sent or summary.failed or summary.expired:
            logger.info("outbox sweep: %s", summary.line())
        return summary

    def refresh_zones(self) -> int:
        """Ask Slack for deal owners' zones older than a day; return how many were stored."""
        if not any(job.schedule.timezone == REP_TIMEZONE for job in self.jobs.values()):
            return 0
        now = self.clock.now()
        return refresh_rep_zones(
            self.database, self.client, now=now, closed_since=now - ACTIVE_OWNER_WINDOW
        )

    def _refresh(self) -> None:
        try:
            self.refresh_zones()
        except Exception:
            # Stale zones beat no triggers: the triggers are still brought up to date.
            logger.exception("refreshing rep timezones failed")
        self.sync_triggers()

    def _sweep_quietly(self) -> None:
        try:
            self.sweep()
        except Exception:
            logger.exception("outbox sweep failed")

    def sync_triggers(self) -> None:
        """Add or replace one cron trigger per job and zone (new team zones included)."""
        # Read once: the refresh runs on other threads and may outlive a shutdown.
        scheduler = self._scheduler
        if scheduler is None:
            return
        wanted: set[str] = set()
        for job in self.jobs.values():
            for zone in self.zones_for(job):
                trigger_id = f"{job.name}@{zone}"
                wanted.add(trigger_id)
                if scheduler.get_job(trigger_id) is None:
                    scheduler.add_job(
                        self._tick,
                        trigger_for(job, zone),
                        args=(job.name, zone),
                        id=trigger_id,
                        name=trigger_id,
                    )
        for scheduled in scheduler.get_jobs():
            if "@" in scheduled.id and scheduled.id not in wanted:
                scheduled.remove()

    def start(self) -> None:
        """Start ticking in a background thread, after catching up on missed firings."""
        collect_garbage_less_often()
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
            self._refresh,
            IntervalTrigger(seconds=int(TRIGGER_REFRESH.total_seconds())),
            id="refresh-triggers",
        )
        self._scheduler.add_job(
            self._sweep_quietly,
            IntervalTrigger(seconds=int(SWEEP_INTERVAL.total_seconds())),
            id="deliver-pending",
            # A sweep that starts late is still worth running; two never overlap.
            misfire_grace_time=None,
        )
        self._scheduler.start()
        threading.Thread(
            target=self._catch_up_quietly, name="dealbot-catch-up", daemon=True
        ).start()

    def _catch_up_quietly(self) -> None:
        try:
            # Zones first, so a rep whose Slack zone is new gets their trigger without waiting.
            self._refresh()
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
