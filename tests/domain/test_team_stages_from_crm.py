"""A team's stages made from a CRM pipeline, written to its file at once and read back."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from domain.stages import (
    PipelineStage,
    StagesFileError,
    load_stage_book,
    read_team_stages,
    team_stages_from_pipeline,
    write_team_stages,
)


def crm(
    id: str, probability: str, maps_to: str, *, order: int, forecast: str | None = "pipeline"
) -> PipelineStage:
    return PipelineStage(
        id=id,
        label=id,
        probability=Decimal(probability),
        order=order,
        forecast_category=forecast,
        maps_to=maps_to,
        pipeline=None,
    )


# Salesforce's standard process as the pull maps it (crm.mapping.dealbot_stage_for).
SALESFORCE = (
    crm("Prospecting", "0.1", "prospecting", order=1),
    crm("Qualification", "0.1", "prospecting", order=2),
    crm("Needs Analysis", "0.2", "discovery", order=3),
    crm("Value Proposition", "0.5", "demo", order=4),
    crm("Id. Decision Makers", "0.6", "proposal", order=5),
    crm("Proposal/Price Quote", "0.75", "proposal", order=6, forecast="best_case"),
    crm("Negotiation/Review", "0.9", "negotiation", order=7, forecast="commit"),
    crm("Closed Won", "1", "closed_won", order=8, forecast="commit"),
    crm("Closed Lost", "0", "closed_lost", order=9, forecast=None),
)


def test_each_crm_stage_becomes_a_team_stage_with_the_crms_words_and_numbers() -> None:
    stages = team_stages_from_pipeline(SALESFORCE)
    assert [s.key for s in stages] == [
        "prospecting",
        "qualification",
        "needs_analysis",
        "value_proposition",
        "id_decision_makers",
        "proposal_price_quote",
        "negotiation_review",
        "closed_won",
        "closed_lost",
    ]
    quote = stages[5]
    assert (quote.label, quote.probability, quote.forecast_default, quote.maps_to) == (
        "Proposal/Price Quote",
        Decimal("0.75"),
        "best_case",
        "proposal",
    )
    assert quote.crm_stage == "Proposal/Price Quote" and not quote.is_closed
    # No forecast category in the CRM: pipeline. Exit criteria: the dealbot stage's.
    assert stages[-1].forecast_default == "pipeline" and stages[-1].is_closed
    assert stages[4].exit_criteria == (
        "amount",
        "close_date",
        "buying_criteria",
        "buying_process",
        "economic_buyer",
    )


def test_stages_come_in_dealbots_order_of_what_they_map_to_and_the_first_pipeline_only() -> None:
    stages = team_stages_from_pipeline(
        (
            crm("Won", "1", "closed_won", order=1),
            PipelineStage(
                id="other",
                label="Elsewhere",
                probability=Decimal("0.5"),
                order=9,
                forecast_category=None,
                maps_to="demo",
                pipeline="renewals",
            ),
            crm("Talk", "0.3", "discovery", order=2),
        )
    )
    assert [s.label for s in stages] == ["Talk", "Won"]


def test_labels_that_read_alike_and_keys_that_collide_are_told_apart() -> None:
    stages = team_stages_from_pipeline(
        (
            crm("Demo!", "0.3", "demo", order=1),
            crm("demo", "0.4", "demo", order=2),
            crm("1st call", "0.1", "prospecting", order=0),
        )
    )
    assert [s.key for s in stages] == ["stage_1st_call", "demo", "demo_2"]
    assert len({s.label.casefold() for s in stages}) == 3


def test_a_pipeline_without_an_open_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="no open stage"):
        team_stages_from_pipeline((crm("Won", "1", "closed_won", order=1),))
    with pytest.raises(ValueError, match="no stage"):
        team_stages_from_pipeline(())


def test_the_file_is_written_whole_and_loads_as_the_teams_stages(tmp_path: Path) -> None:
    stages = team_stages_from_pipeline(SALESFORCE)
    written = write_team_stages(tmp_path, "east coast", stages, taken_from="Salesforce")
    assert written == stages
    assert sorted(p.name for p in tmp_path.iterdir()) == ["east coast.yml"]  # no temp left
    text = (tmp_path / "east coast.yml").read_text(encoding="utf-8")
    assert text.startswith("# Taken from Salesforce's pipeline")
    assert load_stage_book(tmp_path).for_team("east coast") == stages


def test_several_stages_on_one_default_are_a_crm_pipelines_only(tmp_path: Path) -> None:
    two_on_demo = (
        "stages:\n"
        "  - {key: a, label: A, probability: 0.3, maps_to: demo, crm_stage: s1}\n"
        "  - {key: b, label: B, probability: 0.4, maps_to: demo, crm_stage: s2}\n"
    )
    assert [s.crm_stage for s in read_team_stages(two_on_demo, source="t.yml")] == ["s1", "s2"]
    by_hand = two_on_demo.replace(", crm_stage: s2", "")
    with pytest.raises(StagesFileError, match="must each map to a different one"):
        read_team_stages(by_hand, source="t.yml")
    backwards = two_on_demo.replace(
        "maps_to: demo, crm_stage: s2", "maps_to: discovery, crm_stage: s2"
    )
    with pytest.raises(StagesFileError, match="in dealbot's order"):
        read_team_stages(backwards, source="t.yml")
