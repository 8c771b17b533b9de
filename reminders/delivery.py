"""Delivery shared by every job: record in the outbox first, then send what is pending.

A message is inserted under its idempotency key (job, period, recipient, subject) with
ON CONFLICT DO NOTHING, so planning it again is a no-op. Sending claims one row at a time
(pending -> sending) so that two processes never send the same row; Slack's answer is
committed straight after the call. The one possible duplicate is a crash between Slack
accepting a message and that commit: such a row stays "sending" and is handed back to
"pending" after `CLAIM_LEASE`, because losing a reminder is worse than repeating one.

Retries: the WebClient carries slack_sdk's retry handlers (connection errors, 429 honouring
Retry-After, 5xx). A send that still fails stays pending for the next run; a permanent
error (the channel is gone, the user is deactivated) marks it failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from domain.clock import Clock, SystemClock
from reminders.jobs import OutgoingMessage
from storage.database import Database
from storage.reminder_repositories import OutboxRepository

logger = logging.getLogger(__name__)

# A row left "sending" this long belongs to a process that died mid-send.
CLAIM_LEASE = dt.timedelta(minutes=10)
# After this many failed runs a message is given up on and counted as failed.
MAX_ATTEMPTS = 8
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
        self, *, database: Database, client: WebClient, wall_clock: Clock | None = None
    ) -> None:
        self.database = database
        self.client = client
        # Leases and sent_at use the real time even when a job runs "as of" another time.
        self.wall_clock = wall_clock or SystemClock()

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
        """Send every pending message of `job`; return what was sent and what is left."""
        with self.database.session() as session:
            outbox = OutboxRepository(session)
            outbox.release_stale_claims(job, older_than=self.wall_clock.now() - CLAIM_LEASE)
            expired = outbox.expire(job, now=now)
            candidates = outbox.pending_ids(job)
        sent = failed = 0
        for message_id in candidates:
            with self.database.session() as session:
                row = OutboxRepository(session).claim(message_id, at=self.wall_clock.now())
            if row is None:
                continue  # another process took it
            outcome = self._send(row)
            if outcome == "sent":
                sent += 1
            elif outcome == "failed":
                failed += 1
        with self.database.session() as session:
            pending = OutboxRepository(session).count_pending(job)
        return DeliverySummary(sent=sent, pending=pending, failed=failed, expired=expired)

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
                message_id, error=error[:200], permanent=permanent, max_attempts=MAX_ATTEMPTS
            )
        logger.warning("outbox message %s not sent (%s); now %s", message_id, error, status)
        return status
