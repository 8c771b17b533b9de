"""A team with its own stages: reps see and type them, deals store the default stage each
maps to (so checks, triggers and figures keep working), over signed requests, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.fake_slack import FakeSlackWebAPI
from tests.databases import BACKENDS, postgres_database, sqlite_url
from tests.e2e.harness import RunningApp, running_app

ADMIN = "U0ADMIN"
ENTERPRISE_STAGES = """\
stages:
  - key: qualify
    label: Qualify
    probability: 0.2
    exit_criteria: [amount, close_date]
    maps_to: discovery
  - key: evaluate
    label: Evaluate
    probability: 50%
    forecast_default: best_case
    exit_criteria: [amount, close_date, buying_criteria]
    maps_to: demo
  - key: commit
    label: Commit
    probability: 0.9
    forecast_default: commit
    maps_to: negotiation
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
    for user, name in (("U0ANA", "ana"), ("U0MARIA", "maria"), ("U0CARL", "carl")):
        slack_api.set_user(user, name=name)
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "enterprise.yml").write_text(ENTERPRISE_STAGES, encoding="utf-8")
    with running_app(slack_api, database_url, dealbot_stages_dir=stages) as running:
        admin = ADMIN
        running.command("/dealbot", "team create Enterprise <#C0SALES|sales>", user=admin)
        running.command("/dealbot", "team add Enterprise rep <@U0ANA|ana>", user=admin)
        running.command("/dealbot", "team add Enterprise manager <@U0MARIA|maria>", user=admin)
        yield running


def _team_stage(app: RunningApp, account: str) -> tuple[str, str | None]:
    deal = app.deal_named(account)
    return deal.stage, deal.team_stage


def test_team_stages_shows_the_teams_own_stages_and_what_each_counts_as(
    app: RunningApp,
) -> None:
    shown = app.command("/dealbot", "team stages Enterprise", user="U0ANA").all_text
    assert "Enterprise* stages, in order (4)" in shown
    assert (
        "2. *Evaluate* (`evaluate`) · 50% · forecast default Best case · exit criteria: "
        "amount, close date, buying criteria · counts as Demo"
    ) in shown
    assert "4. *Close* (`close`) · 100%" in shown and "Prospecting" not in shown


def test_a_rep_types_their_teams_stages_and_the_deal_keeps_the_default_it_maps_to(
    app: RunningApp,
) -> None:
    created = app.command("/deal", "new Initech 50k stage:evaluate", user="U0ANA").all_text
    assert "Evaluate" in created and "Demo" not in created
    assert _team_stage(app, "Initech") == ("demo", "enterprise:evaluate")

    moved = app.command("/deal", "initech stage:Commit", user="U0ANA").all_text
    assert "stage Evaluate → Commit" in moved
    assert _team_stage(app, "Initech") == ("negotiation", "enterprise:commit")
    deal = app.deal_named("Initech")
    assert ("stage", "demo", "negotiation", "U0ANA") in app.changes_of(deal.id)

    assert "Commit" in app.command("/deal", "show initech", user="U0ANA").all_text
    pipeline = app.command("/pipeline", "", user="U0ANA").all_text
    assert "Commit" in pipeline and "Negotiation" not in pipeline
    # Weighted at the team's 90% for Commit, not negotiation's 80%.
    assert "weighted $45,000" in pipeline

    # The team's manager types the team's stages too.
    app.command("/deal", "initech stage:qualify", user="U0MARIA")
    assert _team_stage(app, "Initech") == ("discovery", "enterprise:qualify")


def test_dealbots_stage_names_are_refused_to_a_team_with_its_own_and_nothing_is_written(
    app: RunningApp,
) -> None:
    app.command("/deal", "new Initech 50k stage:evaluate", user="U0ANA")
    before = app.row_counts()
    refused = app.command("/deal", "initech stage:proposal", user="U0ANA")
    assert refused.is_private
    assert "`proposal` is not a stage: use one of qualify, evaluate, commit, close" in (
        refused.all_text
    )
    assert app.row_counts() == before and _team_stage(app, "Initech")[0] == "demo"
    closing = app.command("/deal", "initech stage:close", user="U0ANA").all_text
    assert "by closing it" in closing
    assert app.row_counts() == before


def test_someone_on_no_team_keeps_dealbots_stages(app: RunningApp) -> None:
    refused = app.command("/deal", "new Hooli 10k stage:evaluate", user="U0CARL")
    assert "`evaluate` is not a stage" in refused.all_text
    app.command("/deal", "new Hooli 10k stage:demo", user="U0CARL")
    assert _team_stage(app, "Hooli") == ("demo", None)


def test_winning_leaves_the_team_stage_and_a_default_move_clears_it(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:evaluate", user="U0ANA")
    app.command("/deal", "won initech", user="U0ANA")
    assert _team_stage(app, "Initech") == ("closed_won", None)
