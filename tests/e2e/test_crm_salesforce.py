"""Salesforce sync end to end: signed Slack requests, the real jobs, the fake org over TLS.

The app is served as in production with `DEALBOT_CRM=salesforce`; `crm-sync` and `crm-push`
run as `dealbot jobs run` runs them, through the real engine, the real connector and the
real simple-salesforce, against `tests/fakes/salesforce_api`. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.fake_slack import FakeSlackWebAPI
from bot.jobs_cli import run_job_now
from bot.settings import Settings, load_settings
from tests.databases import BACKENDS, database_url_for
from tests.e2e.harness import CONFIGURED_ADMIN, NOW, SIGNING_SECRET, RunningApp, running_app
from tests.fakes.salesforce_api import FakeSalesforce

# The suite moves the wall clock (--fake-now); urllib3 then warns of the date on every TLS
# connection, which says nothing here.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.SystemTimeWarning")

ANA = "U0ANA"


class WallClock:
    """The fake org's clock: the connector signs its JWT by the real clock, as in production."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class Org:
    app: RunningApp
    salesforce: FakeSalesforce
    settings: Settings
    ana: str  # Ana's Salesforce user id

    def run(self, job: str, *, minutes_later: int = 0) -> int:
        """Run a CRM job once, as `dealbot jobs run <job> --now` does."""
        return run_job_now(
            self.settings,
            job,
            now=NOW + dt.timedelta(minutes=minutes_later),
            client=WebClient(token="xoxb-e2e-token", base_url=self.app.slack.base_url),
            out=io.StringIO(),  # the summary line is the CLI's business, tested there
        )

    def dms_to(self, user: str) -> list[str]:
        return [
            str(call.args.get("text"))
            for call in self.app.slack.calls_to("chat.postMessage")
            if call.args.get("channel") == user
        ]

    def opportunity_patches(self) -> list[dict[str, object]]:
        return [
            dict(call.body)
            for call in self.salesforce.calls_to("PATCH", "/sobjects/Opportunity/")
            if isinstance(call.body, dict)
        ]


@pytest.fixture(params=BACKENDS)
def org(
    request: pytest.FixtureRequest,
    slack_api: FakeSlackWebAPI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Org]:
    slack_api.set_user(CONFIGURED_ADMIN, name="root", is_admin=True)
    slack_api.set_user(ANA, name="ana", email="ana@initech.com")
    with FakeSalesforce(clock=WallClock()).start(tmp_path) as salesforce:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(salesforce.ca_bundle_path))
        key = tmp_path / "connected-app.key"
        key.write_bytes(salesforce.private_key_pem)
        crm = {
            "dealbot_crm": "salesforce",
            "salesforce_login_url": salesforce.login_url,
            "salesforce_client_id": salesforce.CLIENT_ID,
            "salesforce_username": salesforce.USERNAME,
            "salesforce_private_key_file": str(key),
            "salesforce_api_version": salesforce.api_version,
        }
        with (
            database_url_for(request.param, tmp_path) as url,
            running_app(slack_api, url, **crm) as app,
        ):
            settings = load_settings(
                _env_file=None,
                slack_bot_token="xoxb-e2e-token",
                slack_signing_secret=SIGNING_SECRET,
                slack_api_url=slack_api.base_url,
                database_url=url,
                dealbot_admins=CONFIGURED_ADMIN,
                dealbot_timezone="America/New_York",
                **crm,
            )
            ana = salesforce.add_user(name="Ana Lima", email="ana@initech.com")
            yield Org(app=app, salesforce=salesforce, settings=settings, ana=ana)


def seed_acme(org: Org) -> str:
    return org.salesforce.add_opportunity(
        account="Acme",
        Name="Acme expansion",
        Amount=50000,
        StageName="Needs Analysis",
        CloseDate=dt.date(2026, 12, 18),
        OwnerId=org.ana,
    )


def test_an_opportunity_created_in_salesforce_is_in_the_pipeline_after_one_sync(
    org: Org,
) -> None:
    seed_acme(org)
    before = org.app.command("/pipeline")
    assert "Acme" not in before.all_text
    assert org.run("crm-sync") == 0
    after = org.app.command("/pipeline")
    assert after.status == 200
    assert "Acme" in after.all_text and "$50,000" in after.all_text


def test_a_stage_set_in_slack_is_patched_once_even_after_a_500(org: Org) -> None:
    deal_id = seed_acme(org)
    assert org.run("crm-sync") == 0
    org.salesforce.fail_next(500, method="PATCH", path="/sobjects/Opportunity/")

    reply = org.app.command("/deal", "acme stage:proposal")
    assert reply.status == 200 and reply.is_private, reply.text
    org.run("crm-push", minutes_later=1)  # the 500: the push stays pending
    assert org.salesforce.opportunities[deal_id]["StageName"] == "Needs Analysis"
    for minutes in (10, 20, 30):
        org.run("crm-push", minutes_later=minutes)

    # Both stages map to dealbot's proposal (60% and "Proposal…"): the one named so is written.
    proposal = {"Proposal/Price Quote"}
    assert org.salesforce.opportunities[deal_id]["StageName"] in proposal
    applied = [p for p in org.opportunity_patches() if "StageName" in p]
    assert len(applied) == 2  # the refused attempt and the one that landed, nothing more
    assert applied[0] == applied[1]
    history = [
        (row["OldValue"], row["NewValue"])
        for row in org.salesforce.records["OpportunityFieldHistory"].values()
        if row["OpportunityId"] == deal_id and row["Field"] == "StageName"
    ]
    assert len(history) == 1 and history[0][0] == "Needs Analysis" and history[0][1] in proposal


