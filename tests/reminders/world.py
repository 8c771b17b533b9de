"""A small sales world for job tests: two teams in two timezones, deals at known ages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.fake_slack import FakeSlackWebAPI
from bot.jobs_cli import context_factory
from bot.settings import Settings, load_settings
from domain.changes import ContactRef, DealChanges, DealRef
from domain.clock import FixedClock
from domain.deals import Actor, DealService
from domain.money import Money
from domain.teams import TeamService
from reminders.delivery import DeliverySummary
from reminders.jobs import JobContext, load_jobs, run_job
from storage.database import Database
from storage.migrate import upgrade
from storage.models import OutboxMessage
from storage.outbox import OutboxRepository

ADMIN = Actor(user_id="U0ROOT", is_admin=lambda: True)
ANA, BEN, MARIA = "U0ANA", "U0BEN", "U0MARIA"  # New York reps and their manager
PIERRE, ZOE = "U0PIERRE", "U0ZOE"  # Paris rep and manager
NY_CHANNEL, PARIS_CHANNEL = "C0EAST", "C0PARIS"


class InstantRateLimitRetry(RateLimitErrorRetryHandler):
    """Honours Retry-After by recording it, without making the test wait for it."""

    def __init__(self) -> None:
        super().__init__(max_retry_count=2)
        self.retry_afters: list[str] = []

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        headers = {k.lower(): v for k, v in (response.headers if response else {}).items()}
        self.retry_afters.append(str((headers.get("retry-after") or ["?"])[0]))
        state.next_attempt_requested = True
        state.increment_current_attempt()


def fast_client(base_url: str) -> tuple[WebClient, InstantRateLimitRetry]:
    """Return a WebClient with the production retry handlers, minus the waiting."""
    no_wait = FixedValueRetryIntervalCalculator(0.0)
    rate_limit = InstantRateLimitRetry()
    client = WebClient(
        token="xoxb-test",
        base_url=base_url,
        timeout=5,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=no_wait),
            rate_limit,
            ServerErrorRetryHandler(max_retry_count=2, interval_calculator=no_wait),
        ],
    )
    return client, rate_limit


@dataclass
class World:
    database: Database
    settings: Settings
    slack: FakeSlackWebAPI
    client: WebClient
    rate_limit: InstantRateLimitRetry
    clock: FixedClock
    deal_ids: dict[str, int] = field(default_factory=dict)

    @property
    def deals(self) -> DealService:
        return DealService(
            database=self.database, clock=self.clock, default_timezone=self.settings.timezone
        )

    def context(self, now: dt.datetime, timezones: frozenset[str] | None = None) -> JobContext:
        factory = context_factory(self.settings, database=self.database, client=self.client)
        return factory(now, timezones)

    def run(self, job: str, now: dt.datetime) -> DeliverySummary:
        return run_job(load_jobs()[job], self.context(now))

    def dms_to(self, user_id: str) -> list[dict[str, Any]]:
        return [
            call.args
            for call in self.slack.calls_to("chat.postMessage")
            if call.args.get("channel") in (user_id, f"D{user_id}")
        ]

    def outbox(self, job: str | None = None) -> list[OutboxMessage]:
        with self.database.session() as session:
            rows = OutboxRepository(session).messages(job)
            for row in rows:
                session.expunge(row)
            return rows

    def new_deal(
        self,
        owner: str,
        account: str,
        *,
        at: dt.datetime,
        amount: int | None = 50_000,
        stage: str = "discovery",
        close: dt.date | None = None,
        forecast: str | None = None,
        step_due: dt.date | None = None,
        buyer: str | None = None,
    ) -> int:
        self.clock.at = at
        changes = DealChanges(
            amount=Money(Decimal(amount), "USD") if amount is not None else None,
            stage=stage,
            close_date=close,
            forecast=forecast,
            economic_buyer=ContactRef(name=buyer, email=None, user_id=None) if buyer else None,
        )
        # Seeded as a CRM's records are: the jobs are under test here, not the Commit gate
        # (tests/e2e/test_evidence.py tests that).
        deal = self.deals.create_deal(Actor(user_id=owner), account, changes, evidence_gate=False)
        if step_due is not None:
            self.deals.add_next_step(
                Actor(user_id=owner),
                DealRef(name=None, deal_id=deal.id),
                what=f"Call {account}",
                due=max(step_due, at.date()),
                owner_id=owner,
            )
        self.deal_ids[account] = deal.id
        return deal.id


def build_world(database_url: str, slack: FakeSlackWebAPI) -> World:
    upgrade(database_url)
    database = Database.from_url(database_url)
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-test",
        slack_api_url=slack.base_url,
        database_url=database_url,
        dealbot_timezone="UTC",
    )
    # Each person's Slack profile zone; the chase follows it (the fake's default is New York).
    for user_id in (ANA, BEN, MARIA):
        slack.set_user(user_id, tz="America/New_York")
    for user_id in (PIERRE, ZOE):
        slack.set_user(user_id, tz="Europe/Paris")
    client, rate_limit = fast_client(slack.base_url)
    clock = FixedClock(at=dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC))
    teams = TeamService(database=database, clock=clock, default_timezone="UTC")
    teams.create_team(ADMIN, name="East", channel_id=NY_CHANNEL, timezone="America/New_York")
    teams.add_members(ADMIN, name="East", role="rep", user_ids=[ANA, BEN])
    teams.add_members(ADMIN, name="East", role="manager", user_ids=[MARIA])
    teams.set_quota(
        ADMIN, name="East", user_id=ANA, amount=Money(Decimal(200_000), "USD"), period="2026-Q4"
    )
    teams.create_team(ADMIN, name="Paris", channel_id=PARIS_CHANNEL, timezone="Europe/Paris")
    teams.add_members(ADMIN, name="Paris", role="rep", user_ids=[PIERRE])
    teams.add_members(ADMIN, name="Paris", role="manager", user_ids=[ZOE])
    return World(
        database=database,
        settings=settings,
        slack=slack,
        client=client,
        rate_limit=rate_limit,
        clock=clock,
    )
