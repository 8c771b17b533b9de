"""The Slack Web API client, and the few facts about users that only Slack knows."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from domain.errors import AdminUnknown
from handlers import messages

logger = logging.getLogger(__name__)

# Work done after the answer (jobs, lazy listeners) may wait out a slow Slack.
WEB_API_TIMEOUT_SECONDS = 10
# A call made while a slash command's user waits shares Slack's 3 s budget for the answer.
IN_REQUEST_TIMEOUT_SECONDS = 1.5
# Answers that say "not now" rather than "no": the same question may succeed later.
TRANSIENT_ERRORS = frozenset({"ratelimited", "fatal_error", "internal_error", "request_timeout"})


def build_web_client(*, token: str | None, base_url: str) -> WebClient:
    """Return a WebClient for `base_url` that retries connection errors, 429s and 5xxs."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=WEB_API_TIMEOUT_SECONDS,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def build_in_request_client(client: WebClient) -> WebClient:
    """Return a copy of `client` for calls made before a request is answered: one short try.

    The patient client's retries wait out a 429's Retry-After and back off on 5xx, which
    can spend Slack's 3 s many times over; what is asked while the user waits is asked
    once, and a slow Slack gets the caller's fallback instead of a timed-out command.
    """
    return WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=IN_REQUEST_TIMEOUT_SECONDS,
        retry_handlers=[],
    )


class SlackUnavailable(Exception):
    """Slack did not answer in time, or answered "not now"; asking later may work."""


class SlackDirectory:
    """Answers "is this user an admin?" and "who is this user?" from `users.info`, cached.

    Only asked when a user changes something that is not theirs, or when a draft needs a
    name, so the common path never waits on Slack.
    """

    CACHE_SECONDS = 300

    def __init__(self, *, client: WebClient, configured_admins: tuple[str, ...] = ()) -> None:
        self.client = client
        self.configured_admins = frozenset(configured_admins)
        self._users: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def is_admin(self, user_id: str) -> bool:
        """Return whether the user is a configured admin or a workspace admin or owner.

        Raises AdminUnknown when Slack cannot say right now: refusing a real admin as
        "not allowed" would be wrong, and so would letting anyone through.
        """
        if user_id in self.configured_admins:
            return True
        try:
            user = self._user(user_id)
        except SlackUnavailable as error:
            raise AdminUnknown(messages.ADMIN_UNKNOWN) from error
        return bool(user and (user.get("is_admin") or user.get("is_owner")))

    def name_and_email(self, user_id: str) -> tuple[str | None, str | None]:
        """Return the user's real name and email (users:read.email), cached; Nones if unknown.

        A follow-up draft is signed with the name and comes From the email address.
        """
        try:
            user = self._user(user_id)
        except SlackUnavailable:
            return None, None
        if user is None:
            return None, None
        profile = user.get("profile") or {}
        name = profile.get("real_name") or user.get("real_name") or user.get("name")
        return name or None, profile.get("email") or None

    def _user(self, user_id: str) -> dict[str, Any] | None:
        """Return the user's `users.info` record, cached for CACHE_SECONDS; None if it failed.

        A failure is not cached, so the next request asks Slack again. Raises
        SlackUnavailable when Slack is slow, unreachable or answers "not now".
        """
        now = time.monotonic()
        with self._lock:
            cached = self._users.get(user_id)
        if cached and now - cached[0] < self.CACHE_SECONDS:
            return cached[1]
        try:
            user: dict[str, Any] = self.client.users_info(user=user_id)["user"]
        except SlackApiError as error:
            reason = error.response.get("error")
            logger.warning("users.info failed for %s: %s", user_id, reason)
            if reason in TRANSIENT_ERRORS or error.response.status_code >= 500:
                raise SlackUnavailable(reason) from error
            return None
        except (SlackClientError, OSError) as error:  # timeouts and refused connections
            logger.warning("users.info failed for %s: %s", user_id, type(error).__name__)
            raise SlackUnavailable(type(error).__name__) from error
        with self._lock:
            self._users[user_id] = (now, user)
        return user
