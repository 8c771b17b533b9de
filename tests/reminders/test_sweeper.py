"""The outbox sweeper and claim leases: a failed send goes out minutes after Slack is back,
a dead process's claims come back, and a run reports only what is really left."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import func, select

from bot.jobs_cli import build_scheduler
from domain.clock import FixedClock
from reminders.delivery import CLAIM_LEASE, Delivery, SendRate, retry_delay
from reminders.jobs import load_jobs, run_job
from reminders.scheduler import SWEEP_INTERVAL
from storage.models import JobRun, OutboxMessage
from tests.reminders.test_delivery import REPS, chase_dms, seed_reps
from tests.reminders.world import World

# 9:00 on Monday 23 Nov 2026 in New York, where the twelve reps are.
FIRE_TIME = dt.datetime(2026, 11, 23, 14, tzinfo=dt.UTC)
CHASE = "chase-next-steps"


def job_runs(world: World) -> int:
    with world.database.session() as session:
        return session.scalar(select(func.count()).select_from(JobRun)) or 0


def test_slack_down_when_the_chase_fires_is_delivered_by_the_sweeper_within_two_minutes(
    world: World,
) -> None:
    seed_reps(world)
    clock = FixedClock(at=FIRE_TIME + dt.timedelta(seconds=1))
    scheduler = build_scheduler(
        world.settings, database=world.database, client=world.client, clock=clock
    )
    world.slack.fail_next(10_000, status=503, method="chat.postMessage")  # Slack is down
    fired = scheduler.fire(CHASE, "America/New_York", FIRE_TIME)
    assert fired is not None and (fired.sent, fired.pending) == (0, len(REPS))

    world.slack.reset()  # ...and back ten seconds later: faults and failed calls forgotten
    back = FIRE_TIME + dt.timedelta(seconds=11)
    clock.at = back + dt.timedelta(seconds=9)
    # Each row backs off after its failure; a sweep before that leaves Slack alone.
    assert scheduler.sweep().sent == 0 and world.slack.calls_to("chat.postMessage") == []
    sweeps = 0
    while chase_dms(world.slack) != Counter(dict.fromkeys(REPS, 1)) and sweeps < 5:
        clock.at += SWEEP_INTERVAL
        scheduler.sweep()
        sweeps += 1
    assert chase_dms(world.slack) == Counter(dict.fromkeys(REPS, 1))  # every DM, none twice
    assert clock.at - back < dt.timedelta(minutes=2)
    assert job_runs(world) == 1  # the sweeper sent them, not a new run of the job
    assert {m.status for m in world.outbox(CHASE)} == {"sent"}


def test_failed_sends_back_off_longer_with_each_attempt() -> None:
    delays = [retry_delay(attempts) for attempts in range(1, 14)]
    assert delays[0] == dt.timedelta(seconds=30)
    assert delays == sorted(delays) and delays[-1] == dt.timedelta(minutes=30)


def test_a_dead_processs_claim_goes_back_to_pending_and_out_within_two_minutes(
    any_world: World,
) -> None:
    world = any_world
    seed_reps(world)

    class DyingClient(WebClient):
        """The process is killed while the seventh message is on its way to Slack."""

        sends = 0

        def chat_postMessage(self, **kwargs: Any) -> Any:
            DyingClient.sends += 1
            if DyingClient.sends == 7:
                raise KeyboardInterrupt
            return super().chat_postMessage(**kwargs)

    dying_client = DyingClient(token="xoxb-test", base_url=world.slack.base_url)
    context = world.context(FIRE_TIME)
    context = type(context)(**{**context.__dict__, "client": dying_client})
    died_at = FixedClock(at=FIRE_TIME)
    # One sender, so the seventh send is the one in flight when the process dies.
    dead = Delivery(
        database=world.database,
        client=dying_client,
        wall_clock=died_at,
        owner="dead",
        rate=SendRate(senders=1),
    )
    with pytest.raises(KeyboardInterrupt):
        run_job(load_jobs()[CHASE], context, delivery=dead)
    assert sum(chase_dms(world.slack).values()) == 6

    clock = FixedClock(at=FIRE_TIME + dt.timedelta(seconds=5))
    scheduler = build_scheduler(
        world.settings, database=world.database, client=world.client, clock=clock
    )
    scheduler.sweep()  # another process: sends the five never claimed, leaves the live claim
    assert sum(chase_dms(world.slack).values()) == 11
    claimed = [m for m in world.outbox(CHASE) if m.status == "sending"]
    assert [m.claimed_by for m in claimed] == ["dead"]
    clock.at = FIRE_TIME + CLAIM_LEASE + SWEEP_INTERVAL  # the next sweep after the lease lapsed
    assert clock.at - FIRE_TIME <= dt.timedelta(minutes=2)
    assert scheduler.sweep().sent == 1
    assert chase_dms(world.slack) == Counter(dict.fromkeys(REPS, 1))


def test_an_overlapping_run_does_not_count_another_runs_in_flight_message_as_pending(
    any_world: World,
) -> None:
    world = any_world
    seed_reps(world)
    entered, release = threading.Event(), threading.Event()

    class HeldClient(WebClient):
        """Holds its first message at Slack's door until the test lets it through."""

        def chat_postMessage(self, **kwargs: Any) -> Any:
            if not entered.is_set():
                entered.set()
                assert release.wait(timeout=30)
            return super().chat_postMessage(**kwargs)

    held = HeldClient(token="xoxb-test", base_url=world.slack.base_url)
    context = world.context(FIRE_TIME)
    context = type(context)(**{**context.__dict__, "client": held})
    results: list[Any] = []
    # One sender, so the held message holds back the first run's others for the second.
    one_at_a_time = Delivery(database=world.database, client=held, rate=SendRate(senders=1))
    first_run = threading.Thread(
        target=lambda: results.append(run_job(load_jobs()[CHASE], context, delivery=one_at_a_time))
    )
    first_run.start()
    try:
        assert entered.wait(timeout=30)
        second = world.run(CHASE, FIRE_TIME + dt.timedelta(minutes=1))
    finally:
        release.set()
        first_run.join(timeout=30)
    assert (second.sent, second.pending, second.failed) == (len(REPS) - 1, 0, 0)
    assert second.complete  # `dealbot jobs run` exits 0: nothing of its own is left
    (first,) = results
    assert (first.sent, first.pending) == (1, 0)
    assert chase_dms(world.slack) == Counter(dict.fromkeys(REPS, 1))


