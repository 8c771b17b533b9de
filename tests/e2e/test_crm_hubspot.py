"""HubSpot sync end to end: signed Slack requests, the real jobs, the real hubspot-api-client
against the fake HubSpot, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.app import ListenerPool, create_app
from bot.crm_setup import CrmRuntime, hubspot_webhooks_app
from bot.fake_slack import FakeSlackWebAPI
from bot.jobs_cli import run_job_now
from bot.server import BackgroundServer, build_wsgi_app
from bot.settings import Settings, load_settings
from domain.clock import FixedClock
from storage.database import Database
from storage.migrate import upgrade
from tests.databases import BACKENDS, postgres_database, sqlite_url
from tests.e2e.harness import NOW, SIGNING_SECRET, RunningApp
from tests.fakes.hubspot_api import FakeHubSpot, to_ms

WEBHOOK_SECRET = "hubspot-app-client-secret"
ANA = "ana@initech-sales.example"


class HubSpotClock:
    """The fake portal's clock: set by the test, a millisecond on per reading."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        self.at += dt.timedelta(milliseconds=1)
        return self.at


class InlineExecutor(Executor):
    """Runs the webhook's pull before the answer returns, so the test can look right after."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class CrmApp(RunningApp):
    hubspot: FakeHubSpot
    settings: Settings
    webhook_url: str

    def run_job(self, name: str, at: dt.datetime) -> None:
        self.clock.at = at
        client = WebClient(base_url=self.slack.base_url, token="xoxb-e2e-token")
        assert run_job_now(self.settings, name, now=at, client=client, out=_Discard()) == 0

    def dms_to(self, user: str) -> list[str]:
        opened = {
            c.response["channel"]["id"]
            for c in self.slack.calls_to("conversations.open")
            if c.args.get("users") == user
        }
        return [
            str(c.args.get("text", "")) + str(c.args.get("blocks", ""))
            for c in self.slack.calls_to("chat.postMessage")
            if c.args.get("channel") in opened | {user}
        ]


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@contextmanager
def crm_app(slack: FakeSlackWebAPI, hubspot: FakeHubSpot, database_url: str) -> Iterator[CrmApp]:
    """Yield the app connected to the fake HubSpot, webhooks served beside Slack's events."""
    upgrade(database_url)
    database = Database.from_url(database_url)
    clock = FixedClock(at=NOW)
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-e2e-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.base_url,
        database_url=database_url,
        dealbot_admins="U0ADMIN",
        dealbot_timezone="America/New_York",
        dealbot_crm="hubspot",
        hubspot_access_token=hubspot.token,
        hubspot_api_url=hubspot.url,
        hubspot_webhook_secret=WEBHOOK_SECRET,
    )
    listeners = ListenerPool(max_workers=4)
    app = create_app(settings, database=database, clock=clock, listener_executor=listeners)
    webhooks = hubspot_webhooks_app(
        settings,
        database=database,
        client=app.client,
        runtime=CrmRuntime(settings),
        clock=clock,
        executor=InlineExecutor(),
    )
    server = BackgroundServer(build_wsgi_app(app, hubspot_webhooks=webhooks), threads=8).start()
    try:
        running = CrmApp(
            url=f"http://127.0.0.1:{server.port}/slack/events",
            database=database,
            slack=slack,
            clock=clock,
            listeners=listeners,
        )
        running.hubspot = hubspot
        running.settings = settings
        running.webhook_url = f"http://127.0.0.1:{server.port}/crm/hubspot/webhooks"
        yield running
    finally:
        server.stop()
        listeners.shutdown(wait=True)
        database.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def app(slack_api: FakeSlackWebAPI, database_url: str) -> Iterator[CrmApp]:
    slack_api.set_user("U0ADMIN", name="alice", is_admin=True, email="alice@initech-sales.example")
    slack_api.set_user("U0ANA", name="ana", email=ANA)
    with FakeHubSpot(clock=HubSpotClock(NOW - dt.timedelta(days=1))) as hubspot:
        hubspot.add_owner(email=ANA, first_name="Ana", last_name="Rep")
        hubspot.add_owner(email="alice@initech-sales.example", first_name="Alice")
        with crm_app(slack_api, hubspot, database_url) as running:
            yield running


