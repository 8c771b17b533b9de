"""10,000 DMs against a fake Slack that enforces Slack's limits: what share of the rate is used?

    python -m bench.delivery [--messages 10000] [--channels 2000] [--speedup 10]
                             [--senders 4] [--latency 0.2] [--database URL]

Records `--messages` messages in the outbox of a fresh SQLite file (or an empty, migrated
`--database`), then sends them with `Delivery.send_pending`, the path of every job run,
against the fake Slack Web API (`bot/fake_slack.py`) with its posting limits on: 1 message a
second per channel (burst 3), 300 a minute for the workspace (burst 20; Slack documents only
"several hundred messages per minute", see `PostingLimits`), HTTP 429 with Retry-After
beyond, each post answered after `--latency` Slack seconds. One percent of the channels are
busy team channels that get a tenth of the messages, in a row; the rest are DMs.

`--speedup` runs the fake's clock (rates, waits, latency) that many times faster, and
delivery is told the same factor (`SendRate.time_scale`), so 10,000 messages take minutes,
not half an hour. What the speedup does not shrink is dealbot's own work per message (a
claim and two commits, the HTTP round trip): the share of the allowed rate is the figure
that counts, and it is harder to reach sped up than at Slack's real pace. The WebClient is
the production one without slack_sdk's rate-limit handler, whose wait cannot be scaled:
delivery's own 429 handling, which waits out Retry-After in the run, answers instead.

The allowed rate is the fastest the fake's limits let these messages out: the longer of
(messages - workspace burst) / workspace rate and, for the busiest channel,
(its messages - channel burst) / channel rate. Prints it, the achieved rate and their
ratio (the share used), duplicates (must be 0), 429s seen, posts sent to a channel before
its Retry-After was over, posts that overlapped another to the same channel (must be 0),
the most posts in flight at once and the wall time. Exit 0 when every message went out
once at >= 90% of the allowed rate with no overlap; 1 when missed; 2 when the benchmark broke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import func, select

from bot.fake_slack import FakeSlackWebAPI, PostingLimits
from bot.slack import WEB_API_TIMEOUT_SECONDS
from domain.clock import SystemClock
from reminders.delivery import Delivery, OutgoingMessage, SendRate
from storage.database import Database
from storage.migrate import upgrade
from storage.models import OutboxMessage

JOB = "bench-delivery"
TARGET_SHARE = 0.90


def plan_messages(count: int, channels: int) -> list[OutgoingMessage]:
    """Return `count` messages: a tenth to 1% of the channels (in a row), the rest as DMs."""
    team_channels = [f"C0TEAM{i:04d}" for i in range(max(1, channels // 100))]
    dms = [f"U0REP{i:05d}" for i in range(max(1, channels - len(team_channels)))]
    to_teams = count // 10
    recipients = [team_channels[i * len(team_channels) // to_teams] for i in range(to_teams)]
    recipients += [dms[i % len(dms)] for i in range(count - to_teams)]
    return [
        OutgoingMessage(
            recipient=recipient,
            subject=f"message-{index:06d}",
            period="bench",
            text=f"Message {index:06d}",
        )
        for index, recipient in enumerate(recipients)
    ]


def allowed_seconds(messages: list[OutgoingMessage], limits: PostingLimits) -> float:
    """Return the fewest Slack seconds the fake's limits allow these messages to take."""
    per_channel = Counter(m.recipient for m in messages)
    workspace = (len(messages) - limits.workspace_burst) / (limits.workspace_per_minute / 60)
    busiest = (max(per_channel.values()) - limits.channel_burst) / limits.per_channel_per_second
    return max(workspace, busiest, 1e-9)


