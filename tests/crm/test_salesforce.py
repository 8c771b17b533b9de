"""The Salesforce connector, driving the real simple-salesforce against the fake over TLS."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crm.records import (
    SYNCED_FIELDS,
    CrmAuthFailed,
    CrmError,
    CrmRateLimited,
    CrmRefused,
    CrmUnavailable,
    NewTask,
)
from crm.salesforce import SalesforceConnector
from tests.fakes.salesforce_api import SCHEMA, FakeSalesforce, MovableClock

# The suite moves the wall clock (--fake-now); urllib3 then warns of the date on every TLS
# connection, which says nothing here: the fake's certificate is issued at the moved time.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.SystemTimeWarning")

START = dt.datetime(2031, 3, 4, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(at=START)


@pytest.fixture
def fake(
    clock: MovableClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSalesforce]:
    with FakeSalesforce(clock=clock, page_size=3).start(tmp_path) as running:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(running.ca_bundle_path))
        yield running


def connect(
    fake: FakeSalesforce, clock: MovableClock, *, key: bytes | None = None, **options: Any
) -> SalesforceConnector:
    return SalesforceConnector.login(
        login_url=fake.login_url,
        client_id=fake.CLIENT_ID,
        username=fake.USERNAME,
        private_key=key or fake.private_key_pem,
        api_version="59.0",
        clock=clock,
        **options,
    )


@pytest.fixture
def sf(fake: FakeSalesforce, clock: MovableClock) -> SalesforceConnector:
    return connect(fake, clock, bulk_poll_seconds=0)


def soql_sent(fake: FakeSalesforce) -> list[str]:
    return [c.query["q"][0] for c in fake.calls if c.path.endswith("/query/") and "q" in c.query]


# --- login ---


def test_jwt_login_builds_a_client_on_the_instance_the_token_names(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    token_calls = fake.calls_to("POST", "/services/oauth2/token")
    assert len(token_calls) == 1
    assert sf.record_url("006X") == f"{fake.instance_url}/lightning/r/Opportunity/006X/view"
    assert len(sf.stages()) == 10  # the client reached the REST API with the token


def other_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_a_login_signed_with_another_key_is_refused_with_salesforces_words(
    fake: FakeSalesforce, clock: MovableClock
) -> None:
    with pytest.raises(CrmAuthFailed, match="invalid assertion"):
        connect(fake, clock, key=other_key())


def test_a_login_for_another_audience_is_refused(fake: FakeSalesforce, clock: MovableClock) -> None:
    with pytest.raises(CrmAuthFailed, match="audience is invalid"):
        SalesforceConnector.login(
            login_url=fake.instance_url,  # same server, but not the URL the app expects
            client_id=fake.CLIENT_ID,
            username=fake.USERNAME,
            private_key=fake.private_key_pem,
            api_version="59.0",
            clock=clock,
        )


def test_an_expired_assertion_is_refused(fake: FakeSalesforce, clock: MovableClock) -> None:
    stale = MovableClock(at=START - dt.timedelta(minutes=10))
    with pytest.raises(CrmAuthFailed, match="expired"):
        connect(fake, stale)


def test_an_unreachable_login_server_is_unavailable(clock: MovableClock) -> None:
    with pytest.raises(CrmUnavailable):
        SalesforceConnector.login(
            login_url="https://127.0.0.1:9",
            client_id="x",
            username="y",
            private_key=other_key(),
            api_version="59.0",
            clock=clock,
        )


def test_a_revoked_app_fails_auth_after_one_new_login_attempt(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    fake.revoke()
    with pytest.raises(CrmAuthFailed, match="hasn't approved") as raised:
        sf.owners()
    assert len(fake.calls_to("POST", "/services/oauth2/token")) == 2
    assert not any(token in str(raised.value) for token in fake._sessions)


def test_an_expired_session_logs_in_again_once_and_retries(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    fake.expire_sessions()
    owners = sf.owners()
    assert [o.email for o in owners] == [fake.USERNAME]
    assert len(fake.calls_to("POST", "/services/oauth2/token")) == 2
    assert len(fake.calls_to("GET", "/query/")) == 2  # the refused call, then the retry


# --- reads ---


def test_stages_map_probability_order_and_forecast_categories(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    fake.add_stage("Old Stage", probability=5, forecast_category="Pipeline", active=False)
    fake.add_stage("Verbal", probability=95, forecast_category="Commit", order=11)
    fake.add_stage("Upside", probability=40, forecast_category="Best Case", order=12)
    stages = {s.id: s for s in sf.stages()}
    assert "Old Stage" not in stages
    assert [s.order for s in stages.values()] == sorted(s.order for s in stages.values())
    prospecting = stages["Prospecting"]
    assert (prospecting.probability, prospecting.is_closed, prospecting.forecast_category) == (
        Decimal("0.1"),
        False,
        "pipeline",
    )
    won, lost = stages["Closed Won"], stages["Closed Lost"]
    assert (won.is_closed, won.is_won, won.probability, won.forecast_category) == (
        True,
        True,
        Decimal(1),
        "commit",
    )
    assert (lost.is_won, lost.forecast_category) == (False, "omitted")
    assert stages["Verbal"].forecast_category == "commit"
    assert stages["Upside"].forecast_category == "best_case"


def test_owners_are_active_users_with_their_email(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    ana = fake.add_user(name="Ana Lima", email="ana@example.com")
    fake.add_user(name="Gone Person", email="gone@example.com", active=False)
    owners = {o.id: o for o in sf.owners()}
    assert owners[ana].email == "ana@example.com" and owners[ana].name == "Ana Lima"
    assert "gone@example.com" not in {o.email for o in owners.values()}


def seed_deals(fake: FakeSalesforce, clock: MovableClock, count: int) -> list[str]:
    ids = []
    for n in range(count):
        if n % 2 == 0:
            clock.advance(1)  # pairs share a second, as SystemModstamp often does
        ids.append(
            fake.add_opportunity(
                Name=f"Deal {n}", account=f"Account {n}", Amount=1000 + n, StageName="Qualification"
            )
        )
    return ids


def test_pull_pages_through_next_records_url_in_modstamp_order(
    fake: FakeSalesforce, clock: MovableClock, sf: SalesforceConnector
) -> None:
    ids = seed_deals(fake, clock, 7)
    batches = list(sf.pull(None))
    assert [len(b.deals) for b in batches] == [3, 3, 1]  # the fake's page size is 3
    assert [d.id for b in batches for d in b.deals] == ids
    assert len(fake.calls_to("GET", "/query/01g")) == 2  # two query_more calls
    deal = batches[0].deals[0]
    assert (deal.title, deal.account, deal.amount, deal.stage) == (
        "Deal 0",
        "Account 0",
        Decimal("1000.00"),
        "Qualification",
    )
    assert deal.forecast_category == "pipeline" and deal.currency is None
    assert deal.modified_at == START + dt.timedelta(seconds=1)
    assert batches[-1].cursor == (START + dt.timedelta(seconds=4)).isoformat()
    assert "SELECT COUNT() FROM Opportunity" in soql_sent(fake)


def test_incremental_pull_reads_from_the_cursor_second_so_same_second_changes_are_kept(
    fake: FakeSalesforce, clock: MovableClock, sf: SalesforceConnector
) -> None:
    ids = seed_deals(fake, clock, 6)
    cursor = list(sf.pull(None))[-1].cursor
    # A change lands in the cursor's own second, after the pull read it.
    fake.touch(ids[4], NextStep="Send the MSA")
    clock.advance(5)
    fake.touch(ids[0], Amount=5000)
    deals = [d for b in sf.pull(cursor) for d in b.deals]
    assert [d.id for d in deals] == [ids[4], ids[5], ids[0]]
    assert deals[0].next_step == "Send the MSA" and deals[2].amount == Decimal("5000.00")
    last = soql_sent(fake)[-1]
    assert "WHERE SystemModstamp >= 2031-03-04T09:30:03Z ORDER BY SystemModstamp, Id" in last


def test_contact_roles_and_tasks_come_with_each_deal(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    deal_id = fake.add_opportunity(Name="Acme renewal", account="Acme")
    fake.add_contact_role(deal_id, name="Eve Buyer", email="eve@acme.test", role="Economic Buyer")
    fake.add_contact_role(deal_id, name="Carl Champ", email="carl@acme.test", role="Champion")
    fake.add_contact_role(deal_id, name="Una User", email=None, role="Business User")
    fake.add_task(deal_id, Subject="Demo", ActivityDate=dt.date(2031, 3, 10))
    fake.add_task(deal_id, Subject="Intro", Status="Completed")
    bare = fake.add_opportunity(Name="No contacts")
    deals = {d.id: d for d in sf.deals([deal_id, bare])}
    roles = {c.name: c.role for c in deals[deal_id].contacts}
    assert roles == {"Eve Buyer": "economic_buyer", "Carl Champ": "champion", "Una User": None}
    assert {(t.subject, t.due, t.done) for t in deals[deal_id].tasks} == {
        ("Demo", dt.date(2031, 3, 10), False),
        ("Intro", None, True),
    }
    assert deals[bare].contacts == () and deals[bare].tasks == ()  # null child subqueries


def test_first_sync_over_the_bulk_threshold_uses_bulk_2_and_fetches_children_by_id(
    fake: FakeSalesforce, clock: MovableClock
) -> None:
    ids = seed_deals(fake, clock, 8)
    fake.add_contact_role(ids[5], name="Eve Buyer", email="eve@acme.test", role="Decision Maker")
    fake.add_task(ids[7], Subject="Security review", OwnerId=fake.integration_user)
    sf = connect(fake, clock, bulk_threshold=5, bulk_poll_seconds=0, id_chunk=3)
    batches = list(sf.pull(None))
    deals = [d for b in batches for d in b.deals]
    assert [d.id for d in deals] == ids
    assert fake.calls_to("POST", "/jobs/query") and fake.calls_to("GET", "/results")
    assert deals[5].contacts[0].role == "economic_buyer"
    assert deals[7].tasks[0].subject == "Security review"
    assert deals[3].account == "Account 3" and deals[3].amount == Decimal("1003.00")
    assert batches[-1].cursor == deals[-1].modified_at.isoformat()
    in_queries = [q for q in soql_sent(fake) if "OpportunityId IN" in q]
    assert len(in_queries) == 3  # 8 ids in chunks of 3
    assert not any("(SELECT" in q for q in soql_sent(fake) if "FROM Opportunity" in q)


def test_field_history_maps_fields_and_keeps_time_order(
    fake: FakeSalesforce, clock: MovableClock, sf: SalesforceConnector
) -> None:
    deal_id = fake.add_opportunity(Name="Acme", StageName="Prospecting", Amount=100)
    clock.advance(60)
    fake.touch(deal_id, StageName="Negotiation/Review")
    clock.advance(60)
    fake.touch(deal_id, Amount=250)
    changes = list(sf.field_history([deal_id]))
    assert [(c.field, c.old, c.new) for c in changes] == [
        ("stage", "Prospecting", "Negotiation/Review"),
        ("amount", "100.00", "250.00"),
    ]
    assert changes[0].at == START + dt.timedelta(seconds=60)


# --- writes ---


def test_update_sends_only_the_given_fields_by_their_salesforce_names(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    deal_id = fake.add_opportunity(Name="Acme", StageName="Prospecting")
    sf.update_deal(
        deal_id,
        {"stage": "Proposal/Price Quote", "forecast_category": "best_case", "next_step": "MSA"},
    )
    (patch,) = fake.calls_to("PATCH", "/sobjects/Opportunity/")
    assert patch.body == {
        "StageName": "Proposal/Price Quote",
        "ForecastCategoryName": "Best Case",
        "NextStep": "MSA",
    }
    stored = fake.opportunities[deal_id]
    assert stored["ForecastCategoryName"] == "Best Case"  # sent with the stage: kept
    assert stored["Probability"] == 75


def test_a_stage_alone_takes_the_stages_default_category_as_salesforce_does(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    deal_id = fake.add_opportunity(Name="Acme", ForecastCategoryName="Commit")
    sf.update_deal(deal_id, {"stage": "Closed Won"})
    (deal,) = sf.deals([deal_id])
    assert (deal.stage, deal.forecast_category) == ("Closed Won", "commit")
    assert fake.opportunities[deal_id]["ForecastCategoryName"] == "Closed"


def test_the_fake_refuses_read_only_fields_and_the_connector_never_sends_one(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    deal_id = fake.add_opportunity(Name="Acme", account="Acme")
    assert sf._sf is not None
    client: Salesforce = sf._sf
    with pytest.raises(SalesforceMalformedRequest) as refused:
        client.Opportunity.update(deal_id, {"IsClosed": True})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    every_field: dict[str, object] = {
        "title": "Acme 2",
        "account": "Acme",
        "amount": Decimal("1234.50"),
        "currency": "EUR",
        "close_date": dt.date(2031, 6, 30),
        "stage": "Negotiation/Review",
        "forecast_category": "commit",
        "next_step": "Legal review",
        "owner": fake.integration_user,
    }
    assert set(every_field) == set(SYNCED_FIELDS)
    sf.update_deal(deal_id, every_field)
    patch = fake.calls_to("PATCH", "/sobjects/Opportunity/")[-1]
    assert set(patch.body) <= SCHEMA["Opportunity"].writable
    assert "CurrencyIsoCode" not in patch.body  # a single-currency org has no such field
    (deal,) = sf.deals([deal_id])
    assert (deal.title, deal.amount, deal.close_date, deal.forecast_category) == (
        "Acme 2",
        Decimal("1234.50"),
        dt.date(2031, 6, 30),
        "commit",
    )


def test_a_validation_rule_is_refused_with_salesforces_message_and_fields(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    deal_id = fake.add_opportunity(Name="Acme")
    fake.add_validation_rule(
        lambda o: o["StageName"] == "Negotiation/Review" and not o.get("NextStep"),
        "Add a next step before Negotiation.",
        ["NextStep"],
    )
    with pytest.raises(CrmRefused) as refused:
        sf.update_deal(deal_id, {"stage": "Negotiation/Review"})
    assert str(refused.value) == "Add a next step before Negotiation."
    assert refused.value.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert refused.value.fields == ("next_step",)
    assert fake.opportunities[deal_id]["StageName"] == "Prospecting"


def test_a_locked_record_is_refused(fake: FakeSalesforce, sf: SalesforceConnector) -> None:
    deal_id = fake.add_opportunity(Name="Acme")
    fake.lock(deal_id)
    with pytest.raises(CrmRefused, match="locked") as refused:
        sf.update_deal(deal_id, {"next_step": "x"})
    assert refused.value.code == "ENTITY_IS_LOCKED"


def test_a_server_error_on_a_write_is_unavailable_and_not_retried(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    deal_id = fake.add_opportunity(Name="Acme")
    fake.fail_next(500)
    with pytest.raises(CrmUnavailable) as failed:
        sf.update_deal(deal_id, {"next_step": "x"})
    assert not isinstance(failed.value, CrmRateLimited)
    assert len(fake.calls_to("PATCH", "/sobjects/Opportunity/")) == 1
    sf.update_deal(deal_id, {"next_step": "x"})  # the outbox's retry goes through
    assert fake.opportunities[deal_id]["NextStep"] == "x"


def test_the_daily_quota_exceeded_is_rate_limited(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    fake.api_limit = fake.api_usage
    with pytest.raises(CrmRateLimited, match="TotalRequests Limit exceeded"):
        sf.owners()


def test_usage_comes_from_the_limit_header_of_every_answer(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    assert sf.usage() is None  # the token answer carries no usage
    sf.owners()
    sf.owners()
    usage = sf.usage()
    assert usage is not None and (usage.used, usage.limit) == (2, 100_000)
    assert usage.used == fake.api_usage


def test_a_read_waits_out_retry_after_with_the_injected_sleep(
    fake: FakeSalesforce, clock: MovableClock
) -> None:
    slept: list[float] = []
    sf = connect(fake, clock, sleep=slept.append)
    fake.fail_next(429, times=2, retry_after=7)
    assert sf.owners()
    assert slept == [7.0, 7.0]


def test_a_write_does_not_wait_out_a_429(fake: FakeSalesforce, clock: MovableClock) -> None:
    slept: list[float] = []
    sf = connect(fake, clock, sleep=slept.append)
    deal_id = fake.add_opportunity(Name="Acme")
    fake.fail_next(429, retry_after=7)
    with pytest.raises(CrmRateLimited) as limited:
        sf.update_deal(deal_id, {"next_step": "x"})
    assert limited.value.retry_after == 7.0 and slept == []


def test_a_long_retry_after_is_not_waited_for(fake: FakeSalesforce, clock: MovableClock) -> None:
    slept: list[float] = []
    sf = connect(fake, clock, sleep=slept.append)
    fake.fail_next(503, retry_after=3600)
    with pytest.raises(CrmUnavailable):
        sf.stages()
    assert slept == []


def test_create_deal_needs_salesforces_required_fields(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    with pytest.raises(CrmRefused, match="Required fields are missing") as refused:
        sf.create_deal({"title": "Globex"})
    assert refused.value.code == "REQUIRED_FIELD_MISSING"
    assert set(refused.value.fields) == {"stage", "close_date"}


def test_create_deal_links_an_existing_account_by_name_and_skips_an_unknown_one(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    acme = fake.add_account("Acme")
    fields = {"title": "Acme", "stage": "Prospecting", "close_date": dt.date(2031, 5, 1)}
    linked = sf.create_deal({**fields, "account": "Acme", "amount": Decimal(500)})
    unlinked = sf.create_deal({**fields, "account": "Nobody Inc"})
    assert fake.opportunities[linked]["AccountId"] == acme
    assert fake.opportunities[unlinked]["AccountId"] is None
    assert fake.opportunities[linked]["Amount"] == Decimal(500)


def test_tasks_are_created_on_the_deal_and_completed(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    deal_id = fake.add_opportunity(Name="Acme")
    task_id = sf.create_task(
        deal_id, NewTask(subject="Send pricing", due=dt.date(2031, 3, 8), owner=None)
    )
    task = fake.tasks[task_id]
    assert (task["WhatId"], task["Subject"], task["ActivityDate"], task["IsClosed"]) == (
        deal_id,
        "Send pricing",
        dt.date(2031, 3, 8),
        False,
    )
    sf.complete_task(task_id)
    assert fake.tasks[task_id]["Status"] == "Completed" and fake.tasks[task_id]["IsClosed"]


def test_a_multi_currency_org_reads_and_writes_currency(
    clock: MovableClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeSalesforce(clock=clock, multi_currency=True).start(tmp_path) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_bundle_path))
        deal_id = fake.add_opportunity(Name="Acme", CurrencyIsoCode="EUR", Amount=10)
        sf = connect(fake, clock)
        (deal,) = [d for b in sf.pull(None) for d in b.deals]
        assert deal.currency == "EUR"
        sf.update_deal(deal_id, {"currency": "GBP"})
        assert fake.opportunities[deal_id]["CurrencyIsoCode"] == "GBP"


def test_the_fake_refuses_unknown_fields_and_objects_like_salesforce(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    assert sf._sf is not None
    with pytest.raises(SalesforceMalformedRequest) as field:
        sf._sf.query("SELECT Id, CurrencyIsoCode FROM Opportunity")
    assert field.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as kind:
        sf._sf.query("SELECT Id FROM Deal")
    assert kind.value.content[0]["errorCode"] == "INVALID_TYPE"


def test_no_error_message_carries_the_session_token(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    deal_id = fake.add_opportunity(Name="Acme")
    errors: list[CrmError] = []
    for status in (400, 403, 404, 500, 503):
        fake.fail_next(status)
        try:
            sf.update_deal(deal_id, {"next_step": "x"})
        except CrmError as error:
            errors.append(error)
    assert len(errors) == 5
    for error in errors:
        for token in fake._sessions:
            assert token not in str(error) and token not in repr(error.__cause__)


def test_tls_is_verified_so_a_server_outside_the_ca_bundle_is_unavailable(
    fake: FakeSalesforce, clock: MovableClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger))
    with pytest.raises(CrmUnavailable, match="SSLError"):
        connect(fake, clock)


def test_a_long_child_list_is_read_through_its_own_next_records_url(
    fake: FakeSalesforce, sf: SalesforceConnector
) -> None:
    fake.child_page_size = 2
    deal_id = fake.add_opportunity(Name="Acme")
    for n in range(5):
        fake.add_task(deal_id, Subject=f"Call {n}")
    (deal,) = [d for b in sf.pull(None) for d in b.deals]
    assert sorted(t.subject for t in deal.tasks) == [f"Call {n}" for n in range(5)]
    assert len(fake.calls_to("GET", "/query/01g")) == 2  # two more pages of tasks


def test_a_failed_bulk_job_is_unavailable(fake: FakeSalesforce, clock: MovableClock) -> None:
    seed_deals(fake, clock, 3)
    fake.fail_bulk_jobs = True
    sf = connect(fake, clock, bulk_threshold=2, bulk_poll_seconds=0)
    with pytest.raises(CrmUnavailable, match="bulk query failed"):
        list(sf.pull(None))


def test_reads_are_paced_past_80_percent_of_the_daily_allowance(
    fake: FakeSalesforce, clock: MovableClock
) -> None:
    slept: list[float] = []
    sf = connect(fake, clock, sleep=slept.append)
    sf.owners()
    assert slept == []
    fake.api_usage = 80_000
    sf.owners()  # this answer reports 80,001 of 100,000
    sf.owners()
    assert slept == [1.0]


def test_an_api_version_the_org_does_not_serve_is_refused_by_name(
    fake: FakeSalesforce, clock: MovableClock
) -> None:
    sf = SalesforceConnector.login(
        login_url=fake.login_url,
        client_id=fake.CLIENT_ID,
        username=fake.USERNAME,
        private_key=fake.private_key_pem,
        api_version="v99.0",
        clock=clock,
    )
    with pytest.raises(CrmRefused, match="does not exist") as refused:
        sf.stages()
    assert refused.value.code == "NOT_FOUND"
    assert fake.calls[-1].path.startswith("/services/data/v99.0/")


def test_the_private_key_never_shows_in_the_connectors_grant(sf: SalesforceConnector) -> None:
    shown = repr(sf._grant)
    assert "PRIVATE KEY" not in shown and "integration@example.com" in shown
