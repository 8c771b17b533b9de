"""Authorising as a rep in Gmail: per-rep OAuth (a connect link) or domain-wide delegation.

Per-rep OAuth follows the web-server flow with PKCE. google-auth-oauthlib keeps the PKCE
verifier in memory, which breaks as soon as the callback reaches another instance, so the
state and the verifier live in the database instead (after slack_sdk's OAuth state store:
issued, consumed once, expiring). Refresh tokens are stored encrypted with TokenCipher;
only the `gmail.compose` scope is asked for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from domain.clock import Clock
from reminders.email.backends import GMAIL_COMPOSE_SCOPE, Mailbox, MailboxUnavailable
from reminders.email.token_cipher import InvalidToken, TokenCipher
from storage.database import Database
from storage.follow_ups import FollowUpRepository

if TYPE_CHECKING:
    from google_auth_oauthlib.flow import Flow

logger = logging.getLogger(__name__)

SCOPES = (GMAIL_COMPOSE_SCOPE,)
START_PATH = "/oauth/google/start"
CALLBACK_PATH = "/oauth/google/callback"
# Holds the key binding a sign-in to the browser that opened the connect link.
BROWSER_COOKIE = "dealbot_gmail_connect"
# A connect link in a DM stays usable for a day; once opened, Google must answer within 15 min.
LINK_TTL = dt.timedelta(hours=24)
FLOW_TTL = dt.timedelta(minutes=15)


# What the start page says when a connect link cannot start a sign-in: each link opens once.
LINK_ALREADY_USED = (
    "This connect link was already used. Ask for a new one with /deal followup <deal> in Slack."
)
SIGNED_IN_ELSEWHERE = (
    "This sign-in was started in another browser, so Gmail was not connected. "
    "Ask for a new link with /deal followup <deal> in Slack and open it here."
)
LINK_EXPIRED = (
    "This connect link has expired. Ask for a new one with /deal followup <deal> in Slack."
)

# Why a rep's drafts wait after Google refused their refresh token.
REVOKED_REASON = "the Gmail grant was revoked or has expired"


class GoogleSetupError(ValueError):
    """A Google credentials file is missing or malformed; the message names the setting."""


class ConnectError(Exception):
    """The connect flow cannot go on; `problem` is fit to show the rep in the browser."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class OAuthClient:
    """The OAuth client from GOOGLE_OAUTH_CLIENT_FILE (Google's client-secrets JSON)."""

    config: dict[str, Any]  # {"web": {...}} as Google's console downloads it

    @classmethod
    def from_file(cls, path: Path) -> OAuthClient:
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise GoogleSetupError(
                f"GOOGLE_OAUTH_CLIENT_FILE: cannot read {path}: {error}"
            ) from None
        return cls.from_config(config)

    @classmethod
    def from_config(cls, config: Any) -> OAuthClient:
        web = config.get("web") if isinstance(config, dict) else None
        if not isinstance(web, dict):
            raise GoogleSetupError(
                "GOOGLE_OAUTH_CLIENT_FILE: expected a *Web application* client "
                '(a JSON file with a "web" section)'
            )
        for key in ("client_id", "client_secret", "auth_uri", "token_uri"):
            if not isinstance(web.get(key), str):
                raise GoogleSetupError(f"GOOGLE_OAUTH_CLIENT_FILE: `web.{key}` is missing")
        uris = [u for u in web.get("redirect_uris") or [] if str(u).endswith(CALLBACK_PATH)]
        if not uris:
            raise GoogleSetupError(
                "GOOGLE_OAUTH_CLIENT_FILE: add an authorised redirect URI ending in "
                f"{CALLBACK_PATH} (https://<your dealbot host>{CALLBACK_PATH})"
            )
        return cls(config={"web": web})

    @property
    def web(self) -> dict[str, Any]:
        return dict(self.config["web"])

    @property
    def redirect_uri(self) -> str:
        return next(
            u for u in self.web.get("redirect_uris") or [] if str(u).endswith(CALLBACK_PATH)
        )

    @property
    def start_url(self) -> str:
        return self.redirect_uri.removesuffix(CALLBACK_PATH) + START_PATH


@dataclass(frozen=True)
class ConnectedMailbox:
    user_id: str
    email: str | None


