"""Delivery under faults, restarts and a second instance: every DM once, none twice."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.fake_slack import FakeSlackWebAPI
from bot.jobs_cli import build_scheduler
from domain.clock import FixedClock
from reminders.delivery import CLAIM_LEASE, Delivery, SendRate
from reminders.jobs import load_jobs, run_job
from storage.database import Database
from tests.databases import postgres_database
from tests.reminders.world import World, build_world, fast_client

CREATED = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
MONDAY = dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC)
REPS = [f"U0REP{i:02d}" for i in range(12)]


def seed_reps(world: World) -> None:
    """Twelve New York reps, each with one deal lacking a next step."""
    from domain.teams import TeamService
    from tests.reminders.world import ADMIN

    TeamService(database=world.database, clock=world.clock, default_timezone="UTC").add_members(
        ADMIN, name="East", role="rep", user_ids=REPS
    )
    for index, rep in enumerate(REPS):
        world.new_deal(rep, f"Account {index:02d}", at=CREATED)


def chase_dms(slack: FakeSlackWebAPI) -> Counter[str]:
    return Counter(
        call.args["channel"]
        for call in slack.calls_to("chat.postMessage")
        if call.args["channel"] in REPS
    )


@pytest.mark.parametrize(
    "fault",
    ["429 with Retry-After", "500", "dropped connection", "a mix of all three"],
)
def test_after_at_most_three_runs_every_rep_has_exactly_one_dm(
    lenient_world: World, fault: str
) -> None:
    world = lenient_world
    seed_reps(world)
    slack = world.slack
    if fault == "429 with Retry-After":
        slack.fail_next(10, status=429, retry_after=0, method="chat.postMessage")
    elif fault == "500":
        slack.fail_next(10, status=500, method="chat.postMessage")
    elif fault == "dropped connection":
        slack.drop_next(10, method="chat.postMessage")
    else:
        for _ in range(4):
            slack.fail_next(1, status=429, retry_after=0, method="chat.postMessage")
            slack.fail_next(1, status=500, method="chat.postMessage")
            slack.drop_next(1, method="chat.postMessage")
    summaries = []
    for run in range(3):
        summaries.append(world.run("chase-next-steps", MONDAY + dt.timedelta(minutes=run)))
        if summaries[-1].pending == 0:
            break
    # Ten faults in a row beat one send's three attempts. A 429 says when to come back, so
    # the run waits it out itself; a 5xx or a dropped connection waits for a rerun.
    if fault == "429 with Retry-After":
        assert len(summaries) == 1
    elif fault != "a mix of all three":
        assert summaries[0].pending > 0
    assert summaries[-1].pending == 0 and summaries[-1].failed == 0
    assert chase_dms(slack) == Counter(dict.fromkeys(REPS, 1))
    failed_attempts = [
        c for c in slack.calls_to("chat.postMessage", include_failed=True) if c.failed
    ]
    assert failed_attempts, "the faults were never exercised"
    if "429" in fault or "mix" in fault:
        assert set(world.rate_limit.retry_afters) == {"0"}


def test_a_job_interrupted_after_half_its_sends_resumes_without_resending(
    world: World,
) -> None:
    seed_reps(world)

    class CrashingClient(WebClient):
        """Dies (like a killed process) before the seventh message reaches Slack."""

        sends = 0

        def chat_postMessage(self, **kwargs: Any) -> Any:
            CrashingClient.sends += 1
            if CrashingClient.sends == 7:
                raise KeyboardInterrupt
            return super().chat_postMessage(**kwargs)

    crashing = CrashingClient(token="xoxb-test", base_url=world.slack.base_url)
    context = world.context(MONDAY)
    context = type(context)(**{**context.__dict__, "client": crashing})
    wall = FixedClock(at=MONDAY)
    # One sender, so "half its sends" is exact: the crash is about resuming, not parallelism.
    dying = Delivery(
        database=world.database,
        client=crashing,
        wall_clock=wall,
        owner="dead",
        rate=SendRate(senders=1),
    )
    with pytest.raises(KeyboardInterrupt):
        run_job(load_jobs()["chase-next-steps"], context, delivery=dying)
    assert sum(chase_dms(world.slack).values()) == 6
    # The restarted process sends the five that were never claimed; the sixth is claimed
    # by a process it cannot yet tell from a slow one, so it is in flight, not pending.
    restarted = Delivery(
        database=world.database, client=world.client, wall_clock=FixedClock(at=MONDAY)
    )
    resumed = restarted.send_pending("chase-next-steps", now=MONDAY)
    assert (resumed.sent, resumed.pending) == (5, 0)
    # ...and the one the crash held is handed back once its claim's lease runs out.
    restarted.wall_clock = FixedClock(at=MONDAY + CLAIM_LEASE + dt.timedelta(seconds=1))
    final = restarted.send_pending("chase-next-steps", now=MONDAY + dt.timedelta(minutes=1))
    assert (final.sent, final.pending) == (1, 0)
    assert chase_dms(world.slack) == Counter(dict.fromkeys(REPS, 1))


@pytest.fixture
def postgres_world(slack_api: FakeSlackWebAPI) -> Iterator[World]:
    with postgres_database() as url:
        world = build_world(url, slack_api)
        try:
            yield world
        finally:
            world.database.dispose()


def _race(workers: list[Any]) -> list[Any]:
    """Run each worker in its own thread, released together; return their results."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = workers[index]()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_two_schedulers_on_one_postgresql_database_send_each_message_once(
    postgres_world: World,
) -> None:
    world = postgres_world
    seed_reps(world)
    fire_time = dt.datetime(2026, 11, 23, 14, tzinfo=dt.UTC)
    instances = []
    for name in ("web-1", "web-2"):
        # Each instance has its own engine and Slack client, as separate processes would.
        database = Database.from_url(world.settings.database_url)
        client, _ = fast_client(world.slack.base_url)
        scheduler = build_scheduler(
            world.settings, database=database, client=client, clock=FixedClock(at=MONDAY)
        )
        scheduler.runner = name
        instances.append((scheduler, database))
    try:
        results = _race(
            [
                lambda s=scheduler: s.fire("chase-next-steps", "America/New_York", fire_time)
                for scheduler, _ in instances
            ]
        )
    finally:
        for _, database in instances:
            database.dispose()
    assert sorted(r is None for r in results) == [False, True]  # one ran it, one stood down
    assert chase_dms(world.slack) == Counter(dict.fromkeys(REPS, 1))