def test_a_validation_rule_reaches_the_rep_privately_in_salesforces_words(org: Org) -> None:
    deal_id = seed_acme(org)
    assert org.run("crm-sync") == 0
    org.salesforce.add_validation_rule(
        lambda opportunity: (
            opportunity["StageName"] == "Negotiation/Review" and not opportunity.get("NextStep")
        ),
        "Negotiation needs a next step in Salesforce.",
        ["NextStep"],
    )
    reply = org.app.command("/deal", "acme stage:negotiation")
    assert reply.status == 200, reply.text
    org.run("crm-push", minutes_later=1)
    assert org.salesforce.opportunities[deal_id]["StageName"] == "Needs Analysis"
    told = [text for text in org.dms_to(ANA) if "Negotiation needs a next step" in text]
    assert len(told) == 1
    card = org.app.command("/deal", "show acme")
    assert "not in Salesforce yet" in card.all_text


def test_an_owner_with_no_slack_user_is_reported_to_the_admins_once(org: Org) -> None:
    ghost = org.salesforce.add_user(name="Gus Ghost", email="gus@initech.com")
    org.salesforce.add_opportunity(account="Globex", Name="Globex new", OwnerId=ghost)
    seed_acme(org)
    assert org.run("crm-sync") == 0
    org.run("crm-sync", minutes_later=5)
    reported = [text for text in org.dms_to(CONFIGURED_ADMIN) if "gus@initech.com" in text]
    assert len(reported) == 1
    assert not any("ana@initech.com" in text for text in org.dms_to(CONFIGURED_ADMIN))


def test_a_next_step_logged_in_slack_is_a_task_on_the_opportunity_a_minute_later(
    org: Org,
) -> None:
    deal_id = seed_acme(org)
    assert org.run("crm-sync") == 0

    reply = org.app.command("/nextstep", 'acme "Send the MSA to legal" due:2026-12-09')
    assert reply.status == 200 and reply.is_private, reply.text
    assert not org.salesforce.tasks  # nothing reaches Salesforce inside the Slack request
    assert org.run("crm-push", minutes_later=1) == 0
    org.run("crm-push", minutes_later=2)  # a second pass finds nothing left to send

    tasks = [t for t in org.salesforce.tasks.values() if t["WhatId"] == deal_id]
    assert [(t["Subject"], t["ActivityDate"], t["OwnerId"]) for t in tasks] == [
        ("Send the MSA to legal", dt.date(2026, 12, 9), org.ana)
    ]
    card = org.app.command("/deal", "show acme")
    assert "not in Salesforce yet" not in card.all_text


def test_a_renamed_deal_and_a_new_owner_reach_salesforce(org: Org) -> None:
    ben = org.salesforce.add_user(name="Ben Ortiz", email="ben@initech.com")
    org.app.slack.set_user("U0BEN", name="ben", email="ben@initech.com")
    deal_id = seed_acme(org)
    assert org.run("crm-sync") == 0

    reply = org.app.command("/deal", 'acme name:"Acme renewal" owner:<@U0BEN|ben>')
    assert "owner <@U0ANA> → <@U0BEN>" in reply.all_text
    org.run("crm-push", minutes_later=1)

    opportunity = org.salesforce.opportunities[deal_id]
    assert (opportunity["Name"], opportunity["OwnerId"]) == ("Acme renewal", ben)


def test_a_new_owner_with_no_salesforce_user_is_never_guessed_and_the_rep_is_told(
    org: Org,
) -> None:
    # The name still goes; the owner is refused by dealbot itself, as Salesforce would refuse.
    org.app.slack.set_user("U0MARIA", name="maria", email="maria@elsewhere.example")
    deal_id = seed_acme(org)
    assert org.run("crm-sync") == 0

    org.app.command("/deal", 'acme name:"Acme renewal" owner:<@U0MARIA|maria>')
    org.run("crm-push", minutes_later=1)

    opportunity = org.salesforce.opportunities[deal_id]
    assert (opportunity["Name"], opportunity["OwnerId"]) == ("Acme renewal", org.ana)
    assert org.app.deal_named("Acme").owner_id == "U0MARIA"
    told = [text for text in org.dms_to(ANA) if "no active user with the new owner" in text]
    assert len(told) == 1
    org.run("crm-push", minutes_later=5)  # refused for good: not tried again, not told twice
    assert len([t for t in org.dms_to(ANA) if "no active user" in t]) == 1
    assert [p for p in org.opportunity_patches() if "OwnerId" in p] == []