def test_a_slow_send_keeps_its_claim_while_its_process_lives(world: World) -> None:
    seed_reps(world)
    wall = FixedClock(at=FIRE_TIME)
    rival_summaries: list[Any] = []
    first_id: list[int] = []

    def lease_until(message_id: int) -> dt.datetime | None:
        with world.database.session() as session:
            return session.scalar(
                select(OutboxMessage.lease_until).where(OutboxMessage.id == message_id)
            )

    class SlowClient(WebClient):
        """The first send takes ten minutes (a long Retry-After); a rival sweeps meanwhile."""

        def chat_postMessage(self, **kwargs: Any) -> Any:
            if not first_id:
                (row,) = [m for m in world.outbox(CHASE) if m.status == "sending"]
                first_id.append(row.id)
                wall.at += dt.timedelta(minutes=10)
                renewed = threading.Event()
                for _ in range(200):  # the heartbeat beats every 0.1 s (lease 0.3 s)
                    moment = lease_until(row.id)
                    if moment is not None and moment > wall.at:
                        renewed.set()
                        break
                    renewed.wait(0.05)
                assert renewed.is_set(), "the lease was never renewed"
                rival = Delivery(
                    database=world.database, client=world.client, wall_clock=wall, owner="rival"
                )
                rival_summaries.append(rival.sweep())
            return super().chat_postMessage(**kwargs)

    slow = SlowClient(token="xoxb-test", base_url=world.slack.base_url)
    context = world.context(FIRE_TIME)
    context = type(context)(**{**context.__dict__, "client": slow})
    delivery = Delivery(
        database=world.database,
        client=slow,
        wall_clock=wall,
        owner="slow",
        lease=dt.timedelta(seconds=0.3),
        rate=SendRate(senders=1),  # the slow first send holds back the others
    )
    summary = run_job(load_jobs()[CHASE], context, delivery=delivery)
    (rival_summary,) = rival_summaries
    assert rival_summary.sent == len(REPS) - 1  # everything but the row still being sent
    assert summary.sent == 1 and summary.pending == 0
    assert chase_dms(world.slack) == Counter(dict.fromkeys(REPS, 1))