def test_two_manual_runs_at_once_on_postgresql_still_send_each_message_once(
    postgres_world: World,
) -> None:
    world = postgres_world
    seed_reps(world)
    job = load_jobs()["chase-next-steps"]

    def manual_run() -> Any:
        database = Database.from_url(world.settings.database_url)
        try:
            client, _ = fast_client(world.slack.base_url)
            context = world.context(MONDAY)
            context = type(context)(**{**context.__dict__, "client": client, "database": database})
            return run_job(job, context)
        finally:
            database.dispose()

    first, second = _race([manual_run, manual_run])
    assert first.sent + second.sent == len(REPS)
    assert chase_dms(world.slack) == Counter(dict.fromkeys(REPS, 1))


def test_a_permanent_error_is_failed_not_retried_forever(world: World, tmp_path: Path) -> None:
    seed_reps(world)
    world.slack.set_response("chat.postMessage", {"ok": False, "error": "user_not_found"})
    summary = world.run("chase-next-steps", MONDAY)
    assert (summary.sent, summary.pending, summary.failed) == (0, 0, len(REPS))
    assert not summary.complete
    again = world.run("chase-next-steps", MONDAY + dt.timedelta(hours=1))
    assert again.failed == 0 and len(world.slack.calls_to("chat.postMessage")) == len(REPS)
