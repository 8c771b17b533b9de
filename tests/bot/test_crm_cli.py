"""`dealbot crm status` and `dealbot crm sync`: what they print and their exit codes
(0 nothing failed, 1 something did, 2 a usage or connection error named in one line)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.cli import main
from bot.crm_cli import crm_status, crm_sync, status_lines
from bot.crm_setup import CrmRuntime
from bot.fake_slack import FakeSlackWebAPI
from bot.settings import Settings, load_settings
from crm.records import CrmAuthFailed, CrmUnavailable
from crm.sync import ConflictNotice, CrmStatus, SyncReport
from domain.clock import FixedClock
from storage.database import Database
from storage.job_runs import JobRunRepository
from storage.migrate import upgrade
from storage.models import JobRun
from tests.bot.crm_doubles import EngineDouble, EngineScript, status
from tests.databases import sqlite_url

CRM_SETTINGS = (
    "DEALBOT_CRM",
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_USERNAME",
    "SALESFORCE_PRIVATE_KEY_FILE",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_WEBHOOK_SECRET",
    "SLACK_BOT_TOKEN",
    "DEALBOT_ADMINS",
)
TOKEN = "pat-na1-very-secret"
NOW = dt.datetime(2025, 12, 1, 10, 5, tzinfo=dt.UTC)


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in CRM_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    url = sqlite_url(tmp_path)
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    yield url


def settings_for(url: str, slack: FakeSlackWebAPI | None = None, **more: Any) -> Settings:
    values: dict[str, Any] = {
        "dealbot_crm": "hubspot",
        "hubspot_access_token": TOKEN,
        "database_url": url,
        "dealbot_admins": ("U0ROOT",),
    }
    if slack is not None:
        values["slack_api_url"] = slack.base_url
    return load_settings(_env_file=None, **(values | more))


def runtime(settings: Settings, script: EngineScript) -> CrmRuntime:
    def no_login() -> Any:
        raise AssertionError("the engine double never reaches the CRM")

    return CrmRuntime(settings, connect=no_login, engine_factory=script.factory)


def sync(
    settings: Settings,
    script: EngineScript,
    slack: FakeSlackWebAPI,
    *,
    full: bool = False,
    dry_run: bool = False,
) -> tuple[int, str]:
    out = io.StringIO()
    code = crm_sync(
        settings,
        full=full,
        dry_run=dry_run,
        out=out,
        runtime=runtime(settings, script),
        client=WebClient(token="xoxb-test", base_url=slack.base_url),
        clock=FixedClock(at=NOW),
    )
    return code, out.getvalue()


# --- usage errors through `dealbot` itself -----------------------------------------------


@pytest.mark.parametrize("argv", [["crm", "status"], ["crm", "sync"], ["crm", "sync", "--full"]])
def test_no_crm_is_a_usage_error_saying_what_to_set(
    database_url: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "dealbot: DEALBOT_CRM is none: set it to salesforce or hubspot\n"
    )


def test_a_missing_crm_setting_is_named(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALBOT_CRM", "salesforce")
    monkeypatch.setenv("SALESFORCE_CLIENT_ID", "3MVG9-consumer-key")
    assert main(["crm", "status"]) == 2
    assert capsys.readouterr().err == (
        "dealbot: SALESFORCE_USERNAME is not set (the integration user's username)\n"
    )


def test_sync_needs_the_bot_token_to_match_owners_and_dm(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALBOT_CRM", "hubspot")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    assert main(["crm", "sync"]) == 2
    err = capsys.readouterr().err
    assert err == "dealbot: SLACK_BOT_TOKEN is not set (the bot token, xoxb-...)\n"


@pytest.mark.parametrize("argv", [["crm"], ["crm", "push"], ["crm", "sync", "--everything"]])
def test_a_malformed_crm_command_exits_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2


# --- crm sync ------------------------------------------------------------------------------


def test_sync_prints_the_report_and_exits_0_when_nothing_failed(
    database_url: str, slack_api: FakeSlackWebAPI
) -> None:
    script = EngineScript(report=SyncReport(pulled=12, pushed=3, conflicts=1, failed=0))
    assert sync(settings_for(database_url, slack_api), script, slack_api) == (
        0,
        "pulled 12, pushed 3, conflicts 1, failed 0\n",
    )
    assert script.calls == [("run", {"full": False, "dry_run": False})]


def test_sync_exits_1_when_something_failed(database_url: str, slack_api: FakeSlackWebAPI) -> None:
    script = EngineScript(report=SyncReport(pulled=12, pushed=2, conflicts=0, failed=1))
    assert sync(settings_for(database_url, slack_api), script, slack_api) == (
        1,
        "pulled 12, pushed 2, conflicts 0, failed 1\n",
    )


def test_full_and_dry_run_reach_the_engine(
    database_url: str, slack_api: FakeSlackWebAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    script = EngineScript()
    code, out = sync(
        settings_for(database_url, slack_api), script, slack_api, full=True, dry_run=True
    )
    assert (code, out) == (0, "pulled 3, pushed 2, conflicts 1, failed 0\n")
    assert capsys.readouterr().err == (
        "dealbot: dry run: nothing was written to dealbot or the CRM\n"
    )
    assert script.calls == [("run", {"full": True, "dry_run": True})]


@pytest.mark.parametrize(
    "error",
    [CrmAuthFailed("This session is not valid for use with the REST API"), CrmUnavailable("503")],
)
def test_a_refused_login_or_an_unreachable_crm_exits_2_with_its_message(
    database_url: str,
    slack_api: FakeSlackWebAPI,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
) -> None:
    script = EngineScript(error=error)
    assert sync(settings_for(database_url, slack_api), script, slack_api) == (2, "")
    err = capsys.readouterr().err
    assert err == f"dealbot: HubSpot: {error}\n"
    assert TOKEN not in err


def test_what_the_engine_had_to_say_is_dmed_before_the_command_ends(
    database_url: str, slack_api: FakeSlackWebAPI
) -> None:
    def tell(engine: EngineDouble) -> None:
        engine.notices.conflict(
            ConflictNotice(
                rep="U0ANA",
                deal_id=7,
                deal_name="Initech",
                field="stage",
                kept="proposal",
                lost="demo",
                kept_from="HubSpot",
            )
        )

    # Even a run that then fails: the notice was recorded and goes out.
    script = EngineScript(effect=tell, error=CrmUnavailable("HubSpot answered 502"))
    assert sync(settings_for(database_url, slack_api), script, slack_api)[0] == 2
    (call,) = slack_api.calls_to("chat.postMessage")
    assert call.args["channel"] == "U0ANA"
    assert call.args["text"].startswith("Initech: your stage (demo) and a change in HubSpot")


# --- crm status ----------------------------------------------------------------------------


def run_status(settings: Settings, script: EngineScript) -> tuple[int, str]:
    out = io.StringIO()
    code = crm_status(settings, out=out, runtime=runtime(settings, script))
    return code, out.getvalue()


def test_status_when_connected(database_url: str) -> None:
    script = EngineScript(status=status())
    assert run_status(settings_for(database_url), script) == (
        0,
        "HubSpot: connected\n"
        "last pull: 2026-12-01 10:05 UTC\n"
        "cursor: 2026-12-01T10:04:59Z\n"
        "pending pushes: 2\n"
        "refused pushes: 1\n"
        "owners with no Slack user: ana@initech.com, ben@initech.com\n",
    )


def test_status_when_not_connected_says_why_and_exits_1(database_url: str) -> None:
    script = EngineScript(
        status=status(
            kind="hubspot",
            connected=False,
            message="The OAuth token used to make this call expired",
            last_pull_at=None,
            cursor=None,
            pending_pushes=0,
            refused_pushes=0,
            owners_without_slack_user=(),
        )
    )
    assert run_status(settings_for(database_url), script) == (
        1,
        "HubSpot: not connected: The OAuth token used to make this call expired\n"
        "last pull: never\n"
        "cursor: none (the next sync is a full one)\n"
        "pending pushes: 0\n"
        "refused pushes: 0\n"
        "owners with no Slack user: none\n",
    )


def test_status_that_cannot_reach_the_crm_exits_2(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    script = EngineScript(error=CrmUnavailable("Connection refused"))
    assert run_status(settings_for(database_url), script) == (2, "")
    assert capsys.readouterr().err == "dealbot: HubSpot: Connection refused\n"


# --- one sync at a time --------------------------------------------------------------------


def job_runs(url: str) -> list[tuple[str, str, str, str | None]]:
    database = Database.from_url(url)
    try:
        with database.session() as session:
            return [
                (run.job, run.scope, run.status, run.summary)
                for run in session.query(JobRun).order_by(JobRun.id)
            ]
    finally:
        database.dispose()


def test_a_sync_by_hand_holds_the_job_run_row_while_it_works(
    database_url: str, slack_api: FakeSlackWebAPI
) -> None:
    seen: list[list[tuple[str, str, str, str | None]]] = []
    script = EngineScript(effect=lambda engine: seen.append(job_runs(database_url)))
    assert sync(settings_for(database_url, slack_api), script, slack_api)[0] == 0
    # While the engine worked, the row said so; the scheduled jobs stand down on it.
    assert seen == [[("crm-sync", "all", "running", None)]]
    assert job_runs(database_url) == [
        ("crm-sync", "all", "done", "pulled 3, pushed 2, conflicts 1, failed 0")
    ]


def test_a_sync_by_hand_waits_its_turn_behind_a_running_one(
    database_url: str, slack_api: FakeSlackWebAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    database = Database.from_url(database_url)
    try:
        with database.session() as session:
            JobRunRepository(session).claim_firing(
                job="crm-sync", scope="UTC", fire_time=NOW, runner="elsewhere", at=NOW
            )
    finally:
        database.dispose()
    script = EngineScript()
    assert sync(settings_for(database_url, slack_api), script, slack_api) == (2, "")
    assert capsys.readouterr().err == (
        "dealbot: a crm-sync is already running (since 2025-12-01 10:05 UTC); "
        "try again when it ends\n"
    )
    assert script.calls == []
    # A dry run writes nothing, so it need not wait.
    assert sync(settings_for(database_url, slack_api), script, slack_api, dry_run=True)[0] == 0


def test_a_failed_sync_by_hand_leaves_its_row_failed(
    database_url: str, slack_api: FakeSlackWebAPI
) -> None:
    script = EngineScript(error=CrmAuthFailed("INVALID_LOGIN"))
    assert sync(settings_for(database_url, slack_api), script, slack_api)[0] == 2
    assert job_runs(database_url) == [("crm-sync", "all", "failed", "HubSpot: INVALID_LOGIN")]


def test_a_crm_message_that_names_its_crm_is_not_prefixed_twice(
    database_url: str, slack_api: FakeSlackWebAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    script = EngineScript(error=CrmAuthFailed("HubSpot refused the token: it was revoked"))
    assert sync(settings_for(database_url, slack_api), script, slack_api)[0] == 2
    assert capsys.readouterr().err == "dealbot: HubSpot refused the token: it was revoked\n"


def test_status_shows_the_share_of_the_api_allowance_when_the_engine_knows_it() -> None:
    @dataclass(frozen=True)
    class StatusWithUsage(CrmStatus):
        api_usage_share: float | None = None
        slowed: bool = False

    base = status().__dict__
    lines = status_lines(
        StatusWithUsage(**{**base, "api_usage_share": 0.834, "slowed": True}), crm="Salesforce"
    )
    assert lines[-1] == "API allowance used: 83% (pulls slowed down to spare it)"
    lines = status_lines(StatusWithUsage(**{**base, "api_usage_share": None}), crm="Salesforce")
    assert lines[-1].startswith("owners with no Slack user")