def bench_client(base_url: str) -> WebClient:
    """Return the production WebClient minus the rate-limit handler (see the module doc)."""
    return WebClient(
        token="xoxb-bench",
        base_url=base_url,
        timeout=WEB_API_TIMEOUT_SECONDS,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def run(arguments: argparse.Namespace, url: str) -> int:
    limits = PostingLimits(latency=arguments.latency, speedup=arguments.speedup)
    rate = SendRate(senders=arguments.senders, time_scale=arguments.speedup)
    messages = plan_messages(arguments.messages, arguments.channels)
    database = Database.from_url(url)
    try:
        with database.session() as session:
            if session.scalar(select(func.count()).select_from(OutboxMessage)):
                print("benchmark failed: the outbox of --database is not empty", file=sys.stderr)
                return 2
        delivery_kwargs = {"database": database, "wall_clock": SystemClock(), "rate": rate}
        with FakeSlackWebAPI(posting_limits=limits) as slack:
            delivery = Delivery(client=bench_client(slack.base_url), **delivery_kwargs)
            delivery.record(JOB, messages)
            started = time.monotonic()
            summary = delivery.send_pending(JOB, now=dt.datetime.now(dt.UTC))
            wall = time.monotonic() - started
            report = slack.posting_report()
            posted = Counter(c.args["text"] for c in slack.calls_to("chat.postMessage"))
        with database.session() as session:
            statuses = dict(
                session.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                ).all()
            )
    finally:
        database.dispose()

    count = len(messages)
    duplicates = sum(n - 1 for n in posted.values() if n > 1)
    missing = count - len(posted)
    allowed_per_minute = count / allowed_seconds(messages, limits) * 60
    achieved_per_minute = count / wall * 60 / arguments.speedup
    share = achieved_per_minute / allowed_per_minute
    busiest = max(Counter(m.recipient for m in messages).values())
    print(
        f"{count} messages to {len(set(m.recipient for m in messages))} channels "
        f"(busiest {busiest}), {arguments.senders} senders, fake Slack {arguments.speedup:g}x "
        f"faster, post latency {arguments.latency:g} Slack s, {Path(url).suffix or url[:10]}"
    )
    print(
        f"limits: {limits.per_channel_per_second:g}/s per channel (burst "
        f"{limits.channel_burst}), {limits.workspace_per_minute:g}/min workspace (burst "
        f"{limits.workspace_burst})"
    )
    print(
        f"allowed rate   {allowed_per_minute:8.1f} msg/min of Slack time "
        f"({allowed_per_minute * arguments.speedup / 60:.1f} msg/s real)"
    )
    print(
        f"achieved rate  {achieved_per_minute:8.1f} msg/min of Slack time "
        f"({achieved_per_minute * arguments.speedup / 60:.1f} msg/s real)"
    )
    print(f"share used     {share:8.1%}  (target >= {TARGET_SHARE:.0%})")
    print(f"duplicates     {duplicates:8d}  (missing {missing}; outbox {statuses})")
    print(
        f"429s seen      {report.rate_limited:8d}  (posts before their Retry-After was over: "
        f"{report.early_retries})"
    )
    print(
        f"overlapping    {report.overlapping:8d}  posts to a channel with another in flight; "
        f"most in flight at once {report.most_in_flight}"
    )
    print(
        f"wall time      {wall:8.1f} s  (Slack time {wall * arguments.speedup / 60:.1f} min); "
        f"summary: {summary.line()}"
    )
    print(f"load average   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    passed = share >= TARGET_SHARE and duplicates == 0 and missing == 0
    passed = passed and report.overlapping == 0
    print("PASS" if passed else "MISS")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=2_000)
    parser.add_argument(
        "--speedup", type=float, default=10.0, help="run the fake's clock this much faster"
    )
    parser.add_argument("--senders", type=int, default=SendRate().senders)
    parser.add_argument(
        "--latency", type=float, default=0.2, help="seconds (Slack's) each post takes"
    )
    parser.add_argument("--database", help="an empty, migrated database URL (default: SQLite)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if arguments.database:
            return run(arguments, arguments.database)
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'delivery.sqlite3'}"
            upgrade(url)
            return run(arguments, url)
    except Exception as error:  # the benchmark broke, not the code under test
        print(f"benchmark failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
