"""The CRM wiring in bot.crm_setup: notices as outbox DMs, owners by email, the
reconnecting connector, and the `crm-sync` / `crm-push` jobs one at a time."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.crm_setup import (
    CRM_PUSH_JOB,
    CRM_SYNC_JOB,
    CrmRuntime,
    OutboxNotices,
    ReconnectingConnector,
    SlackUserDirectory,
    crm_jobs,
)
from bot.fake_slack import FakeSlackWebAPI
from bot.jobs_cli import context_factory, list_jobs
from bot.settings import Settings, load_settings
from bot.slack import SlackUnavailable
from crm.records import CrmAuthFailed, CrmUnavailable, PullBatch
from crm.sync import ConflictNotice, RefusalNotice, SyncReport
from domain.clock import FixedClock
from reminders.scheduler import JobScheduler
from storage.database import Database
from storage.job_runs import JobRunRepository
from storage.migrate import upgrade
from storage.models import JobRun, OutboxMessage
from tests.bot.crm_doubles import EngineDouble, EngineScript
from tests.databases import BACKENDS, database_url_for

NOW = dt.datetime(2025, 12, 1, 10, 5, tzinfo=dt.UTC)
REP, ADMIN = "U0ANA", "U0ROOT"


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with database_url_for(request.param, tmp_path) as url:
        upgrade(url)
        database = Database.from_url(url)
        try:
            yield database
        finally:
            database.dispose()


@pytest.fixture
def client(slack_api: FakeSlackWebAPI) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack_api.base_url, timeout=5)


def hubspot_settings(database: Database, slack: FakeSlackWebAPI, **more: Any) -> Settings:
    values: dict[str, Any] = {
        "dealbot_crm": "hubspot",
        "hubspot_access_token": "pat-na1-test",
        "database_url": database.engine.url.render_as_string(hide_password=False),
        "slack_api_url": slack.base_url,
        "dealbot_admins": (ADMIN,),
    }
    return load_settings(_env_file=None, **(values | more))


def notices(database: Database, client: WebClient, kind: str = "salesforce") -> OutboxNotices:
    return OutboxNotices(
        database=database,
        client=client,
        clock=FixedClock(at=NOW),
        kind=kind,  # type: ignore[arg-type]
    )


def outbox(database: Database) -> list[OutboxMessage]:
    with database.session() as session:
        rows = list(session.query(OutboxMessage).order_by(OutboxMessage.id))
        for row in rows:
            session.expunge(row)
        return rows


def dm_texts(slack: FakeSlackWebAPI) -> list[tuple[str, str]]:
    return [(c.args["channel"], c.args["text"]) for c in slack.calls_to("chat.postMessage")]


# --- notices ----------------------------------------------------------------------------


CONFLICT = ConflictNotice(
    rep=REP,
    deal_id=7,
    deal_name="Initech",
    field="close_date",
    kept="2025-12-31",
    lost="2025-12-15",
    kept_from="Salesforce",
)


def test_a_conflict_is_dmed_to_the_rep_in_the_specs_words_once(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    told = notices(database, client)
    told.conflict(CONFLICT)
    assert [(m.job, m.recipient, m.status) for m in outbox(database)] == [
        (CRM_SYNC_JOB, REP, "pending")
    ]
    assert told.flush().sent == 1
    # A rerun that reports the same conflict the same day sends nothing more.
    told.conflict(CONFLICT)
    assert told.flush().sent == 0
    assert dm_texts(slack_api) == [
        (
            REP,
            "Initech: your close date (Mon 15 Dec) and a change in Salesforce (Wed 31 Dec) "
            "crossed; Salesforce's was later, so it stands. Yours is kept in the deal's history.",
        )
    ]


def test_a_conflict_slack_won_says_yours_stands(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    told = notices(database, client, kind="hubspot")
    told.conflict(
        ConflictNotice(
            rep=REP,
            deal_id=7,
            deal_name="Initech",
            field="close_date",
            kept="2025-12-15",
            lost="2025-12-31",
            kept_from="Slack",
        )
    )
    told.flush()
    assert dm_texts(slack_api)[0][1] == (
        "Initech: your close date (Mon 15 Dec) and a change in HubSpot (Wed 31 Dec) crossed; "
        "yours was later, so it stands. HubSpot's is kept in the deal's history."
    )


def test_a_refusal_gives_the_crms_own_message_escaped(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    told = notices(database, client)
    told.refused(
        RefusalNotice(
            rep=REP,
            deal_id=7,
            deal_name="Initech <@U0BOSS>",
            fields=("stage",),
            message="Stage needs <b>Amount</b> & a <!channel> first.",
        )
    )
    told.flush()
    ((channel, text),) = dm_texts(slack_api)
    assert channel == REP
    assert text == (
        "Salesforce did not take your change to Initech &lt;@U0BOSS&gt;'s stage: "
        "Stage needs &lt;b&gt;Amount&lt;/b&gt; &amp; a &lt;!channel&gt; first. "
        'It stays in dealbot, marked "not in Salesforce yet".'
    )


def test_unmatched_owners_and_a_refused_login_go_to_the_admins(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    told = notices(database, client)
    told.owners_without_slack_user((ADMIN, "U0BOSS"), ("ana@initech.com", "ben@initech.com"))
    told.login_refused((ADMIN,), "user hasn't approved this consumer")
    told.flush()
    sent = dm_texts(slack_api)
    assert sorted(channel for channel, _ in sent) == ["U0BOSS", ADMIN, ADMIN]
    owners = next(text for _, text in sent if "ana@initech.com" in text)
    assert "ana@initech.com, ben@initech.com" in owners
    assert "Slack account with that email" in owners
    login = next(text for _, text in sent if "log in" in text)
    assert "user hasn't approved this consumer" in login
    assert "SALESFORCE_CLIENT_ID" in login


def test_without_admins_nobody_is_dmed(database: Database, client: WebClient) -> None:
    told = notices(database, client)
    told.owners_without_slack_user((), ("ana@initech.com",))
    told.login_refused((), "INVALID_SESSION_ID")
    assert outbox(database) == []


def test_a_notice_slack_cannot_take_now_stays_pending_for_the_sweep(
    database: Database, client: WebClient, slack_api_lenient: FakeSlackWebAPI
) -> None:
    slack_api_lenient.set_response("chat.postMessage", {"ok": False, "error": "ratelimited"})
    told = OutboxNotices(
        database=database,
        client=WebClient(token="xoxb-test", base_url=slack_api_lenient.base_url),
        clock=FixedClock(at=NOW),
        kind="salesforce",
    )
    told.conflict(CONFLICT)
    summary = told.flush()
    assert (summary.sent, summary.pending) == (0, 1)
    assert [m.status for m in outbox(database)] == ["pending"]


# --- owners by email ----------------------------------------------------------------------


def test_owners_are_found_by_email_and_remembered(
    client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    slack_api.set_user(REP, email="ana@initech.com")
    directory = SlackUserDirectory(client=client)
    assert directory.user_by_email("Ana@Initech.com ") == REP
    assert directory.user_by_email("ana@initech.com") == REP
    assert directory.user_by_email("nobody@initech.com") is None
    assert len(slack_api.calls_to("users.lookupByEmail")) == 2


def test_slack_failing_is_not_read_as_nobody(slack_api_lenient: FakeSlackWebAPI) -> None:
    slack_api_lenient.set_response("users.lookupByEmail", {"ok": False, "error": "internal_error"})
    directory = SlackUserDirectory(
        client=WebClient(token="xoxb-test", base_url=slack_api_lenient.base_url)
    )
    with pytest.raises(SlackUnavailable):
        directory.user_by_email("ana@initech.com")


# --- the connector --------------------------------------------------------------------------


class SessionConnector:
    """A connector whose session expires after `good_calls` calls."""

    kind = "salesforce"

    def __init__(self, number: int, *, good_calls: int) -> None:
        self.number = number
        self.good_calls = good_calls

    def _spend(self) -> None:
        if self.good_calls <= 0:
            raise CrmAuthFailed("Session expired or invalid")
        self.good_calls -= 1

    def record_url(self, deal_id: str) -> str:
        self._spend()
        return f"https://initech.my.salesforce.com/{deal_id}?login={self.number}"

    def pull(self, cursor: str | None) -> Iterator[PullBatch]:
        self._spend()
        yield PullBatch(deals=(), cursor=f"{cursor}+{self.number}")


def reconnecting(*, good_calls: int, logins_refused_after: int = 99) -> tuple[Any, list[int]]:
    logins: list[int] = []

    def connect() -> Any:
        if len(logins) >= logins_refused_after:
            raise CrmAuthFailed("user hasn't approved this consumer")
        logins.append(len(logins) + 1)
        return SessionConnector(logins[-1], good_calls=good_calls)

    return ReconnectingConnector(kind="salesforce", connect=connect), logins


def test_the_connector_logs_in_on_first_use_only() -> None:
    connector, logins = reconnecting(good_calls=5)
    assert logins == []
    assert connector.usage() is None  # no login just to say nothing was spent
    assert connector.record_url("006A") == "https://initech.my.salesforce.com/006A?login=1"
    connector.record_url("006B")
    assert logins == [1]


def test_an_expired_session_costs_one_retry_on_a_fresh_login() -> None:
    connector, logins = reconnecting(good_calls=1)
    connector.record_url("006A")
    assert connector.record_url("006B").endswith("login=2")
    assert [batch.cursor for batch in connector.pull("c")] == ["c+3"]
    assert logins == [1, 2, 3]


def test_a_refused_fresh_login_reaches_the_engine() -> None:
    connector, _ = reconnecting(good_calls=0, logins_refused_after=1)
    with pytest.raises(CrmAuthFailed, match="approved"):
        connector.record_url("006A")


# --- the jobs ---------------------------------------------------------------------------------


def test_no_crm_no_crm_jobs() -> None:
    assert crm_jobs(load_settings(_env_file=None, dealbot_crm="none")) == {}


def test_jobs_list_shows_the_crm_jobs_when_a_crm_is_connected(
    database: Database, slack_api: FakeSlackWebAPI
) -> None:
    out = io.StringIO()
    list_jobs(hubspot_settings(database, slack_api), out=out)
    listed = out.getvalue()
    assert "crm-sync             minute=*/5 (UTC)" in listed
    assert "crm-push             minute=* (UTC)" in listed
    assert "pull what changed in HubSpot" in listed
    out = io.StringIO()
    list_jobs(hubspot_settings(database, slack_api, dealbot_crm="none"), out=out)
    assert "crm-" not in out.getvalue()


def scheduler_for(
    database: Database, slack: FakeSlackWebAPI, client: WebClient, script: EngineScript
) -> JobScheduler:
    settings = hubspot_settings(database, slack)

    def no_login() -> Any:
        raise AssertionError("the engine double never reaches the CRM")

    runtime = CrmRuntime(settings, connect=no_login, engine_factory=script.factory)
    # The services' DealService is the pre-CRM one; the CRM jobs bring their own engine.
    plain = hubspot_settings(database, slack, dealbot_crm="none")
    return JobScheduler(
        jobs=crm_jobs(settings, runtime=runtime),
        database=database,
        context_factory=context_factory(plain, database=database, client=client),
        client=client,
        clock=FixedClock(at=NOW),
        runner="test",
    )


def runs(database: Database) -> list[tuple[str, str, str | None]]:
    with database.session() as session:
        return [
            (run.job, run.status, run.summary) for run in session.query(JobRun).order_by(JobRun.id)
        ]


def test_crm_sync_runs_the_engine_and_its_notices_go_out_with_the_run(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    def tell(engine: EngineDouble) -> None:
        engine.notices.conflict(CONFLICT)

    script = EngineScript(effect=tell)
    scheduler = scheduler_for(database, slack_api, client, script)
    summary = scheduler.fire(CRM_SYNC_JOB, "UTC", NOW)
    assert summary is not None and summary.sent == 1
    assert script.calls == [("run", {"full": False, "dry_run": False})]
    assert [m.job for m in outbox(database)] == [CRM_SYNC_JOB]
    assert runs(database) == [(CRM_SYNC_JOB, "done", "sent 1, pending 0, failed 0")]
    built = script.built_with[0]
    assert built["admins"] == (ADMIN,)
    assert isinstance(built["directory"], SlackUserDirectory)
    # A second instance losing the same firing does not run the engine again.
    assert scheduler.fire(CRM_SYNC_JOB, "UTC", NOW) is None
    assert len(script.calls) == 1


def test_crm_push_only_pushes(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    script = EngineScript()
    scheduler_for(database, slack_api, client, script).fire(CRM_PUSH_JOB, "UTC", NOW)
    assert script.calls == [("push_pending", None)]


def claim(database: Database, job: str, fire_time: dt.datetime, *, started: dt.datetime) -> None:
    with database.session() as session:
        JobRunRepository(session).claim_firing(
            job=job, scope="UTC", fire_time=fire_time, runner="elsewhere", at=started
        )


def test_a_sync_still_running_keeps_the_next_sync_and_every_push_out(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    earlier = NOW - dt.timedelta(minutes=5)
    claim(database, CRM_SYNC_JOB, earlier, started=earlier)
    script = EngineScript()
    scheduler = scheduler_for(database, slack_api, client, script)
    scheduler.fire(CRM_SYNC_JOB, "UTC", NOW)
    scheduler.fire(CRM_PUSH_JOB, "UTC", NOW)
    assert script.calls == []


def test_a_running_push_does_not_starve_the_sync(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    claim(database, CRM_PUSH_JOB, NOW, started=NOW)
    script = EngineScript()
    scheduler_for(database, slack_api, client, script).fire(CRM_SYNC_JOB, "UTC", NOW)
    assert script.calls == [("run", {"full": False, "dry_run": False})]


def test_a_run_left_running_by_a_dead_process_is_ignored_after_a_while(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    long_ago = NOW - dt.timedelta(hours=3)
    claim(database, CRM_SYNC_JOB, long_ago, started=long_ago)
    script = EngineScript()
    scheduler_for(database, slack_api, client, script).fire(CRM_SYNC_JOB, "UTC", NOW)
    assert len(script.calls) == 1


def test_a_crm_that_is_down_ends_the_run_quietly(
    database: Database,
    client: WebClient,
    slack_api: FakeSlackWebAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = EngineScript(error=CrmUnavailable("HubSpot answered 503"))
    summary = scheduler_for(database, slack_api, client, script).fire(CRM_SYNC_JOB, "UTC", NOW)
    assert summary is not None
    assert runs(database)[0][:2] == (CRM_SYNC_JOB, "done")
    assert "HubSpot answered 503" in caplog.text
    assert "pat-na1-test" not in caplog.text


def test_the_report_is_logged_without_secrets(
    database: Database,
    client: WebClient,
    slack_api: FakeSlackWebAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    script = EngineScript(report=SyncReport(pulled=4, pushed=1, conflicts=0, failed=0))
    scheduler_for(database, slack_api, client, script).fire(CRM_SYNC_JOB, "UTC", NOW)
    assert "crm-sync: pulled 4, pushed 1, conflicts 0, failed 0" in caplog.text
    assert "pat-na1-test" not in caplog.text


def test_a_sync_started_by_hand_keeps_the_scheduled_ones_out(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    from bot.crm_setup import claim_manual_sync, finish_manual_sync

    # Started by hand at the very instant of a firing: still not mistaken for the firing.
    run_id = claim_manual_sync(database, now=NOW, runner="cli")
    script = EngineScript()
    scheduler = scheduler_for(database, slack_api, client, script)
    scheduler.fire(CRM_SYNC_JOB, "UTC", NOW)
    scheduler.fire(CRM_PUSH_JOB, "UTC", NOW)
    assert script.calls == []
    finish_manual_sync(database, run_id, status="done", summary="pulled 0", at=NOW)
    later = NOW + dt.timedelta(minutes=5)
    scheduler.clock = FixedClock(at=later)
    scheduler.fire(CRM_SYNC_JOB, "UTC", later)
    assert script.calls == [("run", {"full": False, "dry_run": False})]


def test_a_login_message_that_names_its_crm_is_not_prefixed_twice(
    database: Database, client: WebClient, slack_api: FakeSlackWebAPI
) -> None:
    told = notices(database, client)
    told.login_refused((ADMIN,), "Salesforce refused the login: user hasn't approved this consumer")
    told.flush()
    ((_, text),) = dm_texts(slack_api)
    assert text.startswith(
        "Salesforce refused the login: user hasn't approved this consumer. Sync is paused "
        "until a login works; check SALESFORCE_CLIENT_ID,"
    )