def ana_owner(hubspot: FakeHubSpot) -> str:
    return next(o.id for o in hubspot.owners.values() if o.email == ANA)


def test_a_deal_created_in_hubspot_shows_in_pipeline_after_one_sync(app: CrmApp) -> None:
    app.hubspot.add_deal(
        dealname="Globex expansion",
        amount="48000",
        closedate="2026-12-18T00:00:00Z",
        dealstage="presentationscheduled",
        hubspot_owner_id=ana_owner(app.hubspot),
    )

    app.run_job("crm-sync", NOW)

    pipeline = app.command("/pipeline")
    assert "Globex expansion" in pipeline.all_text
    assert "$48,000" in pipeline.all_text
    assert app.hubspot.unknown_reads == []


def test_a_next_step_becomes_a_hubspot_task_within_one_push(app: CrmApp) -> None:
    deal_id = app.hubspot.add_deal(
        dealname="Globex", amount="10000", hubspot_owner_id=ana_owner(app.hubspot)
    )
    app.run_job("crm-sync", NOW)

    step = app.command("/nextstep", "globex Send the security questionnaire due:fri")
    assert "Send the security questionnaire" in step.all_text
    app.run_job("crm-push", NOW + dt.timedelta(seconds=30))

    tasks = app.hubspot.associated("deals", deal_id, "tasks")
    assert len(tasks) == 1
    [task_id] = tasks
    task = app.hubspot.task(task_id)
    assert task["hs_task_subject"] == "Send the security questionnaire"
    assert task["hs_timestamp"].startswith("2026-11-27")
    assert task["hubspot_owner_id"] == ana_owner(app.hubspot)


def test_a_conflict_keeps_the_later_change_and_tells_the_rep(app: CrmApp) -> None:
    deal_id = app.hubspot.add_deal(
        dealname="Globex",
        amount="10000",
        closedate="2026-12-18T00:00:00Z",
        hubspot_owner_id=ana_owner(app.hubspot),
    )
    app.run_job("crm-sync", NOW)

    # Ana moves the close date in Slack; a minute later someone moves it in HubSpot.
    app.command("/deal", "globex close:2027-01-15")
    app.hubspot.clock.at = NOW + dt.timedelta(minutes=1)  # type: ignore[attr-defined]
    app.hubspot.set_deal(deal_id, closedate="2027-02-26T00:00:00Z")
    app.run_job("crm-sync", NOW + dt.timedelta(minutes=2))

    deal = app.deal_named("Globex")
    assert str(deal.close_date) == "2027-02-26"
    assert app.hubspot.deal(deal_id)["closedate"].startswith("2027-02-26")
    history = [(f, new) for f, _old, new, _by in app.changes_of(deal.id) if f == "close_date"]
    assert ("close_date", "2027-01-15") in history
    [told] = [text for text in app.dms_to("U0ANA") if "Globex" in text]
    assert "15 Jan 2027" in told and "26 Feb 2027" in told
    # The losing Slack change never reached HubSpot.
    assert not [
        c
        for c in app.hubspot.calls_to("PATCH", "/crm/v3/objects/deals")
        if "closedate" in str(c.body)
    ]


