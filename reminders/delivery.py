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

Retries: the WebClient carries slack_sdk's retry handlers (connection errors, 429 honouring
Retry-After, 5xx). A send that still fails stays pending, due again after a backoff that
grows with its attempts (`retry_delay`); every process running the scheduler sweeps due
rows of every job about once a minute (`Delivery.sweep`) until they expire (`not_after`).
A permanent error (the channel is gone, the user is deactivated) marks it failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from domain.clock import Clock, SystemClock
from storage.database import Database
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
    ) -> None:
        self.database = database
        self.client = client
        # Leases, backoff and sent_at use the real time even when a job runs "as of" another.
        self.wall_clock = wall_clock or SystemClock()
        self.owner = owner or process_owner()
        self.lease = lease

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
            candidates = outbox.pending_ids(job=job, due_by=wall_now if respect_backoff else None)
        sent = failed = 0
        if candidates:
            with self._heartbeat() as held:
                for message_id in candidates:
                    claimed_at = self.wall_clock.now()
                    with self.database.session() as session:
                        row = OutboxRepository(session).claim(
                            message_id,
                            at=claimed_at,
                            owner=self.owner,
                            lease_until=claimed_at + self.lease,
                        )
                    if row is None:
                        continue  # another process (or run) took it
                    held.add(message_id)
                    outcome = self._send(row)
                    held.discard(message_id)
                    if outcome == "sent":
                        sent += 1
                    elif outcome == "failed":
                        failed += 1
        with self.database.session() as session:
            pending = OutboxRepository(session).count_pending(now=self.wall_clock.now(), job=job)
        return DeliverySummary(sent=sent, pending=pending, failed=failed, expired=expired)

    @contextmanager
    def _heartbeat(self) -> Iterator[set[int]]:
        """Yield the set of rows being sent; a thread renews their leases until the exit.

        A send can outlast the lease (Slack's Retry-After, a slow upload), so the renewal
        cannot wait for the next row. When the process dies the thread dies with it, and
        the lease lapses: that is how a dead claim is told from a slow one.
        """
        held: set[int] = set()
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease.total_seconds() / 3):
                ids = list(held)
                try:
                    with self.database.session() as session:
                        OutboxRepository(session).renew_leases(
                            ids, owner=self.owner, lease_until=self.wall_clock.now() + self.lease
                        )
                except Exception:
                    # The database blinked; the next beat tries again well inside the lease.
                    logger.warning("renewing outbox leases failed", exc_info=True)

        thread = threading.Thread(target=renew, name="dealbot-outbox-lease", daemon=True)
        thread.start()
        try:
            yield held
        finally:
            stop.set()
            thread.join()

    def _send(self, row: dict[str, Any]) -> str:
        """Send one claimed row; return "sent", "pending" or "failed"."""
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
            if row["file_content"] is not None and not row["file_sent"]:
                self.client.files_upload_v2(
                    channel=channel,
                    content=row["file_content"],
                    filename=row["file_name"],
                    title=row["file_title"],
                )
        except SlackApiError as error:
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
