"""A deal in its team's own stage is held to that stage's exit criteria, and weighed by its
probability; a team stage that no longer stands for the deal's stage is ignored."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from domain.checks import ChecksConfig, DealFacts, bundled_checks, fired_checks
from domain.stages import StageBook, read_team_stages

TODAY = dt.date(2026, 11, 23)
NOON = dt.datetime(2026, 11, 23, 17, tzinfo=dt.UTC)
BOOK = StageBook(
    teams={
        "enterprise": read_team_stages(
            """\
stages:
  - key: evaluate
    label: Evaluate
    probability: 0.35
    exit_criteria: [amount, close_date, economic_buyer]
    maps_to: demo
  - key: commit
    label: Commit
    probability: 0.9
    exit_criteria: [amount]
    maps_to: negotiation
""",
            source="enterprise.yml",
        )
    }
)
CONFIG = bundled_checks().with_stages(BOOK)

# Every check passes except what each test takes away.
DEAL = DealFacts(
    deal_id=1,
    owner_id="U0ANA",
    account="Initech",
    stage="negotiation",
    status="open",
    forecast_category="pipeline",
    has_amount=True,
    close_date=TODAY + dt.timedelta(days=20),
    open_steps=1,
    open_steps_dated=1,
    next_step_due=TODAY + dt.timedelta(days=3),
    last_activity_at=NOON - dt.timedelta(days=1),
    stage_entered_at=NOON - dt.timedelta(days=5),
    contacts=2,
    has_economic_buyer=True,
    has_buying_criteria=True,
    has_buying_process=True,
    has_paper_process=True,
)


def unmet(config: ChecksConfig = CONFIG, **facts: object) -> bool:
    return "STAGE_CRITERIA_UNMET" in fired_checks(DEAL._replace(**facts), TODAY, config)


def test_a_team_stage_asking_less_than_its_default_is_met_by_what_it_asks() -> None:
    # Negotiation asks for the paper process; the team's Commit asks for an amount only.
    assert unmet(bundled_checks(), has_paper_process=False, has_buying_process=False)
    assert not unmet(team_stage="enterprise:commit", has_paper_process=False)
    assert unmet(team_stage="enterprise:commit", has_amount=False)


def test_a_team_stage_asking_more_than_its_default_fires_on_what_it_adds() -> None:
    # Demo never asks for an economic buyer; the team's Evaluate does.
    demo = {"stage": "demo", "has_economic_buyer": False}
    assert not unmet(bundled_checks(), team_stage="enterprise:evaluate", **demo)
    assert unmet(team_stage="enterprise:evaluate", **demo)
    assert not unmet(team_stage="enterprise:evaluate", stage="demo")


def test_a_team_stage_that_no_longer_stands_for_the_deals_stage_is_ignored() -> None:
    # Moved to proposal in the CRM: the deal goes by proposal, which asks for an EB.
    assert unmet(stage="proposal", team_stage="enterprise:commit", has_economic_buyer=False)
    assert not unmet(stage="proposal", team_stage="enterprise:commit")
    # A stage the team's file no longer lists: the default stage's criteria.
    assert unmet(team_stage="enterprise:gone", has_paper_process=False)


def test_the_stage_a_deal_goes_by_weighs_it_with_the_team_stages_probability() -> None:
    def probability(stage: str, team_stage: str | None) -> Decimal | None:
        found = CONFIG.deal_stage(stage, team_stage)
        return found.probability if found is not None else None

    assert probability("negotiation", "enterprise:commit") == Decimal("0.9")
    assert probability("negotiation", None) == Decimal("0.80")
    assert probability("proposal", "enterprise:commit") == Decimal("0.60")
    assert CONFIG.deal_stage("nowhere", None) is None
    assert bundled_checks().with_stages(BOOK) is not bundled_checks()
