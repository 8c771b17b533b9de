"""Slack's retries and byte-identical replays of a request take effect once.

Slack retries an event it thinks we missed (`X-Slack-Retry-Num`), and anyone who saw a
signed request can send it again while its signature is fresh (five minutes). Each
request leaves a receipt in the database, so this holds across every instance.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
from collections.abc import Callable

from slack_bolt import BoltRequest, BoltResponse

from domain.clock import Clock
from storage.database import Database
from storage.receipts import RequestReceiptRepository

logger = logging.getLogger(__name__)

# Bolt refuses a timestamp older than five minutes; the margin covers clock skew.
REPLAY_WINDOW = dt.timedelta(minutes=10)
# Slack retries an event up to three times over about five minutes; an hour is ample.
EVENT_RETRY_WINDOW = dt.timedelta(hours=1)
# Expired receipts are swept every this many requests, so the table stays small.
PURGE_EVERY = 200


def receipt_key(request: BoltRequest) -> tuple[str, dt.timedelta] | None:
    """Return the receipt key of a request from Slack and how long it holds; None if unsigned.

    An event is keyed by its event id (a retry is signed anew, with a new timestamp);
    anything else by its signed timestamp and body, so only a byte-identical copy matches.
    Requests with no timestamp come from the offline demo, not from Slack, and are left be.
    """
    timestamp = (request.headers.get("x-slack-request-timestamp") or [""])[0]
    if not timestamp:
        return None
    body = request.body
    event_id = body.get("event_id") if body.get("type") == "event_callback" else None
    if isinstance(event_id, str) and event_id:
        source, window = f"event:{event_id}", EVENT_RETRY_WINDOW
    else:
        source, window = f"body:{timestamp}:{request.raw_body}", REPLAY_WINDOW
    return hashlib.sha256(source.encode("utf-8")).hexdigest(), window


def once_per_request(
    *, database: Database, clock: Clock
) -> Callable[[BoltRequest, Callable[[], BoltResponse]], BoltResponse | None]:
    """Return Bolt middleware that answers a retry or replay with an empty 200 and stops it.

    It runs after Bolt's signature check, so only genuine Slack requests leave receipts.
    """
    counter = itertools.count(1)

    def once(req: BoltRequest, next_: Callable[[], BoltResponse]) -> BoltResponse | None:
        key = receipt_key(req)
        if key is None:
            return next_()
        digest, window = key
        now = clock.now()
        with database.session() as session:
            receipts = RequestReceiptRepository(session)
            if next(counter) % PURGE_EVERY == 0:
                receipts.purge_expired(now=now)
            first = receipts.claim(digest, now=now, expires_at=now + window)
        if first:
            return next_()
        retry = (req.headers.get("x-slack-retry-num") or [""])[0]
        logger.info("Slack request already handled; ignored its %s", "retry" if retry else "replay")
        return BoltResponse(status=200, body="")

    return once
