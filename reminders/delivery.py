"""Delivery shared by every job: record in the outbox first, then send what is pending.

A message is inserted under its idempotency key (job, period, recipient, subject) with
ON CONFLICT DO NOTHING, so planning it again is a no-op. Sending claims one row at a time
(pending -> sending) so that two processes never send the same row; Slack's answer is
committed straight after the call.

A claim names its owner (this process) and carries a short lease, `CLAIM_LEASE`, which a
heartbeat thread renews while the sender lives. A claim whose lease lapsed belongs to a
process that died: the next sweep hands it back to "pending", because losing a reminder is
worse than repeating one. The one possible duplicate is still a crash between Slack
accepting a message and that commit (or a process frozen for longer than the lease).

Pace: Slack lets an app post about one message a second to a channel and "several hundred"
a minute to the whole workspace, with short bursts (`SendRate`). A run sends through a
small pool of sender threads, many channels at once but never two messages to one channel
at a time, each send started only when both the channel's and the workspace's token bucket
allow it, so a run of thousands of DMs goes out at Slack's rate instead of one round trip
at a time, and without drawing 429s. The workspace's turns are shared by every run that
posts through one WebClient (a process's sweep and firings); a channel's turns are per run,
and runs in other processes keep their own: Slack's 429 is what keeps those apart.

Retries: the WebClient carries slack_sdk's retry handlers (connection errors, 429 honouring
Retry-After, 5xx). A 429 that still reaches delivery keeps its claim: the channel, and the
workspace with it (a 429 does not say which limit it was), wait out its Retry-After and the
message is sent again in the same run, up to `MAX_RATE_LIMITED_TRIES` times. A send that
still fails stays pending, due again after a backoff that grows with its attempts
(`retry_delay`); every process running the scheduler sweeps due rows of every job about
once a minute (`Delivery.sweep`) until they expire (`not_after`). A permanent error (the
channel is gone, the user is deactivated) marks it failed.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from domain.clock import Clock, SystemClock
from storage.database import Database
from storage.leases import renewing
from storage.outbox import OutboxRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChartFile:
    """A file posted with a message (the digest's chart), uploaded with files_upload_v2."""

    name: str
    title: str
    content: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    """One message a job wants sent; (job, period, recipient, subject) is its identity."""

    recipient: str  # Slack user id (a DM) or channel id
    subject: str
    period: str
    text: str
    blocks: Sequence[Mapping[str, Any]] = ()
    file: ChartFile | None = None
    # After this instant the message is no longer worth sending (a chase after the day ends).
    not_after: dt.datetime | None = None


# How long a claim stays valid without renewal; the heartbeat renews it three times as often,
# so a live sender never loses a row, and a dead one's rows are free within a sweep or two.
CLAIM_LEASE = dt.timedelta(seconds=45)
# A failed send is due again after 30 s, then 1, 2, 4 ... minutes, at most half an hour apart.
FIRST_RETRY_DELAY = dt.timedelta(seconds=30)
MAX_RETRY_DELAY = dt.timedelta(minutes=30)
# After this many failed attempts (about three hours of backoff) a message is given up on.
MAX_ATTEMPTS = 12
# Errors that no retry can fix.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "user_not_found",
        "user_disabled",
        "account_inactive",
        "cannot_dm_bot",
        "invalid_blocks",
        "msg_too_long",
        "invalid_auth",
        "not_authed",
        "missing_scope",
    }
)

# A message Slack keeps answering 429 is left to the sweeper's backoff after this many tries.
MAX_RATE_LIMITED_TRIES = 5


