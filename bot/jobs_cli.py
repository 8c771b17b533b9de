"""Wiring for scheduled jobs: the scheduler behind `serve`, and `dealbot jobs list|run`."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, TextIO

from slack_sdk import WebClient

from bot.app import build_services
from bot.settings import Settings, SettingsError
from bot.slack import build_web_client
from domain.clock import Clock, FixedClock, SystemClock
from handlers.job_messages import SlackJobMessages
from reminders.delivery import DeliverySummary
from reminders.jobs import Job, JobContext, collect_garbage_less_often, load_jobs, run_job
from reminders.scheduler import ContextFactory, JobScheduler
from storage.database import Database

if TYPE_CHECKING:
    from bot.crm_setup import CrmRuntime

EXIT_OK = 0
EXIT_PENDING = 1
EXIT_USAGE = 2


def context_factory(
    settings: Settings, *, database: Database, client: WebClient, clock: Clock | None = None
) -> ContextFactory:
    """Return a function building each firing's JobContext on shared services."""

    def build(now: dt.datetime, timezones: frozenset[str] | None) -> JobContext:
        services = build_services(
            settings, client=client, database=database, clock=clock or FixedClock(at=now)
        )
        return JobContext(
            now=now,
            database=database,
            services=services,
            client=client,
            settings=settings,
            render=SlackJobMessages(),
            timezones=timezones,
        )

    return build


def all_jobs(settings: Settings, *, crm: CrmRuntime | None = None) -> dict[str, Job]:
    """Return the registered jobs, plus `crm-sync` and `crm-push` when a CRM is connected.

    `crm` is the process's CRM runtime when the caller shares it (serve: with the webhook).
    """
    from bot.crm_setup import crm_jobs

    return {**load_jobs(), **crm_jobs(settings, runtime=crm)}


def build_scheduler(
    settings: Settings,
    *,
    database: Database,
    client: WebClient,
    clock: Clock | None = None,
    crm: CrmRuntime | None = None,
) -> JobScheduler:
    """Return the scheduler of `dealbot serve`: job triggers, the outbox sweep, rep zones."""
    return JobScheduler(
        jobs=all_jobs(settings, crm=crm),
        database=database,
        context_factory=context_factory(settings, database=database, client=client),
        client=client,
        default_timezone=settings.dealbot_timezone,
        clock=clock or SystemClock(),
    )


def open_database(settings: Settings) -> Database:
    """Return the database at a current schema: a SQLite file is upgraded, others refused.

    A single-file database has a single server, so keeping it current is safe and saves a
    newcomer a step; shared databases are upgraded on purpose with `dealbot db upgrade`.
    """
    from storage.migrate import is_up_to_date, upgrade

    database = Database.from_url(settings.database_url)
    if database.engine.dialect.name == "sqlite":
        upgrade(settings.database_url)
    elif not is_up_to_date(database.engine):
        raise SettingsError("DATABASE_URL: the schema is not current; run `dealbot db upgrade`")
    return database


def list_jobs(settings: Settings, *, out: TextIO | None = None) -> int:
    """Print each job with its schedule and next run."""
    out = out or sys.stdout
    database = open_database(settings)
    try:
        scheduler = build_scheduler(
            settings, database=database, client=WebClient(base_url=settings.slack_api_url)
        )
        for job in scheduler.jobs.values():
            upcoming = scheduler.next_run(job)
            when = upcoming.isoformat(timespec="minutes") if upcoming else "never"
            print(f"{job.name:<20} {job.schedule.describe():<45} next {when}", file=out)
            print(f"{'':<20} {job.description}", file=out)
    finally:
        database.dispose()
    return EXIT_OK


def run_job_now(
    settings: Settings,
    name: str,
    *,
    now: dt.datetime | None,
    client: WebClient | None = None,
    out: TextIO | None = None,
) -> int:
    """Run `name` once as of `now`; print the summary; return the exit code."""
    out = out or sys.stdout
    jobs = all_jobs(settings)
    if name not in jobs:
        print(f"dealbot: no job called {name!r}; try one of: {', '.join(jobs)}", file=sys.stderr)
        return EXIT_USAGE
    if client is None:
        if settings.slack_bot_token is None:
            raise SettingsError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-...)")
        client = build_web_client(
            token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
        )
    if now is None:
        now = SystemClock().now()  # the one real clock, as `serve` reads it
    elif now.tzinfo is None:
        now = now.replace(tzinfo=settings.timezone)
    collect_garbage_less_often()
    database = open_database(settings)
    try:
        context = context_factory(settings, database=database, client=client)(now, None)
        summary: DeliverySummary = run_job(jobs[name], context)
    finally:
        database.dispose()
    print(summary.line(), file=out)
    return EXIT_OK if summary.complete else EXIT_PENDING