def test_a_signed_webhook_for_a_changed_deal_pulls_it(app: CrmApp) -> None:
    deal_id = app.hubspot.add_deal(
        dealname="Globex", amount="10000", hubspot_owner_id=ana_owner(app.hubspot)
    )
    app.run_job("crm-sync", NOW)
    app.hubspot.set_deal(deal_id, amount="65000")

    status = app.hubspot.deliver_webhook(
        app.webhook_url,
        [app.hubspot.deal_event(deal_id, "amount")],
        secret=WEBHOOK_SECRET,
        timestamp_ms=to_ms(NOW),
    )

    assert status == 200
    assert app.deal_named("Globex").amount == 65000
    forged = app.hubspot.deliver_webhook(
        app.webhook_url,
        [app.hubspot.deal_event(deal_id, "amount")],
        secret="not-the-secret",
        timestamp_ms=to_ms(NOW),
    )
    assert forged == 401


def test_a_stage_change_patches_hubspot_once_even_after_a_500(app: CrmApp) -> None:
    deal_id = app.hubspot.add_deal(
        dealname="Globex", amount="10000", hubspot_owner_id=ana_owner(app.hubspot)
    )
    app.run_job("crm-sync", NOW)
    app.hubspot.fail_next(500, path=f"/crm/v3/objects/deals/{deal_id}")

    moved = app.command("/deal", "globex stage:proposal")
    assert "proposal" in moved.all_text
    app.run_job("crm-push", NOW + dt.timedelta(seconds=30))

    patches = app.hubspot.calls_to("PATCH", f"/crm/v3/objects/deals/{deal_id}")
    # The transport retried the 500 with the same absolute value; HubSpot applied it once.
    assert [(c.status, c.body) for c in patches] == [
        (500, {"properties": {"dealstage": "presentationscheduled"}}),
        (200, {"properties": {"dealstage": "presentationscheduled"}}),
    ]
    assert app.hubspot.property_history("deals", deal_id, "dealstage") == [
        "appointmentscheduled",
        "presentationscheduled",
    ]
    app.run_job("crm-push", NOW + dt.timedelta(seconds=90))
    assert len(app.hubspot.calls_to("PATCH", f"/crm/v3/objects/deals/{deal_id}")) == 2


def test_a_validation_rule_reaches_the_rep_in_hubspots_words(app: CrmApp) -> None:
    deal_id = app.hubspot.add_deal(
        dealname="Globex", amount="10000", hubspot_owner_id=ana_owner(app.hubspot)
    )
    app.run_job("crm-sync", NOW)
    rule = "A won deal needs its next step filled in (onboarding owner)."
    app.hubspot.add_validation_rule(
        lambda p: p.get("dealstage") == "closedwon" and not p.get("hs_next_step"), rule
    )

    app.command("/deal", "won globex signed")
    app.run_job("crm-push", NOW + dt.timedelta(seconds=30))

    assert [text for text in app.dms_to("U0ANA") if rule in text]
    assert app.hubspot.deal(deal_id)["dealstage"] == "appointmentscheduled"


def test_a_commit_pulled_from_hubspot_stands_but_one_pushed_from_slack_needs_evidence(
    app: CrmApp,
) -> None:
    # The CRM is the record there: its Commit comes in without evidence cited here.
    app.hubspot.add_deal(
        dealname="Globex",
        amount="10000",
        hs_manual_forecast_category="COMMIT",
        hubspot_owner_id=ana_owner(app.hubspot),
    )
    hooli = app.hubspot.add_deal(
        dealname="Hooli",
        amount="20000",
        hs_manual_forecast_category="PIPELINE",
        hubspot_owner_id=ana_owner(app.hubspot),
    )
    app.run_job("crm-sync", NOW)
    assert app.deal_named("Globex").forecast_category == "commit"

    # A Commit made in Slack would be pushed to HubSpot: it is refused like any other.
    refused = app.command("/deal", "hooli forecast:commit", user="U0ANA")
    assert "Commit needs cited evidence for: economic buyer" in refused.all_text
    app.run_job("crm-push", NOW + dt.timedelta(seconds=30))
    assert app.deal_named("Hooli").forecast_category == "pipeline"
    assert app.hubspot.deal(hooli)["hs_manual_forecast_category"] == "PIPELINE"
