"""The pure mapping rules: stages both ways, next steps, values as text, push fields, backoff."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm.mapping import (
    crm_stage_for,
    dealbot_stage_for,
    map_stages,
    next_step_of,
    push_fields,
    remote_values,
    retry_delay,
    status_of,
)
from crm.records import CrmStage, CrmTask
from domain.stages import DEFAULT_STAGES
from tests.crm.connector_double import SALESFORCE_STAGES, opportunity

T = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


def stage(label: str, probability: str, *, closed: bool = False, won: bool = False) -> CrmStage:
    return CrmStage(label.lower(), label, Decimal(probability), 1, closed, won, None)


def test_salesforce_default_stages_map_by_meaning_label_and_probability() -> None:
    assert map_stages(SALESFORCE_STAGES, DEFAULT_STAGES) == {
        "Prospecting": "prospecting",  # same label
        "Qualification": "discovery",  # nearest probability (0.20)
        "Needs Analysis": "discovery",
        "Proposal/Price Quote": "proposal",  # label starts with "Proposal"
        "Negotiation/Review": "negotiation",
        "Closed Won": "closed_won",  # closed and won, whatever the label
        "Closed Lost": "closed_lost",
    }


@pytest.mark.parametrize(
    ("crm_stage", "expected"),
    [
        (stage("Signed", "1", closed=True, won=True), "closed_won"),
        (stage("Disqualified", "0", closed=True), "closed_lost"),
        (stage("Lost to no decision", "0.5", closed=True), "closed_lost"),
        (stage("DEMO", "0.9"), "demo"),  # a label match wins over probability
        (stage("closed_won", "0.55"), "proposal"),  # open: never a closed dealbot stage
        (stage("Contract sent", "0.85"), "negotiation"),
        (stage("Appointment scheduled", "0.3"), "discovery"),  # tie .2/.4: the earlier
    ],
)
def test_one_crm_stage_maps_to_one_dealbot_stage(crm_stage: CrmStage, expected: str) -> None:
    assert dealbot_stage_for(crm_stage, DEFAULT_STAGES) == expected


def test_the_crm_stage_written_for_a_dealbot_stage_keeps_the_current_one_when_it_maps() -> None:
    mapping = map_stages(SALESFORCE_STAGES, DEFAULT_STAGES)
    order = [s.id for s in SALESFORCE_STAGES]
    rank = {s.key: s.order for s in DEFAULT_STAGES}

    kept = crm_stage_for("discovery", current="Needs Analysis", mapping=mapping, order=order)
    first = crm_stage_for("discovery", current="Prospecting", mapping=mapping, order=order)
    none = crm_stage_for("demo", current=None, mapping=mapping, order=order)
    nearest = crm_stage_for("demo", current=None, mapping=mapping, order=order, rank=rank)

    assert (kept, first, none, nearest) == (
        "Needs Analysis",
        "Qualification",
        None,
        "Qualification",
    )
    assert crm_stage_for("closed_lost", current=None, mapping=mapping, order=order) == "Closed Lost"


def test_a_stage_written_as_proposal_is_the_one_named_so_not_the_first_mapped_there() -> None:
    # Salesforce's standard pipeline puts "Id. Decision Makers" (60%) before "Proposal/Price
    # Quote" (75%); both map to proposal, and a rep who typed stage:proposal meant the latter.
    crm_stages = [
        CrmStage(
            "Id. Decision Makers", "Id. Decision Makers", Decimal("0.6"), 6, False, False, None
        ),
        CrmStage(
            "Proposal/Price Quote", "Proposal/Price Quote", Decimal("0.75"), 8, False, False, None
        ),
    ]
    mapping = map_stages(crm_stages, DEFAULT_STAGES)
    order = [s.id for s in crm_stages]

    assert set(mapping.values()) == {"proposal"}
    assert crm_stage_for("proposal", current=None, mapping=mapping, order=order) == (
        "Proposal/Price Quote"
    )
    kept = crm_stage_for("proposal", current="Id. Decision Makers", mapping=mapping, order=order)
    assert kept == "Id. Decision Makers"


def test_status_follows_the_crm_stage_closed_and_won_flags() -> None:
    won, lost, open_ = SALESFORCE_STAGES[5], SALESFORCE_STAGES[6], SALESFORCE_STAGES[1]
    assert [status_of("closed_won", won), status_of("closed_lost", lost)] == ["won", "lost"]
    assert status_of("discovery", open_) == "open"


def test_the_next_step_is_the_open_task_due_first_else_the_text_field() -> None:
    tasks = (
        CrmTask("T1", "Undated", None, "005A", False),
        CrmTask("T2", "Later", dt.date(2026, 12, 9), "005A", False),
        CrmTask("T3", "Sooner", dt.date(2026, 12, 3), "005B", False),
        CrmTask("T4", "Done", dt.date(2026, 12, 1), "005A", True),
    )
    with_tasks = opportunity("1", title="A", account="A", owner="005A", modified_at=T, tasks=tasks)
    text_only = opportunity(
        "2", title="B", account="B", owner="005A", modified_at=T, next_step=" Call "
    )
    nothing = opportunity("3", title="C", account="C", owner="005A", modified_at=T, tasks=tasks[3:])

    step = next_step_of(with_tasks)
    assert step is not None and (step.what, step.due, step.owner, step.task_id) == (
        "Sooner",
        dt.date(2026, 12, 3),
        "005B",
        "T3",
    )
    text_step = next_step_of(text_only)
    assert text_step is not None and (text_step.what, text_step.due) == ("Call", None)
    assert next_step_of(nothing) is None


def test_remote_values_leave_out_what_the_crm_has_no_opinion_on() -> None:
    deal = opportunity(
        "1",
        title="Initech",
        account=None,
        owner="005A",
        modified_at=T,
        forecast_category=None,
        amount=Decimal("1200.5"),
    )
    values = remote_values(deal, stage_key=None, owner_slack_id=None, default_currency="EUR")
    assert values == {
        "title": "Initech",
        "amount": "1200.50",
        "currency": "EUR",
        "close_date": "2027-03-31",
        "next_step": None,
    }


def test_push_fields_translate_text_back_to_values_and_ids() -> None:
    fields = push_fields(
        {
            "amount": "15000.00",
            "close_date": "2027-01-15",
            "stage": "proposal",
            "owner": "U0ANA",
            "title": None,
            "forecast_category": "commit",
        },
        crm_stage="Proposal/Price Quote",
        crm_owner=None,
    )
    assert fields == {
        "amount": Decimal("15000.00"),
        "close_date": dt.date(2027, 1, 15),
        "stage": "Proposal/Price Quote",
        "forecast_category": "commit",
    }
    assert push_fields({"amount": None}, crm_stage=None, crm_owner=None) == {"amount": None}


def test_backoff_doubles_from_30_seconds_to_30_minutes_and_honours_retry_after() -> None:
    delays = [retry_delay(n).total_seconds() for n in (1, 2, 3, 6, 7, 40)]
    assert delays == [30, 60, 120, 960, 1800, 1800]
    assert retry_delay(1, retry_after=120).total_seconds() == 120
    assert retry_delay(3, retry_after=5).total_seconds() == 120
