"""A deal in its team's own stage is weighed by that stage's probability (the weighted
pipeline), and the weekly scores hold it to that stage's exit criteria, on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

from domain.changes import DealChanges
from domain.deals import Actor, DealService
from domain.money import Money
from domain.stages import load_stage_book
from tests.reminders.test_jobs import MONDAY, text_of
from tests.reminders.world import ANA, World

EAST_STAGES = """\
stages:
  - key: evaluate
    label: Evaluate
    probability: 0.25
    exit_criteria: [amount, close_date, economic_buyer]
    maps_to: demo
  - key: close
    label: Close
    probability: 1
    maps_to: closed_won
"""


def test_the_weighted_pipeline_weighs_a_team_stage_by_its_own_probability(
    any_world: World, tmp_path: Path
) -> None:
    world = any_world
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "east.yml").write_text(EAST_STAGES, encoding="utf-8")
    world.settings = world.settings.model_copy(update={"dealbot_stages_dir": stages})
    deals = DealService(
        database=world.database,
        clock=world.clock,
        default_timezone=world.settings.timezone,
        stage_book=load_stage_book(stages),
    )
    world.clock.at = MONDAY - dt.timedelta(days=3)
    close = dt.date(2026, 12, 10)
    for account, team_stage in (("Initech", "east:evaluate"), ("Globex", None)):
        changes = DealChanges(
            stage="demo",
            team_stage=team_stage,
            close_date=close,
            amount=Money(Decimal(100_000), "USD"),
        )
        deals.create_deal(Actor(user_id=ANA), account, changes)

    view = deals.pipeline(Actor(user_id=ANA), scope="me", today=close)
    # Evaluate's 25% of $100,000 and demo's 40% of $100,000, not 40% of both.
    assert view.weighted_totals == {"USD": Decimal("65000.00")}


def test_the_weekly_scores_hold_a_team_stage_to_its_exit_criteria(
    any_world: World, tmp_path: Path
) -> None:
    world = any_world
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "east.yml").write_text(EAST_STAGES, encoding="utf-8")
    world.settings = world.settings.model_copy(update={"dealbot_stages_dir": stages})
    world.clock.at = MONDAY - dt.timedelta(days=3)
    changes = DealChanges(
        stage="demo",
        team_stage="east:evaluate",
        close_date=dt.date(2026, 12, 10),
        amount=Money(Decimal(100_000), "USD"),
        buying_criteria="SSO and audit logs",
    )
    DealService(
        database=world.database,
        clock=world.clock,
        default_timezone=world.settings.timezone,
        stage_book=load_stage_book(stages),
    ).create_deal(Actor(user_id=ANA), "Initech", changes)

    world.run("pipeline-accuracy", MONDAY)
    posts = [c.args for c in world.slack.calls_to("chat.postMessage")]
    east = "\n".join(text_of(p) for p in posts if p.get("channel") == "C0EAST")
    # Demo's own criteria are all there; the team's Evaluate also asks for an economic buyer.
    assert "<@U0ANA> *77%* over 1 open deal(s)" in east
    assert "stage exit criteria unmet ×1" in east