class OAuthMailboxes:
    """Per-rep OAuth: grants in the database, refresh tokens encrypted, a link to connect."""

    def __init__(
        self,
        *,
        database: Database,
        cipher: TokenCipher,
        client: OAuthClient,
        clock: Clock,
        profile_email: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.database = database
        self.cipher = cipher
        self.client = client
        self.clock = clock
        # Asks Gmail which address the new grant is for (users.getProfile); injectable.
        self.profile_email = profile_email

    # --- GmailCredentials -----------------------------------------------------------------

    def mailbox(self, rep_id: str, *, slack_email: str | None) -> Mailbox:
        with self.database.session() as session:
            grant = FollowUpRepository(session).grant_for(rep_id)
            if grant is None:
                raise MailboxUnavailable("Gmail is not connected", reconnect=True)
            return Mailbox(rep_id=rep_id, email=grant.email or slack_email)

    def credentials(self, mailbox: Mailbox) -> Any:
        from google.oauth2.credentials import Credentials

        with self.database.session() as session:
            grant = FollowUpRepository(session).grant_for(mailbox.rep_id)
            encrypted = grant.refresh_token_encrypted if grant else None
        if encrypted is None:
            raise MailboxUnavailable("Gmail is not connected", reconnect=True)
        try:
            refresh_token = self.cipher.decrypt(encrypted)
        except InvalidToken:
            # DEALBOT_SECRET_KEY changed without keeping the old key: the rep reconnects.
            logger.warning("the Gmail grant of %s cannot be decrypted", mailbox.rep_id)
            raise MailboxUnavailable("the stored grant cannot be read", reconnect=True) from None
        web = self.client.web
        return Credentials(
            token=None,
            refresh_token=refresh_token,
            token_uri=web["token_uri"],
            client_id=web["client_id"],
            client_secret=web["client_secret"],
            scopes=list(SCOPES),
        )

    def revoked(self, mailbox: Mailbox) -> MailboxUnavailable:
        with self.database.session() as session:
            FollowUpRepository(session).remove_grant(mailbox.rep_id)
        logger.info("the Gmail grant of %s was revoked or expired", mailbox.rep_id)
        return MailboxUnavailable(REVOKED_REASON, reconnect=True)

    def refused(self, mailbox: Mailbox, detail: str) -> MailboxUnavailable:
        # invalid_client and the like: the OAuth client itself is wrong, an admin matter.
        return MailboxUnavailable(f"Google refused the OAuth client ({detail})", reconnect=False)

    # --- the connect flow -----------------------------------------------------------------

    def connect_link(self, user_id: str) -> str:
        """Return a single-use link that starts connecting this rep's Gmail."""
        now = self.clock.now()
        state = secrets.token_urlsafe(32)
        with self.database.session() as session:
            repository = FollowUpRepository(session)
            repository.purge_states(now=now)
            repository.issue_state(state=state, user_id=user_id, expires_at=now + LINK_TTL, at=now)
        return f"{self.client.start_url}?{urlencode({'state': state})}"

    def _flow(self, *, state: str, verifier: str) -> Flow:
        """Return Google's OAuth flow for one connect link, bound to its PKCE verifier.

        The consent page and the token exchange must be made by the same flow settings,
        or Google refuses the exchange.
        """
        from google_auth_oauthlib.flow import Flow

        return Flow.from_client_config(
            self.client.config,
            scopes=list(SCOPES),
            redirect_uri=self.client.redirect_uri,
            state=state,
            code_verifier=verifier,
            autogenerate_code_verifier=False,
        )

    def authorization_url(self, state: str) -> ConnectStart:
        """Return Google's consent page for a connect link opened the first time.

        The PKCE verifier is made once per link: a second open is refused, not given a new
        verifier, so someone else holding the link cannot take over the sign-in under way.
        """
        now = self.clock.now()
        verifier = secrets.token_urlsafe(64)  # 86 characters: within PKCE's 43–128
        # The browser that opens the link keeps this key in a cookie; only its callback can
        # finish, so the grant stored is the one made in the rep's browser, for the rep.
        browser_key = secrets.token_urlsafe(32)
        with self.database.session() as session:
            repository = FollowUpRepository(session)
            user_id = repository.begin_state(
                state,
                verifier_encrypted=self.cipher.encrypt(f"{verifier}.{_digest(browser_key)}"),
                now=now,
                expires_at=now + FLOW_TTL,
            )
            already_used = user_id is None and repository.state_was_opened(state)
        if already_used:
            raise ConnectError(LINK_ALREADY_USED)
        if user_id is None:
            raise ConnectError(LINK_EXPIRED)
        flow = self._flow(state=state, verifier=verifier)
        url, _ = flow.authorization_url(access_type="offline", prompt="consent")
        return ConnectStart(url=str(url), browser_key=browser_key)

    def finish(
        self, *, state: str, code: str | None, error: str | None, browser_key: str | None
    ) -> ConnectedMailbox:
        """Exchange the callback's code for a grant, once per state; return whose it is.

        Only the browser that opened the connect link (its `browser_key` cookie) finishes:
        the grant is stored for the Slack user the link was made for, from their browser.
        """
        from oauthlib.oauth2.rfc6749.errors import OAuth2Error

        now = self.clock.now()
        with self.database.session() as session:
            consumed = FollowUpRepository(session).consume_state(state, now=now)
        if consumed is None:
            raise ConnectError(
                "This sign-in has expired or was already used. Open the connect link again."
            )
        user_id, verifier_encrypted = consumed
        verifier, _, bound_to = self.cipher.decrypt(verifier_encrypted).partition(".")
        if not browser_key or not hmac.compare_digest(bound_to, _digest(browser_key)):
            raise ConnectError(SIGNED_IN_ELSEWHERE)
        if error or not code:
            raise ConnectError(
                "Gmail was not connected (Google said: "
                f"{(error or 'no code')[:60]}). You can try again from the link in Slack."
            )
        flow = self._flow(state=state, verifier=verifier)
        try:
            token = flow.fetch_token(code=code)
        except Warning as changed:
            # oauthlib raises "Scope has changed" when the user unticked a scope on Google's
            # granular consent page; the token it carries is checked for compose below.
            token = dict(getattr(changed, "token", None) or {})
        except (OAuth2Error, OSError, ValueError) as failure:
            logger.warning("Google token exchange failed: %s", type(failure).__name__)
            raise ConnectError(
                "Google did not accept the sign-in. Please open the connect link again."
            ) from None
        granted = set(_scopes(token.get("scope")))
        if GMAIL_COMPOSE_SCOPE not in granted:
            raise ConnectError(
                "dealbot needs permission to create drafts in Gmail; please allow it."
            )
        refresh_token = token.get("refresh_token")
        if not refresh_token:
            raise ConnectError("Google did not grant offline access; please try again.")
        email = None
        if self.profile_email is not None:
            try:
                email = self.profile_email(flow.credentials)
            except Exception:  # the address is a nicety; the grant is what matters
                logger.warning("could not read the Gmail address of %s", user_id)
        with self.database.session() as session:
            FollowUpRepository(session).put_grant(
                user_id=user_id,
                email=email,
                refresh_token_encrypted=self.cipher.encrypt(refresh_token),
                scopes=" ".join(sorted(granted)),
                at=now,
            )
        return ConnectedMailbox(user_id=user_id, email=email)

    def rotate_key(self) -> int:
        """Re-encrypt every stored refresh token with the newest key; return how many."""
        with self.database.session() as session:
            grants = FollowUpRepository(session).all_grants()
            for grant in grants:
                grant.refresh_token_encrypted = self.cipher.rotate(grant.refresh_token_encrypted)
            return len(grants)


@dataclass(frozen=True)
class ConnectStart:
    """Where the start page sends the browser, and the key that browser must keep."""

    url: str
    browser_key: str


def _digest(browser_key: str) -> str:
    """Return what is stored of a browser key: its SHA-256, never the key itself."""
    return hashlib.sha256(browser_key.encode()).hexdigest()


def _scopes(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    return [str(scope) for scope in value or []]


class DelegatedMailboxes:
    """Domain-wide delegation: a service account acts as each rep (their Slack email)."""

    def __init__(self, *, service_account_file: Path) -> None:
        from google.oauth2 import service_account

        try:
            self._base = service_account.Credentials.from_service_account_file(
                str(service_account_file), scopes=list(SCOPES)
            )
        except (OSError, ValueError, KeyError) as error:
            raise GoogleSetupError(
                f"GOOGLE_SERVICE_ACCOUNT_FILE: cannot use {service_account_file}: {error}"
            ) from None

    def mailbox(self, rep_id: str, *, slack_email: str | None) -> Mailbox:
        if not slack_email:
            raise MailboxUnavailable(
                "Slack shows no email address for this rep (the app needs users:read.email)",
                reconnect=False,
            )
        return Mailbox(rep_id=rep_id, email=slack_email)

    def credentials(self, mailbox: Mailbox) -> Any:
        return self._base.with_subject(mailbox.email)

    def revoked(self, mailbox: Mailbox) -> MailboxUnavailable:
        return self.refused(mailbox, "invalid_grant")

    def refused(self, mailbox: Mailbox, detail: str) -> MailboxUnavailable:
        return MailboxUnavailable(
            f"domain-wide delegation is not granted for {mailbox.email} ({detail}); an admin "
            "grants it in the Google Admin console > Security > API controls",
            reconnect=False,
        )


def gmail_profile_email(api_url: str | None) -> Callable[[Any], str | None]:
    """Return a function asking Gmail (users.getProfile) whose mailbox credentials open."""
    from reminders.email.backends import GMAIL_NUM_RETRIES, GMAIL_TIMEOUT_SECONDS, gmail_service

    def profile_email(credentials: Any) -> str | None:
        service = gmail_service(credentials, api_url=api_url, timeout=GMAIL_TIMEOUT_SECONDS)
        profile = service.users().getProfile(userId="me").execute(num_retries=GMAIL_NUM_RETRIES)
        address = profile.get("emailAddress")
        return str(address) if address else None

    return profile_email
