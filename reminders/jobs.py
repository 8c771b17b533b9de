"""Scheduled jobs: what a job is, the registry, and running one job once.

How to add a job
----------------
1. Write a module (e.g. ``reminders/follow_ups.py``) with a planning function and a
   module-level ``JOB``::

       from reminders.jobs import Job, JobContext, OutgoingMessage, Schedule, day_period

       def plan_follow_ups(context: JobContext) -> list[OutgoingMessage]:
           messages = []
           for rep_id, zone in context.reps_in_scope():
               messages.append(
                   OutgoingMessage(
                       recipient=rep_id,          # a Slack user id: delivered as a DM
                       subject="draft-1234",      # what the message is about, unique per period
                       period=day_period(context.now, zone),
                       text="Your follow-up to Initech is ready in Gmail.",
                       blocks=[...],              # Block Kit dicts (optional)
                   )
               )
           return messages

       JOB = Job(
           name="draft-follow-ups",
           description="Gmail drafts for next steps and stage changes that call for an email",
           schedule=Schedule(cron={"minute": "*/15"}, timezone="UTC"),
           plan=plan_follow_ups,
       )

2. Add the module's dotted path to ``JOB_MODULES`` below. ``dealbot jobs list``,
   ``dealbot jobs run <name>``, the scheduler and the demo pick it up from there.

The plan function returns the messages to send; it must not call Slack's chat methods
itself. It may do other work (create a Gmail draft, write a snapshot) as long as that work
is idempotent, because a plan can run more than once for the same period (a rerun, a
catch-up after downtime, a second instance). Delivery records every message in the outbox
under its idempotency key (job, period, recipient, subject) before sending anything, so a
message planned twice is sent once, and one that fails to send stays pending and goes out on
the next run. A DM is just an ``OutgoingMessage`` whose ``recipient`` is the rep's user id;
a channel post uses the channel id.

Block Kit is Slack's, so it lives in ``handlers/``, which ``reminders/`` may not import: a
plan function works out plain values (``domain.nudges``, ``domain.follow_ups``) and renders
them with ``context.render`` (a ``JobMessages``, ``handlers.job_messages`` as wired by
``bot``). A new kind of message adds its values to ``domain/``, its builder to ``handlers/``
and one method to ``JobMessages``.

Schedules are cron fields (APScheduler's ``CronTrigger`` keywords) in a timezone, which is an
IANA name, ``"team"`` (one trigger per distinct team timezone) or ``"rep"`` (one per distinct
zone of the deal owners, see ``JobContext.owners_in_scope``); the firing's
``JobContext.timezones`` says which zone fired, so "9:00 on weekdays" is 9:00 for each team,
or for each rep.
"""

from __future__ import annotations

import datetime as dt
import gc
import importlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from reminders.delivery import ChartFile, Delivery, DeliverySummary, OutgoingMessage

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.app import Services
    from bot.settings import Settings
    from domain.checks import ChecksConfig, DealFacts
    from domain.follow_ups import DraftOutcome
    from domain.forecast import RepCalibration
    from domain.nudges import ChaseItem, Digest, RepAccuracy
    from storage.database import Database

logger = logging.getLogger(__name__)
# Planned messages written to the outbox per transaction (see `run_job`).
RECORD_BATCH = 1_000

# Built-in and plugged-in jobs; each module defines a module-level `JOB`.
JOB_MODULES: tuple[str, ...] = (
    "reminders.chase",
    "reminders.accuracy",
    "reminders.digest",
    "reminders.follow_ups",
    "reminders.calibration",
)

TEAM_TIMEZONE = "team"
# One trigger per distinct zone of the deal owners (their Slack profile's, else their team's).
REP_TIMEZONE = "rep"


@dataclass(frozen=True)
class Schedule:
    """When a job fires: APScheduler cron fields in an IANA zone, or in each team's zone."""

    cron: Mapping[str, str]
    timezone: str = "UTC"

    def describe(self) -> str:
        fields = " ".join(f"{name}={value}" for name, value in self.cron.items())
        zone = {
            TEAM_TIMEZONE: "each team's timezone",
            REP_TIMEZONE: "each rep's timezone",
        }.get(self.timezone, self.timezone)
        return f"{fields} ({zone})"


class RenderedMessage(Protocol):
    """A message ready for chat.postMessage: its fallback text and its Block Kit."""

    @property
    def text(self) -> str: ...

    def block_dicts(self) -> list[dict[str, Any]]: ...


def message_of(
    reply: RenderedMessage,
    *,
    recipient: str,
    subject: str,
    period: str,
    file: ChartFile | None = None,
    not_after: dt.datetime | None = None,
) -> OutgoingMessage:
    """Return the message that sends `reply` to `recipient` (a user id: a DM; else a channel).

    (recipient, subject, period) is what delivers it only once, however often it is planned.
    """
    return OutgoingMessage(
        recipient=recipient,
        subject=subject,
        period=period,
        text=reply.text,
        blocks=reply.block_dicts(),
        file=file,
        not_after=not_after,
    )


