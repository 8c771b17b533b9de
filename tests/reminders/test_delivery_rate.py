"""Delivery at Slack's rate: senders in parallel across channels, one at a time per channel.

The fake Slack here enforces its posting limits (`PostingLimits`) and watches the client:
posts to a channel that overlap, and posts sent before a 429's Retry-After was over.
Nothing here is timed; the rate itself is measured by `python -m bench.delivery`.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.fake_slack import FakeSlackWebAPI, PostingLimits
from domain.clock import FixedClock
from reminders.delivery import Delivery, DeliverySummary, OutgoingMessage, SendRate
from storage.database import Database
from storage.migrate import upgrade
from storage.outbox import OutboxRepository
from tests.databases import BACKENDS, database_url_for
from tests.fakes.fixtures import assert_no_violations
from tests.fakes.slack_spec import slack_spec_dir

NOW = dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC)
JOB = "digest"
# Limits so generous that only the rule under test can keep two posts apart.
UNLIMITED = PostingLimits(
    per_channel_per_second=10_000,
    channel_burst=10_000,
    workspace_per_minute=1_000_000,
    workspace_burst=10_000,
)
FAST = SendRate(
    per_channel_per_second=10_000,
    channel_burst=10_000,
    workspace_per_minute=1_000_000,
    workspace_burst=10_000,
    senders=4,
)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database on each backend: claims are SQL, so both are tested."""
    with database_url_for(request.param, tmp_path) as url:
        upgrade(url)
        built = Database.from_url(url)
        try:
            yield built
        finally:
            built.dispose()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    with database_url_for("sqlite", tmp_path) as url:
        upgrade(url)
        built = Database.from_url(url)
        try:
            yield built
        finally:
            built.dispose()


def limited_slack(limits: PostingLimits) -> FakeSlackWebAPI:
    return FakeSlackWebAPI(spec_dir=slack_spec_dir(), posting_limits=limits)


def plain_client(slack: FakeSlackWebAPI) -> WebClient:
    """A client without slack_sdk's rate-limit handler: delivery meets every 429 itself."""
    return WebClient(token="xoxb-test", base_url=slack.base_url, timeout=5)


def messages_to(channels: dict[str, int]) -> list[OutgoingMessage]:
    """Return `count` numbered messages to each channel, a channel's messages in a row."""
    return [
        OutgoingMessage(
            recipient=channel, subject=f"{channel}-{n}", period="w48", text=f"{channel} #{n}"
        )
        for channel, count in channels.items()
        for n in range(count)
    ]


def delivery(database: Database, client: WebClient, rate: SendRate, owner: str) -> Delivery:
    return Delivery(
        database=database, client=client, wall_clock=FixedClock(at=NOW), owner=owner, rate=rate
    )


def posted_texts(slack: FakeSlackWebAPI) -> Counter[str]:
    return Counter(call.args["text"] for call in slack.calls_to("chat.postMessage"))


def test_two_messages_to_one_channel_are_never_in_flight_at_once(database: Database) -> None:
    # Each post takes 50 ms to answer, so two to one channel sent together would overlap.
    with limited_slack(replace(UNLIMITED, latency=0.05)) as slack:
        sender = delivery(database, plain_client(slack), FAST, owner="web-1")
        sender.record(JOB, messages_to({"C0EAST": 6, "C0WEST": 6, "U0ANA": 1, "U0BEN": 1}))
        summary = sender.send_pending(JOB, now=NOW)
        report = slack.posting_report()
        assert_no_violations(slack)
    assert summary == DeliverySummary(sent=14, pending=0, failed=0)
    assert report.overlapping == 0
    assert report.most_in_flight >= 2  # the channels themselves did go out in parallel
    assert set(posted_texts(slack).values()) == {1}


def test_a_429_with_retry_after_is_honoured_and_the_message_is_sent_once(
    sqlite_database: Database,
) -> None:
    # Slack allows one post to the channel now and one a Slack second later (50 ms here);
    # delivery is told nothing of the channel limit, so it meets the 429s and waits them out.
    limits = PostingLimits(per_channel_per_second=1, channel_burst=1, speedup=20)
    blind = replace(FAST, time_scale=20)
    with limited_slack(limits) as slack:
        sender = delivery(sqlite_database, plain_client(slack), blind, owner="web-1")
        sender.record(JOB, messages_to({"C0EAST": 3}))
        summary = sender.send_pending(JOB, now=NOW)
        report = slack.posting_report()
        attempts = slack.calls_to("chat.postMessage", include_failed=True)
        assert_no_violations(slack)
    assert report.rate_limited >= 1
    assert {a.fault for a in attempts if a.failed} == {"status 429"}
    assert report.early_retries == 0  # every resend came after its Retry-After
    assert summary == DeliverySummary(sent=3, pending=0, failed=0)
    assert posted_texts(slack) == Counter({"C0EAST #0": 1, "C0EAST #1": 1, "C0EAST #2": 1})
    with sqlite_database.session() as session:
        rows = OutboxRepository(session).messages(JOB)
        # The claim was kept through the waits: one attempt each, not a failure and a retry.
        assert [(row.status, row.attempts) for row in rows] == [("sent", 1)] * 3


