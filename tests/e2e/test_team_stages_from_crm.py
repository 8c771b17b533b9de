"""`/dealbot team stages <team> from-crm`: a team takes the CRM pipeline's stages, over signed
requests, with the real sync against the Salesforce and HubSpot fakes, on SQLite and
PostgreSQL; refusals write nothing."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.fake_slack import FakeSlackWebAPI
from bot.jobs_cli import run_job_now
from bot.settings import Settings, load_settings
from domain.clock import SystemClock
from tests.databases import BACKENDS, database_url_for
from tests.e2e.harness import CONFIGURED_ADMIN, NOW, SIGNING_SECRET, RunningApp, running_app
from tests.fakes.hubspot_api import FakeHubSpot
from tests.fakes.salesforce_api import FakeSalesforce

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.SystemTimeWarning")

ANA = "U0ANA"
ANA_EMAIL = "ana@initech.com"


@dataclass
class Crm:
    app: RunningApp
    settings: Settings
    stages_dir: Path

    def sync(self, *, minutes_later: int = 0) -> None:
        """Run `crm-sync` once, as `dealbot jobs run crm-sync --now` does."""
        assert (
            run_job_now(
                self.settings,
                "crm-sync",
                now=NOW + dt.timedelta(minutes=minutes_later),
                client=WebClient(token="xoxb-e2e-token", base_url=self.app.slack.base_url),
                out=io.StringIO(),
            )
            == 0
        )

    def take_stages(self, user: str = CONFIGURED_ADMIN) -> str:
        reply = self.app.command("/dealbot", "team stages Enterprise from-crm", user=user)
        assert reply.status == 200 and reply.is_private
        return reply.all_text


@contextmanager
def connected(
    slack: FakeSlackWebAPI, database_url: str, stages_dir: Path | None, **crm: Any
) -> Iterator[Crm]:
    """Yield the app connected to a CRM, with the team Enterprise and Ana its rep."""
    extra = {"dealbot_stages_dir": stages_dir} if stages_dir is not None else {}
    with running_app(slack, database_url, **crm, **extra) as app:
        settings = load_settings(
            _env_file=None,
            slack_bot_token="xoxb-e2e-token",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.base_url,
            database_url=database_url,
            dealbot_admins=CONFIGURED_ADMIN,
            dealbot_timezone="America/New_York",
            **crm,
            **extra,
        )
        app.command("/dealbot", "team create Enterprise <#C0SALES|sales>", user=CONFIGURED_ADMIN)
        app.command("/dealbot", f"team add Enterprise rep <@{ANA}|ana>", user=CONFIGURED_ADMIN)
        yield Crm(app=app, settings=settings, stages_dir=stages_dir or Path())


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def salesforce(
    slack_api: FakeSlackWebAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeSalesforce, dict[str, Any]]]:
    slack_api.set_user(CONFIGURED_ADMIN, name="root", is_admin=True)
    slack_api.set_user(ANA, name="ana", email=ANA_EMAIL)
    slack_api.set_user("U0CARL", name="carl")
    with FakeSalesforce(clock=SystemClock()).start(tmp_path) as org:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(org.ca_bundle_path))
        key = tmp_path / "connected-app.key"
        key.write_bytes(org.private_key_pem)
        yield (
            org,
            {
                "dealbot_crm": "salesforce",
                "salesforce_login_url": org.login_url,
                "salesforce_client_id": org.CLIENT_ID,
                "salesforce_username": org.USERNAME,
                "salesforce_private_key_file": str(key),
                "salesforce_api_version": org.api_version,
            },
        )


def test_a_team_takes_salesforces_stages_and_its_deals_follow_their_crm_stage(
    slack_api: FakeSlackWebAPI,
    salesforce: tuple[FakeSalesforce, dict[str, Any]],
    database_url: str,
    tmp_path: Path,
) -> None:
    org, settings = salesforce
    stages_dir = tmp_path / "stages"
    stages_dir.mkdir()
    # A stage of the org's own, with Salesforce's forecast category Best Case.
    org.add_stage("Technical Win", probability=65, forecast_category="Best Case", order=6)
    ana = org.add_user(name="Ana Lima", email=ANA_EMAIL)
    acme = org.add_opportunity(
        account="Acme",
        Name="Acme expansion",
        Amount=50000,
        StageName="Value Proposition",
        CloseDate=dt.date(2026, 12, 18),
        OwnerId=ana,
    )
    with connected(slack_api, database_url, stages_dir, **settings) as crm:
        crm.sync()
        before = crm.app.deal_named("Acme")
        assert (before.stage, before.team_stage) == ("demo", None)

        taken = crm.take_stages()
        assert "*Enterprise* now uses Salesforce's pipeline as its stages" in taken
        assert "*Needs Analysis* (`needs_analysis`) · 20% · forecast default Pipeline" in taken
        assert "*Technical Win* (`technical_win`) · 65% · forecast default Best case" in taken
        assert (stages_dir / "enterprise.yml").is_file()
        # Acme's CRM stage is one of the team's now, at once.
        assert crm.app.deal_named("Acme").team_stage == "enterprise:value_proposition"

        shown = crm.app.command("/dealbot", "team stages Enterprise", user=ANA).all_text
        assert "*Value Proposition* (`value_proposition`) · 50%" in shown
        pipeline = crm.app.command("/pipeline", "", user=ANA).all_text
        assert "Value Proposition" in pipeline and "weighted $25,000" in pipeline

        # Moved in Salesforce: the next sync gives the deal that team stage.
        org.touch(acme, StageName="Technical Win")
        crm.sync(minutes_later=10)
        deal = crm.app.deal_named("Acme")
        assert (deal.stage, deal.team_stage) == ("proposal", "enterprise:technical_win")
        assert "Technical Win" in crm.app.command("/deal", "show acme", user=ANA).all_text

        # A deal first seen after the switch comes in with its team stage.
        org.add_opportunity(
            account="Initech",
            Name="Initech pilot",
            Amount=20000,
            StageName="Needs Analysis",
            CloseDate=dt.date(2026, 12, 30),
            OwnerId=ana,
        )
        crm.sync(minutes_later=20)
        assert crm.app.deal_named("Initech").team_stage == "enterprise:needs_analysis"

        # Reps type the team's stages; the CRM's forecast category is the stage's default.
        moved = crm.app.command("/deal", "initech stage:technical win", user=ANA).all_text
        assert "forecast pipeline → best case (the stage's default)" in moved
        # Salesforce gets the very stage typed, not another that also stands for proposal,
        # and the next pull leaves the deal in it.
        crm.sync(minutes_later=30)
        [initech] = [o for o in org.opportunities.values() if o["Name"] == "Initech pilot"]
        assert initech["StageName"] == "Technical Win"
        crm.sync(minutes_later=40)
        assert crm.app.deal_named("Initech").team_stage == "enterprise:technical_win"


def test_only_an_admin_takes_the_crms_stages_and_nothing_is_written_on_refusal(
    slack_api: FakeSlackWebAPI,
    salesforce: tuple[FakeSalesforce, dict[str, Any]],
    database_url: str,
    tmp_path: Path,
) -> None:
    _, settings = salesforce
    stages_dir = tmp_path / "stages"
    stages_dir.mkdir()
    with connected(slack_api, database_url, stages_dir, **settings) as crm:
        unread = crm.take_stages()
        assert "dealbot has not read Salesforce's pipeline yet" in unread
        assert "dealbot crm sync" in unread
        crm.sync()
        refused = crm.take_stages(user=ANA)
        assert "Only a workspace admin can set a team's stages" in refused
        missing = crm.app.command("/dealbot", "team stages Nowhere from-crm", user=CONFIGURED_ADMIN)
        assert "There is no team called “Nowhere”" in missing.all_text
        assert list(stages_dir.iterdir()) == []
        shown = crm.app.command("/dealbot", "team stages Enterprise", user=ANA).all_text
        assert "Prospecting" in shown and "Value Proposition" not in shown


def test_without_a_stages_folder_the_admin_is_told_how_to_set_one(
    slack_api: FakeSlackWebAPI,
    salesforce: tuple[FakeSalesforce, dict[str, Any]],
    database_url: str,
) -> None:
    _, settings = salesforce
    with connected(slack_api, database_url, None, **settings) as crm:
        crm.sync()
        before = crm.app.row_counts()
        refused = crm.take_stages()
        assert "DEALBOT_STAGES_DIR, which is not set" in refused
        assert "/dealbot team stages Enterprise from-crm" in refused
        assert crm.app.row_counts() == before


def test_with_no_crm_connected_there_is_no_pipeline_to_take(
    slack_api: FakeSlackWebAPI, database_url: str, tmp_path: Path
) -> None:
    slack_api.set_user(CONFIGURED_ADMIN, name="root", is_admin=True)
    slack_api.set_user(ANA, name="ana")
    with connected(slack_api, database_url, tmp_path) as crm:
        refused = crm.take_stages()
        assert "No CRM is connected" in refused and "DEALBOT_CRM" in refused
        bad = crm.app.command("/dealbot", "team stages Enterprise from crm", user=CONFIGURED_ADMIN)
        assert "more than one team name" in bad.all_text
        assert list(tmp_path.glob("*.yml")) == []


def test_a_team_takes_hubspots_pipeline_and_pulled_deals_take_its_stages(
    slack_api: FakeSlackWebAPI, database_url: str, tmp_path: Path
) -> None:
    slack_api.set_user(CONFIGURED_ADMIN, name="root", is_admin=True)
    slack_api.set_user(ANA, name="ana", email=ANA_EMAIL)
    stages_dir = tmp_path / "stages"
    stages_dir.mkdir()
    with FakeHubSpot() as hubspot:
        owner = hubspot.add_owner(email=ANA_EMAIL, first_name="Ana", last_name="Rep")
        globex = hubspot.add_deal(
            dealname="Globex",
            amount="40000",
            closedate="2026-12-18T00:00:00Z",
            dealstage="qualifiedtobuy",
            hubspot_owner_id=owner,
        )
        settings = {
            "dealbot_crm": "hubspot",
            "hubspot_access_token": hubspot.token,
            "hubspot_api_url": hubspot.url,
        }
        with connected(slack_api, database_url, stages_dir, **settings) as crm:
            crm.sync()
            taken = crm.take_stages()
            assert "*Enterprise* now uses HubSpot's pipeline as its stages" in taken
            # HubSpot's two stages nearest negotiation both stand for it, in its order.
            assert "*Decision Maker Bought-In* (`decision_maker_bought_in`) · 80%" in taken
            assert "*Contract Sent* (`contract_sent`) · 90%" in taken
            assert crm.app.deal_named("Globex").team_stage == "enterprise:qualified_to_buy"

            hubspot.set_deal(globex, dealstage="contractsent")
            crm.sync(minutes_later=10)
            deal = crm.app.deal_named("Globex")
            assert (deal.stage, deal.team_stage) == ("negotiation", "enterprise:contract_sent")
            pipeline = crm.app.command("/pipeline", "", user=ANA).all_text
            assert "Contract Sent" in pipeline and "weighted $36,000" in pipeline
