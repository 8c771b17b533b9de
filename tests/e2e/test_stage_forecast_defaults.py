"""A deal entering a stage takes the stage's forecast default unless the rep chose one: said
in the reply, kept in history, over signed requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.fake_slack import FakeSlackWebAPI
from storage.models import DealChange
from tests.databases import BACKENDS, postgres_database, sqlite_url
from tests.e2e.harness import NOW, RunningApp, running_app

ADMIN = "U0ADMIN"
STAGES = """\
stages:
  - key: qualify
    label: Qualify
    probability: 0.2
    maps_to: discovery
  - key: evaluate
    label: Evaluate
    probability: 0.5
    forecast_default: best_case
    maps_to: demo
  - key: decide
    label: Decide
    probability: 0.7
    forecast_default: omitted
    maps_to: proposal
  - key: close
    label: Close
    probability: 1
    maps_to: closed_won
"""


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def app(slack_api: FakeSlackWebAPI, database_url: str, tmp_path: Path) -> Iterator[RunningApp]:
    slack_api.set_user(ADMIN, name="alice", is_admin=True)
    slack_api.set_user("U0ANA", name="ana")
    slack_api.set_user("U0CARL", name="carl")
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "enterprise.yml").write_text(STAGES, encoding="utf-8")
    with running_app(slack_api, database_url, dealbot_stages_dir=stages) as running:
        running.command("/dealbot", "team create Enterprise <#C0SALES|sales>", user=ADMIN)
        running.command("/dealbot", "team add Enterprise rep <@U0ANA|ana>", user=ADMIN)
        yield running


def _later(app: RunningApp, minutes: int) -> None:
    """Move the app's clock on: "since the stage was entered" needs time to pass."""
    app.clock.at = NOW + dt.timedelta(minutes=minutes)


def _forecast_rows(app: RunningApp, account: str) -> list[tuple[str | None, str | None]]:
    return [
        (old, new)
        for field, old, new, _ in app.changes_of(app.deal_named(account).id)
        if field == "forecast_category"
    ]


def test_moving_into_negotiation_makes_the_forecast_best_case_said_and_kept(
    app: RunningApp,
) -> None:
    app.command("/deal", "new Hooli 80k stage:demo", user="U0CARL")
    assert app.deal_named("Hooli").forecast_category == "pipeline"
    _later(app, 5)
    moved = app.command("/deal", "hooli stage:negotiation", user="U0CARL").all_text
    assert "forecast pipeline → best case (the stage's default)" in moved
    deal = app.deal_named("Hooli")
    assert deal.forecast_category == "best_case"
    with app.database.session() as session:
        rows = {
            c.field: c.changed_at
            for c in session.scalars(select(DealChange).where(DealChange.deal_id == deal.id))
            if c.new_value in ("negotiation", "best_case")
        }
    # Written with the move, at its moment, by who moved it, like any forecast change.
    assert rows["forecast_category"] == rows["stage"] == NOW + dt.timedelta(minutes=5)
    assert ("forecast_category", "pipeline", "best_case", "U0CARL") in app.changes_of(deal.id)


def test_a_forecast_said_with_the_move_wins_over_the_stages_default(app: RunningApp) -> None:
    app.command("/deal", "new Hooli 80k stage:demo", user="U0CARL")
    _later(app, 5)
    moved = app.command("/deal", "hooli stage:negotiation forecast:omitted", user="U0CARL")
    assert "forecast pipeline → omitted" in moved.all_text
    assert "the stage's default" not in moved.all_text
    assert app.deal_named("Hooli").forecast_category == "omitted"


def test_a_forecast_chosen_since_the_last_move_is_kept_even_back_at_the_default(
    app: RunningApp,
) -> None:
    app.command("/deal", "new Hooli 80k stage:demo", user="U0CARL")
    _later(app, 5)
    app.command("/deal", "hooli forecast:best case", user="U0CARL")
    _later(app, 10)
    # The rep went back to pipeline by hand: their choice, not the demo stage's default.
    app.command("/deal", "hooli forecast:pipeline", user="U0CARL")
    _later(app, 15)
    moved = app.command("/deal", "hooli stage:negotiation", user="U0CARL").all_text
    assert "forecast" not in moved.lower()
    assert app.deal_named("Hooli").forecast_category == "pipeline"


def test_a_forecast_picked_when_the_deal_was_made_is_kept_on_the_next_move(
    app: RunningApp,
) -> None:
    app.command("/deal", "new Hooli 80k stage:demo forecast:omitted", user="U0CARL")
    _later(app, 5)
    app.command("/deal", "hooli stage:negotiation", user="U0CARL")
    assert app.deal_named("Hooli").forecast_category == "omitted"
    assert _forecast_rows(app, "Hooli") == [(None, "omitted")]


def test_a_move_without_a_stage_change_leaves_the_forecast(app: RunningApp) -> None:
    app.command("/deal", "new Hooli 80k stage:negotiation", user="U0CARL")
    assert app.deal_named("Hooli").forecast_category == "best_case"
    _later(app, 5)
    app.command("/deal", "hooli forecast:pipeline", user="U0CARL")
    _later(app, 10)
    app.command("/deal", "hooli stage:negotiation amount:90k", user="U0CARL")
    assert app.deal_named("Hooli").forecast_category == "pipeline"


def test_a_teams_own_stage_sets_its_forecast_default_on_creation_and_on_each_move(
    app: RunningApp,
) -> None:
    created = app.command("/deal", "new Initech 50k stage:evaluate", user="U0ANA").all_text
    assert "Best case" in created
    assert app.deal_named("Initech").forecast_category == "best_case"
    _later(app, 5)
    moved = app.command("/deal", "initech stage:decide", user="U0ANA").all_text
    assert "stage Evaluate → Decide" in moved
    assert "forecast best case → omitted (the stage's default)" in moved
    _later(app, 10)
    back = app.command("/deal", "initech stage:qualify", user="U0ANA").all_text
    assert "forecast omitted → pipeline (the stage's default)" in back
    assert _forecast_rows(app, "Initech") == [
        (None, "best_case"),
        ("best_case", "omitted"),
        ("omitted", "pipeline"),
    ]
