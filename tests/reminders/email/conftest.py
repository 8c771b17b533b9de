"""Fixtures for follow-up drafts: the demo's seeded pipeline, a fake Gmail, and the drafter.

The drafter's database is SQLite unless a test is marked `on_both_backends`: those are the
tests whose SQL differs by dialect (triggers inserted once, claims, OAuth states, grants),
and a PostgreSQL database costs about a second, so the rest stay on SQLite.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet

from bot.demo import seed_pipeline
from domain.clock import FixedClock
from domain.deals import DealService
from domain.follow_up_triggers import load_trigger_rules
from reminders.email.backends import EmailBackend, GmailBackend, OutboxBackend
from reminders.email.drafts import FollowUps, RepProfile
from reminders.email.google_auth import OAuthClient, OAuthMailboxes, gmail_profile_email
from reminders.email.templates import EmailTemplates
from reminders.email.token_cipher import TokenCipher
from storage.database import Database
from storage.follow_ups import FollowUpRepository
from storage.migrate import upgrade
from tests.databases import BACKENDS, database_url_for
from tests.fakes.gmail_api import FakeGmail

# Monday 23 Nov 2026, mid-morning in New York.
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
NEW_YORK = ZoneInfo("America/New_York")
REPS = {
    "U0ANA": RepProfile("Ana Ruiz", "ana@sales.example"),
    "U0BEN": RepProfile("Ben Okafor", "ben@sales.example"),
    "U0CHLOE": RepProfile("Chloe Martin", "chloe@sales.example"),
    "U0MARIA": RepProfile("Maria Keller", "maria@sales.example"),  # their manager
}
REDIRECT_URI = "https://dealbot.example/oauth/google/callback"

# Runs a test once per backend by overriding the `database_backend` fixture below.
on_both_backends = pytest.mark.parametrize("database_backend", BACKENDS)


@dataclass
class Drafting:
    """The seeded pipeline, the clock, and what a FollowUps needs, ready to assemble."""

    database: Database
    clock: FixedClock
    deals: DealService
    cipher: TokenCipher
    tmp_path: Path
    sleeps: list[float] = field(default_factory=list)

    def follow_ups(
        self,
        backend: EmailBackend,
        *,
        templates: EmailTemplates | None = None,
        connect: OAuthMailboxes | None = None,
    ) -> FollowUps:
        templates = templates or EmailTemplates()
        return FollowUps(
            database=self.database,
            deals=self.deals,
            templates=templates,
            rules=load_trigger_rules(templates.directory / "triggers.yml"),
            backend=backend,
            clock=self.clock,
            rep_profile=lambda user_id: REPS.get(user_id, RepProfile(None, None)),
            connect_link=connect.connect_link if connect else None,
        )

    def outbox(self) -> OutboxBackend:
        return OutboxBackend(directory=self.tmp_path / "outbox")

    def oauth(self, gmail: FakeGmail, *, redirect_uri: str = REDIRECT_URI) -> OAuthMailboxes:
        return OAuthMailboxes(
            database=self.database,
            cipher=self.cipher,
            client=OAuthClient.from_config(gmail.oauth_client_config(redirect_uri)),
            clock=self.clock,
            profile_email=gmail_profile_email(gmail.base_url),
        )

    def gmail_backend(self, gmail: FakeGmail, credentials: Any) -> GmailBackend:
        return GmailBackend(
            credentials=credentials, api_url=gmail.base_url, sleep=self.sleeps.append
        )

    def connect_rep(self, gmail: FakeGmail, user_id: str) -> str:
        """Store a grant for this rep as if they had connected; return the refresh token."""
        email = REPS[user_id].email
        assert email is not None
        token = gmail.issue_refresh_token(email)
        with self.database.session() as session:
            FollowUpRepository(session).put_grant(
                user_id=user_id,
                email=email,
                refresh_token_encrypted=self.cipher.encrypt(token),
                scopes="https://www.googleapis.com/auth/gmail.compose",
                at=NOW,
            )
        return token


@pytest.fixture
def database_backend() -> str:
    """Return the backend the drafter's database runs on; `on_both_backends` overrides it."""
    return "sqlite"


@pytest.fixture
def database_url(database_backend: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty throw-away database on `database_backend`."""
    with database_url_for(database_backend, tmp_path) as url:
        yield url


@pytest.fixture
def drafting(database_url: str, tmp_path: Path) -> Iterator[Drafting]:
    upgrade(database_url)
    database = Database.from_url(database_url)
    seed_pipeline(database, now=NOW)
    clock = FixedClock(at=NOW)
    deals = DealService(database=database, clock=clock, default_timezone=NEW_YORK)
    cipher = TokenCipher(secrets=[Fernet.generate_key().decode()])
    try:
        yield Drafting(
            database=database, clock=clock, deals=deals, cipher=cipher, tmp_path=tmp_path
        )
    finally:
        database.dispose()


@pytest.fixture
def gmail() -> Iterator[FakeGmail]:
    with FakeGmail() as fake:
        yield fake