@dataclass(frozen=True)
class SendRate:
    """How fast a run posts: Slack's limits on chat.postMessage, and how many sends at once.

    Slack documents about 1 message a second per channel with short bursts, and a workspace
    limit of "several hundred messages per minute" with no exact figure
    (docs.slack.dev/reference/methods/chat.postMessage); 300 a minute is its low end, so a
    run stays under it rather than learning it from 429s. The bursts are kept small: Slack
    does not say how big its own are, and a run that empties Slack's bucket at the start has
    no room left for a post that arrives early. `senders` bounds the threads
    (and database connections) one run uses: four keep several hundred a minute flowing
    even when each post takes half a second to answer.

    `time_scale` is for benchmarks only: against a fake Slack whose clock runs that many
    times faster, rates are multiplied and waits (Retry-After included) divided by it.
    """

    per_channel_per_second: float = 1.0
    channel_burst: int = 2
    workspace_per_minute: float = 300.0
    workspace_burst: int = 10
    senders: int = 4
    time_scale: float = 1.0
    # Send in the order planned rather than the busiest channel first: for a reader watching
    # the messages go by (the demo's console), not for throughput.
    in_plan_order: bool = False


DEFAULT_SEND_RATE = SendRate()


class _Bucket:
    """A token bucket in real seconds, safe to share between runs on different threads.

    Between one run's `ready_at` and its `take` another run may take the token; the bucket
    then goes into debt (fewer than zero tokens) and everyone's next wait is longer, so the
    shared rate holds, give or take one post.
    """

    def __init__(self, *, per_second: float, burst: int) -> None:
        self.per_second, self.burst = per_second, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()
        self.blocked_until = 0.0
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(now - self.at, 0.0) * self.per_second)
        self.at = max(self.at, now)

    def ready_at(self, now: float) -> float:
        """Return the monotonic time at which a token is free (now or later)."""
        with self._lock:
            self._refill(now)
            refill = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.per_second
            return max(now + refill, self.blocked_until)

    def take(self, now: float) -> None:
        with self._lock:
            self._refill(now)
            self.tokens -= 1

    def refund(self) -> None:
        with self._lock:
            self.tokens = min(self.burst, self.tokens + 1)

    def block(self, until: float) -> None:
        """Hold every token until `until` (a 429's Retry-After), and start empty after it."""
        with self._lock:
            self.blocked_until = max(self.blocked_until, until)
            self.tokens = min(self.tokens, 0.0)


# The workspace's rate is one per Slack client: a sweep running beside a job's firing in the
# same process (they share the process's WebClient) shares it instead of doubling it.
_workspace_buckets: weakref.WeakKeyDictionary[WebClient, _Bucket] = weakref.WeakKeyDictionary()
_workspace_buckets_lock = threading.Lock()


def _workspace_bucket(client: WebClient, rate: SendRate) -> _Bucket:
    """Return the workspace bucket every run posting through `client` takes its turns from."""
    per_second = rate.workspace_per_minute / 60 * rate.time_scale
    with _workspace_buckets_lock:
        bucket = _workspace_buckets.get(client)
        if bucket is None or (bucket.per_second, bucket.burst) != (
            per_second,
            float(rate.workspace_burst),
        ):
            bucket = _workspace_buckets[client] = _Bucket(
                per_second=per_second, burst=rate.workspace_burst
            )
        return bucket


@dataclass(frozen=True)
class _RateLimited:
    """Slack answered 429: nothing was posted; wait `retry_after` Slack seconds and resend."""

    retry_after: float


class _Held:
    """The rows this run is sending, shared by the senders and the lease heartbeat."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    def add(self, message_id: int) -> None:
        with self._lock:
            self._ids.add(message_id)

    def discard(self, message_id: int) -> None:
        with self._lock:
            self._ids.discard(message_id)

    def snapshot(self) -> list[int]:
        with self._lock:
            return list(self._ids)


@dataclass
class _Queued:
    """One message waiting for its channel; `row` is set once it is claimed."""

    message_id: int
    row: dict[str, Any] | None = None
    rate_limited_tries: int = 0


_process_owner: tuple[int, str] | None = None


def process_owner() -> str:
    """Return this process's claim owner id: host, pid and a nonce (pids get reused)."""
    global _process_owner
    # Recomputed in a forked child, which must not renew its parent's claims.
    if _process_owner is None or _process_owner[0] != os.getpid():
        owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        _process_owner = (os.getpid(), owner[:120])
    return _process_owner[1]


