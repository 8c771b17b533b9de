"""The HubSpot connector, driving the real hubspot-api-client against the local fake."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import hubspot
import hubspot.crm.deals as hs_deals
import pytest

from crm.hubspot import HubSpotConnector
from crm.records import (
    ApiUsage,
    CrmAuthFailed,
    CrmDeal,
    CrmRateLimited,
    CrmRefused,
    CrmUnavailable,
    NewTask,
)
from domain.clock import FixedClock
from tests.fakes.hubspot_api import Call, FakeHubSpot, iso_ms, to_ms

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


class SteppingClock:
    """The fake portal's clock: each reading is `step` later than the one before."""

    def __init__(self, *, at: dt.datetime, step: dt.timedelta) -> None:
        self.at = at
        self.step = step

    def now(self) -> dt.datetime:
        self.at += self.step
        return self.at


class FakeTime:
    """The connector's monotonic clock and sleep: sleeping moves time, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(clock=SteppingClock(at=START, step=dt.timedelta(milliseconds=1))) as server:
        yield server


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def connect(fake: FakeHubSpot, fake_time: FakeTime, **kwargs: object) -> HubSpotConnector:
    options: dict[str, object] = {
        "access_token": fake.token,
        "api_url": fake.url,
        "clock": FixedClock(at=START + dt.timedelta(days=30)),
        "sleep": fake_time.sleep,
        "monotonic": fake_time.monotonic,
        "backoff_factor": 0.0,
    }
    options.update(kwargs)
    return HubSpotConnector(**options)  # type: ignore[arg-type]


@pytest.fixture
def hs(fake: FakeHubSpot, fake_time: FakeTime) -> HubSpotConnector:
    return connect(fake, fake_time)


def pulled(batches: Iterator[object]) -> list[CrmDeal]:
    return [deal for batch in batches for deal in batch.deals]  # type: ignore[attr-defined]


# -- reads -------------------------------------------------------------------------------------


def test_stages_come_from_the_pipeline_with_string_metadata(hs: HubSpotConnector) -> None:
    stages = {s.id: s for s in hs.stages()}

    assert [s.id for s in hs.stages()][:2] == ["appointmentscheduled", "qualifiedtobuy"]
    assert stages["appointmentscheduled"].probability == Decimal("0.2")
    assert stages["appointmentscheduled"].label == "Appointment Scheduled"
    assert not stages["appointmentscheduled"].is_closed
    assert stages["closedwon"].is_closed and stages["closedwon"].is_won
    assert stages["closedlost"].is_closed and not stages["closedlost"].is_won
    assert stages["contractsent"].order == 4
    assert {s.pipeline for s in stages.values()} == {"default"}


def test_owners_are_read_page_by_page_with_their_emails(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    for n in range(501):
        fake.add_owner(email=f"rep{n}@acme.example", first_name="Rep", last_name=str(n))

    owners = hs.owners()

    assert len(owners) == 501
    assert owners[0].email == "rep0@acme.example" and owners[0].name == "Rep 0"
    assert len(fake.calls_to("GET", "/crm/v3/owners")) == 2


def test_a_first_sync_lists_every_deal_with_the_properties_it_asks_for(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    owner = fake.add_owner(email="ana@acme.example")
    first = fake.add_deal(
        dealname="Acme renewal",
        amount="1234.50",
        closedate="2026-04-30T00:00:00Z",
        dealstage="contractsent",
        hubspot_owner_id=owner,
        hs_next_step="Send the order form",
        deal_currency_code="EUR",
        hs_manual_forecast_category="COMMIT",
    )
    for n in range(1049):
        fake.add_deal(dealname=f"Deal {n}")

    batches = list(hs.pull(None))
    deals = pulled(iter(batches))

    assert len(deals) == 1050 and len({d.id for d in deals}) == 1050
    assert [len(b.deals) for b in batches] == [1000, 50]
    acme = next(d for d in deals if d.id == first)
    assert acme.title == "Acme renewal"
    assert acme.amount == Decimal("1234.50")
    assert acme.close_date == dt.date(2026, 4, 30)
    assert acme.stage == "contractsent"
    assert acme.owner == owner
    assert acme.next_step == "Send the order form"
    assert acme.currency == "EUR"
    assert acme.forecast_category == "commit"
    assert acme.modified_at.tzinfo is not None
    # The cursor is only safe once the whole listing is read.
    assert [b.cursor for b in batches[:-1]] == [""]
    assert int(batches[-1].cursor) == max(to_ms(d.modified_at) for d in deals)
    listing = fake.calls_to("GET", "/crm/v3/objects/deals")
    assert len(listing) == 11  # 100 a page
    # Associations are read 1,000 deals at a time: one read per kind and batch.
    assert len(fake.calls_to("POST", "/crm/v4/associations/deals")) == 4
    assert "hubspot_owner_id" in listing[0].query["properties"]
    assert "hs_manual_forecast_category" in listing[0].query["properties"]
    assert fake.unknown_reads == []


def test_incremental_pull_reads_only_deals_changed_since_the_cursor(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    old = [fake.add_deal(dealname=f"Old {n}") for n in range(5)]
    cursor = list(hs.pull(None))[-1].cursor
    fake.set_deal(old[2], amount="900")
    new = fake.add_deal(dealname="New one")

    batches = list(hs.pull(cursor))

    # >= the cursor: the deal changed at the cursor's millisecond comes again (the contract
    # allows it), then the changes, oldest first.
    assert [d.id for d in pulled(iter(batches))] == [old[4], old[2], new]
    assert batches[-1].cursor == str(to_ms(pulled(iter(batches))[-1].modified_at))
    search = fake.calls_to("POST", "/crm/v3/objects/deals/search")[0].body
    assert search["filterGroups"][0]["filters"][0] == {
        "propertyName": "hs_lastmodifieddate",
        "operator": "GTE",
        "value": cursor,
    }
    assert search["limit"] == 200
    assert search["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]


def test_more_than_10000_changes_in_one_window_are_all_pulled_once(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    before = to_ms(START)
    ids = [fake.add_deal(dealname=f"Deal {n}") for n in range(10_050)]

    deals = pulled(hs.pull(str(before)))

    assert sorted(d.id for d in deals) == sorted(ids)
    assert all(c.status == 200 for c in fake.calls)
    searches = fake.calls_to("POST", "/crm/v3/objects/deals/search")
    assert len(searches) == 51  # 10,050 / 200, never a page past the cap


def test_a_deal_changed_between_two_pages_does_not_hide_another(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    ids = [fake.add_deal(dealname=f"Deal {n}") for n in range(450)]

    def change_a_read_deal(call: Call) -> None:
        if call.path.endswith("/search") and len(fake.calls_to("POST", call.path)) == 1:
            fake.set_deal(ids[10], amount="5")  # moves to the end of the order

    fake.after_request = change_a_read_deal
    deals = pulled(hs.pull(str(to_ms(START))))

    # Paging by offset would skip the deal that slid into the changed one's place.
    assert set(ids) == {d.id for d in deals}
    assert [d.id for d in deals].count(ids[10]) == 2


def test_a_search_page_past_the_cap_is_refused_as_hubspot_does(fake: FakeHubSpot) -> None:
    fake.search_cap = 400
    for n in range(450):
        fake.add_deal(dealname=f"Deal {n}")
    client = hubspot.Client.create(access_token=fake.token, host=fake.url)
    request = hs_deals.PublicObjectSearchRequest(limit=200, after="400", properties=["dealname"])

    with pytest.raises(hs_deals.ApiException) as refused:
        client.crm.deals.search_api.do_search(request)

    assert refused.value.status == 400


def test_a_millisecond_holding_more_than_a_page_is_walked_by_id(fake_time: FakeTime) -> None:
    with FakeHubSpot(clock=FixedClock(at=START), search_cap=300) as fake:
        ids = [fake.add_deal(dealname=f"Same ms {n}") for n in range(700)]
        fake.clock = SteppingClock(at=START, step=dt.timedelta(milliseconds=1))
        later = [fake.add_deal(dealname=f"Later {n}") for n in range(3)]
        hs = connect(fake, fake_time)

        deals = pulled(hs.pull(str(to_ms(START))))

        assert sorted(d.id for d in deals) == sorted(ids + later)
        assert len(deals) == len(ids) + len(later)
        assert all(c.status == 200 for c in fake.calls)


def test_deals_reads_a_batch_and_skips_ids_hubspot_no_longer_has(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    ids = [fake.add_deal(dealname=f"Deal {n}") for n in range(3)]

    deals = hs.deals([*ids, "999999"])

    assert sorted(d.id for d in deals) == sorted(ids)
    assert len(fake.calls_to("POST", "/crm/v3/objects/deals/batch/read")) == 1


def test_contacts_and_tasks_come_through_associations_in_batches(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    owner = fake.add_owner(email="ana@acme.example")
    deal = fake.add_deal(dealname="Acme")
    buyer = fake.add_contact(firstname="Bea", lastname="Buyer", email="bea@acme.example")
    champion = fake.add_contact(firstname="Cy", lastname="Champ", email="cy@acme.example")
    other = fake.add_contact(firstname="Otto", email="otto@acme.example")
    fake.associate("deals", deal, "contacts", buyer, label="Decision maker")
    fake.associate("deals", deal, "contacts", champion, label="Champion")
    fake.associate("deals", deal, "contacts", other)
    open_task = fake.add_task(
        deal_id=deal,
        hs_task_subject="Call Bea",
        hs_timestamp="2026-03-10T00:00:00Z",
        hubspot_owner_id=owner,
    )
    fake.add_task(deal_id=deal, hs_task_subject="Intro", hs_task_status="COMPLETED")
    for n in range(150):
        extra = fake.add_deal(dealname=f"Deal {n}")
        fake.associate("deals", extra, "contacts", other)

    acme = next(d for d in pulled(hs.pull(None)) if d.id == deal)

    roles = {c.name: (c.role, c.email) for c in acme.contacts}
    assert roles == {
        "Bea Buyer": ("economic_buyer", "bea@acme.example"),
        "Cy Champ": ("champion", "cy@acme.example"),
        "Otto": (None, "otto@acme.example"),
    }
    tasks = {t.subject: t for t in acme.tasks}
    assert tasks["Call Bea"].id == open_task
    assert tasks["Call Bea"].due == dt.date(2026, 3, 10)
    assert tasks["Call Bea"].owner == owner and not tasks["Call Bea"].done
    assert tasks["Intro"].done
    # 151 deals in two pages: per page one association read per kind and one batch read per
    # kind with anything to read, never a request per deal.
    assert len(fake.calls) <= 2 + 2 * 4


def test_field_history_maps_properties_and_runs_oldest_first(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    deal = fake.add_deal(dealname="Acme", amount="100", closedate="2026-04-01T00:00:00Z")
    fake.set_deal(deal, closedate="2026-05-01T00:00:00Z")
    fake.set_deal(deal, closedate="2026-06-01T00:00:00Z", amount="150")

    changes = list(hs.field_history([deal]))

    close = [(c.old, c.new) for c in changes if c.field == "close_date"]
    assert close == [
        (None, "2026-04-01"),
        ("2026-04-01", "2026-05-01"),
        ("2026-05-01", "2026-06-01"),
    ]
    assert [(c.old, c.new) for c in changes if c.field == "amount"] == [
        (None, "100"),
        ("100", "150"),
    ]
    assert [c.at for c in changes] == sorted(c.at for c in changes)
    body = fake.calls_to("POST", "/crm/v3/objects/deals/batch/read")[0].body
    assert set(body["propertiesWithHistory"]) == {
        "dealname",
        "amount",
        "closedate",
        "dealstage",
        "hs_next_step",
    }


def test_field_history_of_many_deals_reads_50_a_batch_and_stays_in_order(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    ids = [fake.add_deal(dealname=f"Deal {n}") for n in range(60)]
    for deal_id in reversed(ids):
        fake.set_deal(deal_id, hs_next_step="Call back")

    changes = list(hs.field_history(ids))

    assert len(fake.calls_to("POST", "/crm/v3/objects/deals/batch/read")) == 2
    steps = [c for c in changes if c.field == "next_step"]
    assert [c.deal_id for c in steps] == list(reversed(ids))
    assert [c.at for c in changes] == sorted(c.at for c in changes)


# -- writes ------------------------------------------------------------------------------------


def test_an_update_writes_only_the_given_properties(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    owner = fake.add_owner(email="ana@acme.example")
    deal = fake.add_deal(dealname="Acme", amount="100")

    hs.update_deal(
        deal,
        {
            "stage": "contractsent",
            "close_date": dt.date(2026, 5, 31),
            "amount": Decimal("2500.00"),
            "forecast_category": "best_case",
            "owner": owner,
            "next_step": None,
        },
    )

    patch = fake.calls_to("PATCH", f"/crm/v3/objects/deals/{deal}")
    assert len(patch) == 1
    assert patch[0].body == {
        "properties": {
            "dealstage": "contractsent",
            "closedate": "2026-05-31T00:00:00Z",
            "amount": "2500.00",
            "hs_manual_forecast_category": "BEST_CASE",
            "hubspot_owner_id": owner,
            "hs_next_step": "",
        }
    }
    assert fake.deal(deal)["dealname"] == "Acme"
    assert fake.deal(deal)["closedate"] == "2026-05-31T00:00:00.000Z"


def test_the_fake_refuses_unknown_and_read_only_properties(fake: FakeHubSpot) -> None:
    deal = fake.add_deal(dealname="Acme")
    client = hubspot.Client.create(access_token=fake.token, host=fake.url)

    for properties, code in (
        ({"stage": "x"}, "PROPERTY_DOESNT_EXIST"),
        ({"hs_lastmodifieddate": "1"}, "READ_ONLY_VALUE"),
        ({"createdate": "1"}, "READ_ONLY_VALUE"),
    ):
        with pytest.raises(hs_deals.ApiException) as refused:
            client.crm.deals.basic_api.update(
                deal, hs_deals.SimplePublicObjectInput(properties=properties)
            )
        assert refused.value.status == 400
        assert code in refused.value.body


def test_a_validation_rule_refuses_with_hubspots_message(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    deal = fake.add_deal(dealname="Acme")
    fake.add_validation_rule(
        lambda p: p.get("dealstage") == "closedwon" and not p.get("amount"),
        "Amount is required to close a deal as won.",
        property_name="amount",
    )

    with pytest.raises(CrmRefused) as refused:
        hs.update_deal(deal, {"stage": "closedwon"})

    assert str(refused.value) == "Amount is required to close a deal as won."
    assert refused.value.fields == ("amount",)
    assert fake.deal(deal)["dealstage"] == "appointmentscheduled"


def test_an_invalid_value_is_refused_and_names_dealbots_field(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    deal = fake.add_deal(dealname="Acme")

    with pytest.raises(CrmRefused) as refused:
        hs.update_deal(deal, {"stage": "negotiation"})

    assert refused.value.fields == ("stage",)
    assert refused.value.code == "INVALID_OPTION"
    assert "negotiation" in str(refused.value)


def test_create_deal_puts_it_in_the_stages_pipeline(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    deal = hs.create_deal({"title": "Globex", "stage": "qualifiedtobuy", "amount": Decimal(50)})

    assert fake.deal(deal)["dealname"] == "Globex"
    assert fake.deal(deal)["pipeline"] == "default"
    assert fake.deal(deal)["dealstage"] == "qualifiedtobuy"


def test_create_task_is_associated_to_the_deal(fake: FakeHubSpot, hs: HubSpotConnector) -> None:
    owner = fake.add_owner(email="ana@acme.example")
    deal = fake.add_deal(dealname="Acme")

    task = hs.create_task(
        deal, NewTask(subject="Send pricing", due=dt.date(2026, 3, 9), owner=owner)
    )

    stored = fake.task(task)
    assert stored["hs_task_subject"] == "Send pricing"
    assert stored["hs_timestamp"] == "2026-03-09T00:00:00Z"
    assert stored["hubspot_owner_id"] == owner
    assert stored["hs_task_status"] == "NOT_STARTED"
    assert fake.associated("tasks", task, "deals") == {deal: [216]}
    assert fake.associated("deals", deal, "tasks") == {task: [215]}
    assert [t.subject for t in hs.deals([deal])[0].tasks] == ["Send pricing"]


def test_complete_task_marks_it_completed(fake: FakeHubSpot, hs: HubSpotConnector) -> None:
    task = fake.add_task(hs_task_subject="Call")

    hs.complete_task(task)

    assert fake.task(task)["hs_task_status"] == "COMPLETED"


def test_record_url_uses_the_portal_from_account_info(
    fake: FakeHubSpot, fake_time: FakeTime
) -> None:
    fake.ui_domain = "app-eu1.hubspot.com"
    hs = connect(fake, fake_time)

    assert hs.record_url("123") == f"https://app-eu1.hubspot.com/contacts/{fake.portal_id}/deal/123"
    assert hs.record_url("124").endswith("/deal/124")
    assert len(fake.calls_to("GET", "/account-info/v3/details")) == 1
    assert connect(fake, fake_time, portal_id="77").record_url("1") == (
        "https://app.hubspot.com/contacts/77/deal/1"
    )


# -- the transport -----------------------------------------------------------------------------


def test_requests_are_spaced_to_the_rate(hs: HubSpotConnector, fake_time: FakeTime) -> None:
    for _ in range(5):
        hs.stages()

    assert fake_time.sleeps == pytest.approx([0.25] * 4)


def test_a_nearly_spent_window_slows_the_pace(fake_time: FakeTime) -> None:
    with FakeHubSpot(requests_per_ten_seconds=20) as fake:
        hs = connect(fake, fake_time, requests_per_second=100.0)
        for _ in range(19):
            hs.stages()
        hs.stages()

    assert fake_time.sleeps[:10] == pytest.approx([0.01] * 10)
    assert max(fake_time.sleeps) >= 10_000 / 1000 / 3  # 2 left of 20: spread over the window


def test_usage_follows_the_daily_headers(fake: FakeHubSpot, hs: HubSpotConnector) -> None:
    assert hs.usage() is None

    hs.stages()
    hs.owners()

    assert hs.usage() == ApiUsage(used=2, limit=500_000)


def test_a_429_is_retried_by_the_transport_and_then_reported(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    fake.fail_next(429, times=2)
    assert len(hs.stages()) == 7
    assert [c.status for c in fake.calls] == [429, 429, 200]

    fake.fail_next(429, times=4)
    with pytest.raises(CrmRateLimited):
        hs.stages()


def test_the_fakes_rate_limit_answers_429_without_retry_after(fake_time: FakeTime) -> None:
    with FakeHubSpot(requests_per_second=4) as fake:
        hs = connect(fake, fake_time, requests_per_second=1000.0)
        with pytest.raises(CrmRateLimited) as limited:
            for _ in range(20):
                hs.stages()

    # No Retry-After header, as HubSpot answers; the policy it names says how long to wait.
    assert limited.value.retry_after == 1.0
    assert [c.status for c in fake.calls][:5] == [200, 200, 200, 200, 429]


def test_a_patch_after_a_500_is_retried_and_applied_once(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    deal = fake.add_deal(dealname="Acme")
    fake.fail_next(500, path=f"/crm/v3/objects/deals/{deal}")

    hs.update_deal(deal, {"stage": "contractsent"})

    assert [c.status for c in fake.calls_to("PATCH", "/crm/v3/objects/deals")] == [500, 200]
    assert fake.property_history("deals", deal, "dealstage") == [
        "appointmentscheduled",
        "contractsent",
    ]


def test_a_create_after_a_500_is_not_retried_by_the_transport(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    deal = fake.add_deal(dealname="Acme")
    fake.fail_next(500, path="/crm/v3/objects/tasks")

    with pytest.raises(CrmUnavailable):
        hs.create_task(deal, NewTask(subject="Call", due=None, owner=None))

    assert len(fake.calls_to("POST", "/crm/v3/objects/tasks")) == 1


def test_a_create_after_a_429_is_retried(fake: FakeHubSpot, hs: HubSpotConnector) -> None:
    deal = fake.add_deal(dealname="Acme")
    fake.fail_next(429, path="/crm/v3/objects/tasks")

    task = hs.create_task(deal, NewTask(subject="Call", due=None, owner=None))

    assert [c.status for c in fake.calls_to("POST", "/crm/v3/objects/tasks")] == [429, 201]
    assert fake.associated("deals", deal, "tasks") == {task: [215]}


def test_a_revoked_token_is_an_auth_failure_that_does_not_show_the_token(
    fake: FakeHubSpot, hs: HubSpotConnector
) -> None:
    fake.revoke()

    with pytest.raises(CrmAuthFailed) as refused:
        hs.stages()

    assert "Authentication credentials not found" in str(refused.value)
    assert fake.token not in str(refused.value) and fake.token not in repr(hs)


def test_a_wrong_token_is_refused(fake: FakeHubSpot, fake_time: FakeTime) -> None:
    hs = connect(fake, fake_time, access_token="pat-na1-wrong")

    with pytest.raises(CrmAuthFailed):
        list(hs.pull(None))


def test_a_server_that_stays_down_is_unavailable(fake: FakeHubSpot, hs: HubSpotConnector) -> None:
    fake.fail_next(503, times=4)
    with pytest.raises(CrmUnavailable):
        hs.owners()

    fake.stop()
    with pytest.raises(CrmUnavailable):
        hs.stages()


def test_dates_stay_at_midnight_utc_whatever_the_fake_clock(fake: FakeHubSpot) -> None:
    assert iso_ms(to_ms(START)) == "2026-03-02T09:00:00.000Z"