def test_a_429_that_persists_leaves_the_message_pending_for_the_sweeper(
    sqlite_database: Database,
) -> None:
    with limited_slack(UNLIMITED) as slack:
        slack.fail_next(100, status=429, retry_after=0, method="chat.postMessage")
        sender = delivery(sqlite_database, plain_client(slack), FAST, owner="web-1")
        sender.record(JOB, messages_to({"C0EAST": 1}))
        summary = sender.send_pending(JOB, now=NOW)
        tries = len(slack.calls_to("chat.postMessage", include_failed=True))
    assert (summary.sent, summary.pending, summary.failed) == (0, 1, 0)
    assert tries == 5  # MAX_RATE_LIMITED_TRIES, then the backoff of any failed send
    with sqlite_database.session() as session:
        (row,) = OutboxRepository(session).messages(JOB)
        assert (row.status, row.last_error, row.next_attempt_at is not None) == (
            "pending",
            "ratelimited",
            True,
        )


def test_parallel_senders_across_channels_each_send_once(database: Database) -> None:
    channels = {f"C0TEAM{i}": 3 for i in range(8)} | {f"U0REP{i:02d}": 1 for i in range(16)}
    with limited_slack(replace(UNLIMITED, latency=0.02)) as slack:
        senders = [
            delivery(database, plain_client(slack), FAST, owner=name) for name in ("web-1", "web-2")
        ]
        senders[0].record(JOB, messages_to(channels))
        # Two processes' runs at once, each with its own pool: the claims keep them apart.
        barrier = threading.Barrier(2)
        summaries: list[DeliverySummary] = []

        def run(sender: Delivery) -> None:
            barrier.wait()
            summaries.append(sender.send_pending(JOB, now=NOW))

        threads = [threading.Thread(target=run, args=(s,)) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        report = slack.posting_report()
        assert_no_violations(slack)
    assert len(summaries) == 2
    assert sum(s.sent for s in summaries) == 40
    assert all(s.pending == 0 and s.failed == 0 for s in summaries)
    assert posted_texts(slack) == Counter(m.text for m in messages_to(channels))
    # (Two runs do not share their channels' turns, so only the claims are asserted here.)
    assert report.most_in_flight >= 2
    with database.session() as session:
        rows = OutboxRepository(session).messages(JOB)
        assert {row.status for row in rows} == {"sent"}
        assert {row.attempts for row in rows} == {1}


def test_two_runs_through_one_client_share_the_workspaces_rate(
    sqlite_database: Database,
) -> None:
    # Slack: 1 a (Slack) second for the workspace after a burst of 4, 10 times faster here.
    # Each run alone would burst 1 and then keep to that rate; two runs pacing apart would
    # post twice as fast and be refused within a few seconds. Sharing the client's bucket
    # (a process's sweep beside its firing) keeps the pair at the rate, 3 posts to spare.
    limits = PostingLimits(workspace_per_minute=60, workspace_burst=4, speedup=10)
    rate = replace(FAST, workspace_per_minute=60, workspace_burst=1, time_scale=10)
    with limited_slack(limits) as slack:
        client = plain_client(slack)
        runs = [delivery(sqlite_database, client, rate, owner="web-1") for _ in range(2)]
        runs[0].record("chase", messages_to({f"U0REP{i}": 1 for i in range(6)}))
        runs[1].record("digest", messages_to({f"U0MGR{i}": 1 for i in range(6)}))
        barrier = threading.Barrier(2)
        summaries: list[DeliverySummary] = []

        def run(index: int) -> None:
            barrier.wait()
            summaries.append(runs[index].send_pending(("chase", "digest")[index], now=NOW))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        report = slack.posting_report()
    assert sorted(s.sent for s in summaries) == [6, 6]
    assert report.rate_limited == 0