def retry_delay(attempts: int) -> dt.timedelta:
    """Return how long a message that failed `attempts` times waits before the next try."""
    doublings = min(max(attempts - 1, 0), 16)
    return min(FIRST_RETRY_DELAY * 2**doublings, MAX_RETRY_DELAY)


@dataclass(frozen=True)
class DeliverySummary:
    """What one run of delivery did: sent now, still pending, given up on, too late to send."""

    sent: int
    pending: int
    failed: int
    expired: int = 0

    def line(self) -> str:
        text = f"sent {self.sent}, pending {self.pending}, failed {self.failed}"
        return text + (f", expired {self.expired}" if self.expired else "")

    @property
    def complete(self) -> bool:
        return self.pending == 0 and self.failed == 0


class Delivery:
    def __init__(
        self,
        *,
        database: Database,
        client: WebClient,
        wall_clock: Clock | None = None,
        owner: str | None = None,
        lease: dt.timedelta = CLAIM_LEASE,
        rate: SendRate = DEFAULT_SEND_RATE,
    ) -> None:
        self.database = database
        self.client = client
        # Leases, backoff and sent_at use the real time even when a job runs "as of" another.
        self.wall_clock = wall_clock or SystemClock()
        self.owner = owner or process_owner()
        self.lease = lease
        self.rate = rate

    def record(self, job: str, messages: list[OutgoingMessage]) -> int:
        """Record `messages` in the outbox; return how many were new (the rest were known)."""
        if not messages:
            return 0
        rows = [
            {
                "job": job,
                "period": m.period,
                "recipient": m.recipient,
                "subject": m.subject,
                "text": m.text,
                "blocks": json.dumps(list(m.blocks)) if m.blocks else None,
                "file_name": m.file.name if m.file else None,
                "file_title": m.file.title if m.file else None,
                "file_content": m.file.content if m.file else None,
                "not_after": m.not_after,
                "created_at": self.wall_clock.now(),
            }
            for m in messages
        ]
        with self.database.session() as session:
            return OutboxRepository(session).insert_new(rows)

    def send_pending(self, job: str, *, now: dt.datetime) -> DeliverySummary:
        """Send every pending message of `job`, backoff or not; return what was sent and left.

        A job's own run (a firing, `dealbot jobs run`) is someone asking for it now, so rows
        still backing off go too; the sweeper is what paces retries.
        """
        return self._deliver(job=job, now=now, respect_backoff=False)

    def sweep(self) -> DeliverySummary:
        """Send the pending messages of every job that are due by now; return the counts."""
        return self._deliver(job=None, now=self.wall_clock.now(), respect_backoff=True)

    def _deliver(
        self, *, job: str | None, now: dt.datetime, respect_backoff: bool
    ) -> DeliverySummary:
        wall_now = self.wall_clock.now()
        with self.database.session() as session:
            outbox = OutboxRepository(session)
            outbox.release_lapsed_claims(now=wall_now, job=job)
            expired = outbox.expire(now=now, job=job)
            candidates = outbox.pending_sends(job=job, due_by=wall_now if respect_backoff else None)
        sent = failed = 0
        if candidates:
            sent, failed = self._send_all(candidates)
        with self.database.session() as session:
            pending = OutboxRepository(session).count_pending(now=self.wall_clock.now(), job=job)
        return DeliverySummary(sent=sent, pending=pending, failed=failed, expired=expired)

    def _send_all(self, candidates: list[tuple[int, str]]) -> tuple[int, int]:
        """Send (message id, channel) pairs at Slack's rate; return how many sent and failed.

        One thread dispatches: it hands a channel's next message to the sender pool only
        when no other message to that channel is in flight and both token buckets allow
        it. Of the channels ready, the one with the most messages left goes first (oldest
        first among equals): a busy channel can take only one a second, so it is the run's
        critical path, and the DMs fill the workspace's rate around it. The senders claim,
        post and record; a 429 comes back here so the waits are decided in one place.
        """
        rate, scale = self.rate, self.rate.time_scale
        workspace = _workspace_bucket(self.client, rate)
        queues: dict[str, deque[_Queued]] = {}
        for message_id, channel in candidates:
            queues.setdefault(channel, deque()).append(_Queued(message_id))
        order_of = {channel: order for order, channel in enumerate(queues)}
        buckets = {
            channel: _Bucket(
                per_second=rate.per_channel_per_second * scale, burst=rate.channel_burst
            )
            for channel in queues
        }

        # Idle channels with work left: ready now (most left first), or waiting for a token.
        def priority(channel: str) -> tuple[int, int, str]:
            left = 0 if rate.in_plan_order else -len(queues[channel])
            return (left, order_of[channel], channel)

        ready = [priority(channel) for channel in queues]
        heapq.heapify(ready)
        waiting: list[tuple[float, str]] = []
        in_flight: dict[Future[str | _RateLimited], tuple[str, _Queued]] = {}
        sent = failed = 0
        with (
            self._heartbeat() as held,
            ThreadPoolExecutor(max_workers=rate.senders, thread_name_prefix="dealbot-send") as pool,
        ):
            while ready or waiting or in_flight:
                now = time.monotonic()
                while waiting and waiting[0][0] <= now:
                    _, channel = heapq.heappop(waiting)
                    heapq.heappush(ready, priority(channel))
                timeout: float | None = waiting[0][0] - now if waiting else None
                if ready and len(in_flight) < rate.senders:
                    channel = ready[0][2]
                    start = max(buckets[channel].ready_at(now), workspace.ready_at(now))
                    if start <= now:
                        heapq.heappop(ready)
                        buckets[channel].take(now)
                        workspace.take(now)
                        item = queues[channel].popleft()
                        future = pool.submit(self._claim_and_send, item, held)
                        in_flight[future] = (channel, item)
                        continue
                    timeout = min(timeout, start - now) if timeout is not None else start - now
                if not in_flight:
                    time.sleep(timeout or 0)
                    continue
                done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    channel, item = in_flight.pop(future)
                    outcome = future.result()  # a crash in a sender ends the run, as before
                    if isinstance(outcome, _RateLimited):
                        until = time.monotonic() + outcome.retry_after / scale
                        buckets[channel].block(until)
                        workspace.block(until)
                        queues[channel].appendleft(item)
                    elif outcome == "skipped":
                        buckets[channel].refund()
                        workspace.refund()
                    elif outcome == "sent":
                        sent += 1
                    elif outcome == "failed":
                        failed += 1
                    if queues[channel]:
                        at = buckets[channel].ready_at(time.monotonic())
                        heapq.heappush(waiting, (at, channel))
        return sent, failed

    def _claim_and_send(self, item: _Queued, held: _Held) -> str | _RateLimited:
        """Claim the message (once per run) and send it; return the outcome for the dispatcher.

        "skipped" means another process or run holds it. A rate-limited message keeps its
        claim (and its lease, renewed by the heartbeat) until it is sent or given up on.
        """
        if item.row is None:
            claimed_at = self.wall_clock.now()
            with self.database.session() as session:
                row = OutboxRepository(session).claim(
                    item.message_id,
                    at=claimed_at,
                    owner=self.owner,
                    lease_until=claimed_at + self.lease,
                )
            if row is None:
                return "skipped"
            item.row = row
            held.add(item.message_id)
        outcome = self._send(
            item.row, last_try=item.rate_limited_tries + 1 >= MAX_RATE_LIMITED_TRIES
        )
        if isinstance(outcome, _RateLimited):
            item.rate_limited_tries += 1
        else:
            held.discard(item.message_id)
        return outcome

    @contextmanager
    def _heartbeat(self) -> Iterator[_Held]:
        """Yield the set of rows being sent; a thread renews their leases until the exit.

        A send can outlast the lease (Slack's Retry-After, a slow upload), so the renewal
        cannot wait for the next row. When the process dies the thread dies with it, and
        the lease lapses: that is how a dead claim is told from a slow one.
        """
        held = _Held()

        def renew() -> None:
            with self.database.session() as session:
                OutboxRepository(session).renew_leases(
                    held.snapshot(),
                    owner=self.owner,
                    lease_until=self.wall_clock.now() + self.lease,
                )

        with renewing(
            every=self.lease.total_seconds() / 3, renew=renew, name="dealbot-outbox-lease"
        ):
            yield held

    def _send(self, row: dict[str, Any], *, last_try: bool = True) -> str | _RateLimited:
        """Send one claimed row; return "sent", "pending", "failed" or a 429 to wait out.

        `row` is updated once Slack accepted the post, so a resend after a 429 on the file
        upload does not post the message twice.
        """
        message_id = row["id"]
        channel = row["slack_channel"]
        try:
            if row["slack_ts"] is None:
                if row["file_content"] is not None and channel is None:
                    # files_upload_v2 needs a channel id, not a user id: open the DM first.
                    channel = self._channel_for(row["recipient"])
                answer = self.client.chat_postMessage(
                    channel=channel or row["recipient"],
                    text=row["text"],
                    blocks=json.loads(row["blocks"]) if row["blocks"] else None,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                channel = answer["channel"]
                # Committed at once: this is the crash window the module docstring describes.
                with self.database.session() as session:
                    OutboxRepository(session).mark_posted(
                        message_id, channel=channel, ts=answer["ts"]
                    )
                row["slack_channel"], row["slack_ts"] = channel, answer["ts"]
            if row["file_content"] is not None and not row["file_sent"]:
                self.client.files_upload_v2(
                    channel=channel,
                    content=row["file_content"],
                    filename=row["file_name"],
                    title=row["file_title"],
                )
        except SlackApiError as error:
            if error.response.status_code == 429 and not last_try:
                return _RateLimited(retry_after=_retry_after(error.response.headers))
            code = str(error.response.get("error") or f"http {error.response.status_code}")
            permanent = code in PERMANENT_ERRORS
            return self._failed(message_id, code, permanent=permanent)
        except (SlackClientError, OSError) as error:
            # Connection refused or dropped, timeouts: the retry handler already tried.
            return self._failed(message_id, type(error).__name__, permanent=False)
        except Exception as error:
            # An odd answer must not stop the other recipients' messages; retried next run.
            logger.exception("outbox message %s: unexpected error while sending", message_id)
            return self._failed(message_id, type(error).__name__, permanent=False)
        with self.database.session() as session:
            OutboxRepository(session).mark_sent(message_id, at=self.wall_clock.now())
        return "sent"

    def _channel_for(self, recipient: str) -> str:
        if recipient[:1] in ("U", "W"):
            return str(self.client.conversations_open(users=recipient)["channel"]["id"])
        return recipient

    def _failed(self, message_id: int, error: str, *, permanent: bool) -> str:
        with self.database.session() as session:
            status = OutboxRepository(session).mark_failed_attempt(
                message_id,
                error=error[:200],
                permanent=permanent,
                max_attempts=MAX_ATTEMPTS,
                retry_at=lambda attempts: self.wall_clock.now() + retry_delay(attempts),
            )
        logger.warning("outbox message %s not sent (%s); now %s", message_id, error, status)
        return status


def _retry_after(headers: Mapping[str, Any]) -> float:
    """Return a 429's Retry-After in seconds; 1 when it is missing or odd, as slack_sdk does."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            text = value[0] if isinstance(value, list) and value else value
            try:
                return max(0.0, float(text))
            except (TypeError, ValueError):
                break
    return 1.0