class JobMessages(Protocol):
    """The Slack rendering of every message a job sends.

    Jobs work out plain values (domain.nudges, domain.follow_ups); how they look in Slack
    belongs to handlers/, which reminders/ may not import, so `bot` hands the rendering in.
    """

    def chase_message(self, items: Sequence[ChaseItem], today: dt.date) -> RenderedMessage: ...

    def post_mortem_prompt(self, deal: DealFacts) -> RenderedMessage: ...

    def accuracy_post(
        self,
        *,
        team_name: str,
        week: str,
        team_score: Decimal | None,
        reps: Sequence[RepAccuracy],
        top_checks: Sequence[tuple[str, int]],
        currency: str = "USD",
    ) -> RenderedMessage: ...

    def manager_digest(self, digest: Digest) -> RenderedMessage: ...

    def draft_ready(self, outcome: DraftOutcome) -> RenderedMessage: ...

    def draft_skipped(self, outcome: DraftOutcome, *, deal_ref: str) -> RenderedMessage: ...

    def connect_gmail(
        self, link: str, *, deals: Sequence[str], reconnect: bool
    ) -> RenderedMessage: ...

    def template_broken(self, template: str, problem: str) -> RenderedMessage: ...

    def rep_calibration(self, calibration: RepCalibration) -> RenderedMessage: ...


@dataclass(frozen=True)
class JobContext:
    """What a job's plan function gets: the time it runs as, and the app's services."""

    now: dt.datetime
    database: Database
    services: Services
    client: WebClient
    settings: Settings
    # How the messages look in Slack (handlers.job_messages, wired by bot).
    render: JobMessages
    # The timezones this firing covers; None means every one (an on-demand run).
    timezones: frozenset[str] | None = None

    def covers(self, zone: str) -> bool:
        return self.timezones is None or zone in self.timezones

    def checks(self) -> ChecksConfig:
        """Return the checks in effect: the app's, which know each team's own stages."""
        return self.services.deals.checks()

    def reps_in_scope(self) -> list[tuple[str, ZoneInfo]]:
        """Return (rep user id, rep's timezone) for every team rep this firing covers."""
        from storage.facts import ReminderRepository

        with self.database.session() as session:
            reps = ReminderRepository(session).rep_timezones(self.settings.dealbot_timezone)
        return [(rep, ZoneInfo(zone)) for rep, zone in reps if self.covers(zone)]

    def owners_in_scope(self, *, closed_since: dt.datetime) -> list[tuple[str, ZoneInfo]]:
        """Return (owner id, owner's timezone) for every deal owner this firing covers.

        Owners of open deals and of deals closed since `closed_since`, on a team or not.
        Zones Slack has not given within a day are asked for first (`users.info`).
        """
        from reminders.rep_zones import owner_timezones

        zones = owner_timezones(
            self.database,
            self.client,
            now=self.now,
            closed_since=closed_since,
            default_timezone=self.settings.dealbot_timezone,
        )
        return [(owner, ZoneInfo(zone)) for owner, zone in zones if self.covers(zone)]


@dataclass(frozen=True)
class Job:
    """A named job: when it runs and how it works out what to send."""

    name: str
    description: str
    schedule: Schedule
    plan: Callable[[JobContext], Iterable[OutgoingMessage]]


def load_jobs(modules: Sequence[str] = JOB_MODULES) -> dict[str, Job]:
    """Return every registered job by name, in the order of `modules`."""
    jobs: dict[str, Job] = {}
    for module_name in modules:
        job = importlib.import_module(module_name).JOB
        if job.name in jobs:
            raise ValueError(f"two jobs are called {job.name!r}")
        jobs[job.name] = job
    return jobs


def day_period(now: dt.datetime, zone: ZoneInfo) -> str:
    """Return the daily period key of `now` in `zone`, e.g. "2026-11-23"."""
    return now.astimezone(zone).date().isoformat()


def week_period(now: dt.datetime, zone: ZoneInfo) -> str:
    """Return the ISO-week period key of `now` in `zone`, e.g. "2026-W48"."""
    year, week, _ = now.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


# Allocations between two young-generation collections of CPython's cyclic garbage
# collector, in a process that runs jobs (CPython's default is 700). A weekly job holds a
# hundred thousand deals' facts and rows while it plans, and at 700 the collector ran over a
# thousand times a digest and walked them on every older-generation pass: 10% of the
# digest's time at 100k deals (1.7 s; 0.5 s at this threshold). Most of what a job drops,
# reference counting frees at once: only reference cycles wait for a collection.
JOB_PROCESS_GC_THRESHOLD = 50_000


def collect_garbage_less_often() -> None:
    """Set this process's young-generation threshold to `JOB_PROCESS_GC_THRESHOLD`, unless
    it is higher already. Process-wide: called where jobs run (the scheduler's start,
    `dealbot jobs run`), once, never around one job (jobs run on several threads)."""
    young, middle, old = gc.get_threshold()
    if young < JOB_PROCESS_GC_THRESHOLD:
        gc.set_threshold(JOB_PROCESS_GC_THRESHOLD, middle, old)


def run_job(job: Job, context: JobContext, *, delivery: Delivery | None = None) -> DeliverySummary:
    """Plan `job` as of `context.now`, record its messages, send what is pending; return counts."""
    delivery = delivery or Delivery(database=context.database, client=context.client)
    # Recorded a batch at a time as the plan yields them: a chase at a million deals plans
    # tens of thousands of DMs, too many to hold rendered all at once.
    planned = recorded = 0
    messages = iter(job.plan(context))
    while batch := list(islice(messages, RECORD_BATCH)):
        planned += len(batch)
        recorded += delivery.record(job.name, batch)
    logger.info("%s planned %d message(s), %d new", job.name, planned, recorded)
    return delivery.send_pending(job.name, now=context.now)
