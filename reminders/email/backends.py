"""Where drafts go: one small interface, an `outbox` folder of .eml files, and Gmail.

A backend takes a finished RFC 2822 message and puts it, as a draft, in the rep's mailbox.
It never sends anything.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reminders.email.message import DraftMessage

logger = logging.getLogger(__name__)

GMAIL_COMPOSE_SCOPE = "https://www.googleapis.com/auth/gmail.compose"
GMAIL_DRAFT_LINK = "https://mail.google.com/mail/u/0/#drafts?compose={message_id}"
# execute() retries 429, 5xx and rate-limit 403s with exponential backoff; it defaults to 0.
GMAIL_NUM_RETRIES = 5
# The 403 reasons execute() retries: Gmail's per-user and per-project quotas.
GMAIL_RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded"})
GMAIL_TIMEOUT_SECONDS = 30


class MailboxUnavailable(Exception):
    """This rep's mailbox cannot take drafts now.

    `reconnect` says the rep can fix it by (re)connecting Gmail through a link; otherwise
    it is for the admin (delegation not granted, no email address in Slack).
    """

    def __init__(self, reason: str, *, reconnect: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reconnect = reconnect


class TransientEmailError(Exception):
    """Rate limits, server errors or the network outlasted the retries: try on the next run."""


class EmailBackendError(Exception):
    """The provider refused the draft for good (a malformed request, say)."""


@dataclass(frozen=True)
class Mailbox:
    """The rep's mailbox as the backend knows it; `email` is None when it cannot tell."""

    rep_id: str
    email: str | None


@dataclass(frozen=True)
class DraftResult:
    draft_id: str
    link: str  # opens the draft: a Gmail URL, or the .eml file's path
    message_id: str | None = None  # the provider's id of the draft's message
    thread_id: str | None = None
    found_existing: bool = False  # a retry found the draft an earlier attempt had made


class EmailBackend(Protocol):
    name: str

    def mailbox(self, rep_id: str, *, slack_email: str | None) -> Mailbox:
        """Return the rep's mailbox, or raise MailboxUnavailable."""
        ...

    def create_draft(
        self, message: DraftMessage, *, mailbox: Mailbox, look_first: bool
    ) -> DraftResult:
        """Put `message` in the mailbox as a draft; with `look_first`, reuse one already there."""
        ...


class OutboxBackend:
    """Drafts as .eml files in a folder: works before Google is set up, and in the demo."""

    name = "outbox"

    def __init__(self, *, directory: Path) -> None:
        self.directory = directory

    def mailbox(self, rep_id: str, *, slack_email: str | None) -> Mailbox:
        return Mailbox(rep_id=rep_id, email=slack_email)

    def path_for(self, message: DraftMessage) -> Path:
        stem = re.sub(r"[^A-Za-z0-9._-]", "", message.message_id.strip("<>").split("@")[0])
        return self.directory / f"{stem}.eml"

    def create_draft(
        self, message: DraftMessage, *, mailbox: Mailbox, look_first: bool
    ) -> DraftResult:
        path = self.path_for(message)
        # The file name comes from the Message-ID, so a retry finds what it wrote before.
        existed = path.exists()
        if not existed:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(handle, "wb") as file:
                file.write(message.to_bytes())
            os.replace(temporary, path)
        return DraftResult(draft_id=path.name, link=str(path), found_existing=existed)


class GmailCredentials(Protocol):
    """How the Gmail backend authorises as a rep: per-rep OAuth, or domain-wide delegation."""

    def mailbox(self, rep_id: str, *, slack_email: str | None) -> Mailbox: ...

    def credentials(self, mailbox: Mailbox) -> Any:
        """Return google-auth credentials acting as the mailbox's owner."""
        ...

    def revoked(self, mailbox: Mailbox) -> MailboxUnavailable:
        """Forget a grant Google refused for good (invalid_grant); return the error to raise."""
        ...

    def refused(self, mailbox: Mailbox, detail: str) -> MailboxUnavailable:
        """Return the error for any other refusal of the credentials (not retryable)."""
        ...


