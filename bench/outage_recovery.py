"""Slack down when the chase fires, back 10 s later: how long until every DM is out?

    python -m bench.outage_recovery [--reps 40] [--outage 10]

Really runs the scheduler of `dealbot serve` (`bot.jobs_cli.build_scheduler`, APScheduler
in the background, the production WebClient and its retry handlers) on a fresh SQLite file
against the fake Slack Web API (`bot/fake_slack.py`). `--reps` reps on no team each own a deal
with no next step. The chase is scheduled a few seconds ahead (nudged at any hour, so the
benchmark runs on any day); Slack answers every `chat.postMessage` with HTTP 503 from
before that firing until `--outage` seconds after it. Nothing else is done: the scheduler's
minute sweep must deliver what the firing could not.

Prints the time from Slack's return to the last DM delivered, against the 2-minute target
(the ratio), the duplicate DMs (must be 0) and the job runs (must be 1: no new run).
Exit status: 0 PASS, 1 MISS, 2 when the benchmark itself failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from bot.fake_slack import FakeSlackWebAPI
from bot.jobs_cli import build_scheduler
from bot.settings import load_settings
from bot.slack import build_web_client
from domain.changes import DealChanges
from domain.checks import ChecksConfig, default_checks
from domain.clock import FixedClock, SystemClock
from domain.deals import Actor, DealService
from reminders.chase import plan_chase
from reminders.jobs import Job, JobContext, OutgoingMessage, Schedule
from storage.database import Database
from storage.migrate import upgrade
from storage.models import JobRun
from tests.fakes.slack_spec import slack_spec_dir

TARGET = dt.timedelta(minutes=2)
GIVE_UP = dt.timedelta(minutes=5)


def any_hour_checks() -> ChecksConfig:
    """Return the default checks with nudges allowed at any hour, weekends included."""
    checks = default_checks()
    nudges = dataclasses.replace(
        checks.nudges, weekends=True, quiet_start=dt.time(0), quiet_end=dt.time(0)
    )
    return dataclasses.replace(checks, nudges=nudges)


def chase_soon(fire_at: dt.datetime, checks: ChecksConfig) -> Job:
    """Return the chase, planned as usual, but firing once at `fire_at` (UTC)."""

    def plan(context: JobContext) -> list[OutgoingMessage]:
        return plan_chase(context, config=checks)

    cron = {"hour": str(fire_at.hour), "minute": str(fire_at.minute), "second": str(fire_at.second)}
    return Job(
        name="chase-next-steps",
        description="the chase, fired by the benchmark",
        schedule=Schedule(cron=cron, timezone="UTC"),
        plan=plan,
    )


def seed(database: Database, slack: FakeSlackWebAPI, reps: list[str], now: dt.datetime) -> None:
    """Give each rep (Slack zone UTC, on no team) a month-old deal with no next step."""
    deals = DealService(
        database=database, clock=FixedClock(at=now - dt.timedelta(days=30)), default_timezone=dt.UTC
    )
    for index, rep in enumerate(reps):
        slack.set_user(rep, tz="UTC")
        deals.create_deal(
            Actor(user_id=rep), f"Account {index:03d}", DealChanges(stage="discovery")
        )


def run(reps_count: int, outage: float) -> int:
    reps = [f"U0REP{i:03d}" for i in range(reps_count)]
    with (
        tempfile.TemporaryDirectory() as folder,
        FakeSlackWebAPI(spec_dir=slack_spec_dir()) as slack,
    ):
        url = f"sqlite:///{Path(folder) / 'outage.sqlite3'}"
        upgrade(url)
        database = Database.from_url(url)
        clock = SystemClock()
        seed(database, slack, reps, clock.now())
        settings = load_settings(
            _env_file=None,
            slack_bot_token="xoxb-bench",
            slack_api_url=slack.base_url,
            database_url=url,
            dealbot_timezone="UTC",
        )
        client = build_web_client(token="xoxb-bench", base_url=slack.base_url)
        fire_at = (clock.now() + dt.timedelta(seconds=5)).replace(microsecond=0)
        scheduler = build_scheduler(settings, database=database, client=client, clock=clock)
        scheduler.jobs = {"chase-next-steps": chase_soon(fire_at, any_hour_checks())}
        slack.fail_next(1_000_000, status=503, method="chat.postMessage")  # Slack is down
        scheduler.start()
        try:
            time.sleep(max((fire_at - clock.now()).total_seconds(), 0) + outage)
            slack.reset()  # Slack is back: faults and failed attempts forgotten
            back = time.monotonic()
            print(f"Slack back {outage:.0f} s after the chase fired")
            delivered: Counter[str] = Counter()
            last_dm = None
            waiting = threading.Event()
            while time.monotonic() - back < GIVE_UP.total_seconds():
                delivered = Counter(c.args["channel"] for c in slack.calls_to("chat.postMessage"))
                if set(delivered) >= set(reps):
                    last_dm = time.monotonic() - back
                    break
                waiting.wait(0.2)
            # A sweep or two more: a duplicate would show up now, if there were one.
            waiting.wait(2)
            delivered = Counter(c.args["channel"] for c in slack.calls_to("chat.postMessage"))
        finally:
            scheduler.shutdown()
        with database.session() as session:
            runs = session.scalar(select(func.count()).select_from(JobRun)) or 0
        database.dispose()
    duplicates = sum(count - 1 for count in delivered.values() if count > 1)
    print(f"DMs delivered {len(delivered)}/{len(reps)}, duplicates {duplicates}, job runs {runs}")
    if last_dm is None:
        print(f"MISS: not every DM was out {GIVE_UP.total_seconds():.0f} s after Slack's return")
        return 1
    ratio = last_dm / TARGET.total_seconds()
    verdict = "PASS" if ratio <= 1 and duplicates == 0 and runs == 1 else "MISS"
    print(
        f"Slack's return to the last DM: {last_dm:.1f} s "
        f"(target {TARGET.total_seconds():.0f} s, ratio {ratio:.2f}) {verdict}"
    )
    return 0 if verdict == "PASS" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40, help="reps to chase (default 40)")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds Slack stays down")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(arguments.reps, arguments.outage)
    except Exception as error:  # the benchmark broke, not the code under test
        print(f"benchmark failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
