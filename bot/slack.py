"""The Slack Web API client, and the few facts about users that only Slack knows."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

logger = logging.getLogger(__name__)

# Slash commands must answer within 3 s, so one Web API call may not take all of it.
WEB_API_TIMEOUT_SECONDS = 10


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
        """Return whether the user is a configured admin or a workspace admin or owner."""
        if user_id in self.configured_admins:
            return True
        user = self._user(user_id)
        return bool(user and (user.get("is_admin") or user.get("is_owner")))

    def name_and_email(self, user_id: str) -> tuple[str | None, str | None]:
        """Return the user's real name and email (users:read.email), cached; Nones if unknown.

        A follow-up draft is signed with the name and comes From the email address.
        """
        user = self._user(user_id)
        if user is None:
            return None, None
        profile = user.get("profile") or {}
        name = profile.get("real_name") or user.get("real_name") or user.get("name")
        return name or None, profile.get("email") or None

    def _user(self, user_id: str) -> dict[str, Any] | None:
        """Return the user's `users.info` record, cached for CACHE_SECONDS; None if it failed.

        A failure is not cached, so the next request asks Slack again.
        """
        now = time.monotonic()
        with self._lock:
            cached = self._users.get(user_id)
        if cached and now - cached[0] < self.CACHE_SECONDS:
            return cached[1]
        try:
            user: dict[str, Any] = self.client.users_info(user=user_id)["user"]
        except SlackApiError as error:
            logger.warning("users.info failed for %s: %s", user_id, error.response.get("error"))
            return None
        with self._lock:
            self._users[user_id] = (now, user)
        return user