class GmailBackend:
    """Drafts through the Gmail API (users.drafts.create), with google-api-python-client."""

    name = "gmail"

    def __init__(
        self,
        *,
        credentials: GmailCredentials,
        api_url: str | None = None,
        num_retries: int = GMAIL_NUM_RETRIES,
        timeout: float = GMAIL_TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.credentials = credentials
        self.api_url = api_url
        self.num_retries = num_retries
        self.timeout = timeout
        self._sleep = sleep

    def mailbox(self, rep_id: str, *, slack_email: str | None) -> Mailbox:
        return self.credentials.mailbox(rep_id, slack_email=slack_email)

    def create_draft(
        self, message: DraftMessage, *, mailbox: Mailbox, look_first: bool
    ) -> DraftResult:
        from google.auth.exceptions import RefreshError, TransportError
        from googleapiclient.errors import HttpError

        try:
            drafts = (
                gmail_service(
                    self.credentials.credentials(mailbox),
                    api_url=self.api_url,
                    timeout=self.timeout,
                )
                .users()
                .drafts()
            )
            if look_first:
                found = self._existing(drafts, message)
                if found is not None:
                    return found
            try:
                created = self._execute(
                    drafts.create(userId="me", body=_draft_body(message, message.thread_id))
                )
            except HttpError as error:
                # The thread was deleted in Gmail: start a new one rather than fail forever.
                if message.thread_id and error.resp.status == 404:
                    created = self._execute(
                        drafts.create(userId="me", body=_draft_body(message, None))
                    )
                else:
                    raise
        except RefreshError as error:
            detail = str(error.args[0]) if error.args else ""
            if detail.startswith("invalid_grant"):
                raise self.credentials.revoked(mailbox) from None
            if getattr(error, "retryable", False):
                raise TransientEmailError(f"token refresh: {detail[:120]}") from None
            raise self.credentials.refused(mailbox, detail[:120]) from None
        except HttpError as error:
            status = error.status_code
            if status == 429 or status >= 500 or _rate_limited(error):
                raise TransientEmailError(f"Gmail answered {status}") from None
            if status == 401:
                raise self.credentials.revoked(mailbox) from None
            reason = (error.reason or "no reason given")[:200]
            raise EmailBackendError(f"Gmail answered {status}: {reason}") from None
        except (TransportError, OSError) as error:
            raise TransientEmailError(f"{type(error).__name__}: {error}") from None
        return _result(created)

    def _existing(self, drafts: Any, message: DraftMessage) -> DraftResult | None:
        """Return the draft an earlier attempt made, found by its Message-ID, if any."""
        answer = self._execute(
            drafts.list(userId="me", q=f"rfc822msgid:{message.message_id.strip('<>')}")
        )
        found = answer.get("drafts") or []
        return dataclasses.replace(_result(found[0]), found_existing=True) if found else None

    def _execute(self, request: Any) -> dict[str, Any]:
        # HttpRequest sleeps between retries with time.sleep; tests pass a sleep that
        # records instead of waiting. `_sleep` is the hook the library itself keeps for this.
        request._sleep = self._sleep
        return dict(request.execute(num_retries=self.num_retries))


def gmail_service(credentials: Any, *, api_url: str | None, timeout: float) -> Any:
    """Return a Gmail API client built from the discovery document shipped with the library."""
    import google_auth_httplib2
    import httplib2
    from googleapiclient.discovery import build

    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
    return build(
        "gmail",
        "v1",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": api_url} if api_url else None,
    )


def _draft_body(message: DraftMessage, thread_id: str | None) -> dict[str, Any]:
    # `raw` in the JSON body, not a media upload: uploads ignore the endpoint's scheme.
    body: dict[str, Any] = {"raw": message.to_raw()}
    if thread_id:
        body["threadId"] = thread_id
    return {"message": body}


def _result(draft: dict[str, Any]) -> DraftResult:
    message = draft.get("message") or {}
    message_id = str(message.get("id") or "")
    return DraftResult(
        draft_id=str(draft.get("id") or ""),
        link=GMAIL_DRAFT_LINK.format(message_id=message_id),
        message_id=message_id or None,
        thread_id=message.get("threadId"),
    )


def _rate_limited(error: Any) -> bool:
    """Return whether a 403 is a rate limit: execute() retried it, so the next run may too."""
    if error.status_code != 403:
        return False
    try:
        details = json.loads(error.content)["error"]["errors"]
        return any(detail.get("reason") in GMAIL_RATE_LIMIT_REASONS for detail in details)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
