"""The Commit gate whatever way a deal reaches Commit, per team, over signed requests: a
`forecast:` the rep types and a stage whose forecast default is Commit are held to the deal
owner's team's `commit_evidence` (`teams:` in the checks file) — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.fake_slack import FakeSlackWebAPI
from domain.checks import DEFAULT_CHECKS_FILE, default_checks
from tests.databases import BACKENDS, database_url_for
from tests.e2e.harness import RunningApp, running_app

ADMIN = "U0ADMIN"
ANA, EMMA, CARL = "U0ANA", "U0EMMA", "U0CARL"  # Enterprise's rep, EMEA's rep, on no team
GMAIL_LINK = "<https://mail.google.com/mail/u/0/#inbox/FMfcgzGtwzXYZabcdefgh>"
# Both teams sell through the same stages; the last open one defaults to Commit.
TEAM_STAGES = """\
stages:
  - key: qualify
    label: Qualify
    probability: 0.2
    maps_to: discovery
  - key: evaluate
    label: Evaluate
    probability: 50%
    forecast_default: best_case
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
MISSING_ALL = "economic buyer, decision process, paper process"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def checks_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bundled checks (Commit requires evidence) with EMEA alone on `warn`."""
    bundled = DEFAULT_CHECKS_FILE.read_text(encoding="utf-8")
    assert "commit_evidence: require" in bundled
    checks = tmp_path / "checks.yml"
    checks.write_text(bundled + "teams:\n  EMEA: {commit_evidence: warn}\n", encoding="utf-8")
    monkeypatch.setenv("DEALBOT_CHECKS_FILE", str(checks))
    default_checks.cache_clear()
    yield
    monkeypatch.delenv("DEALBOT_CHECKS_FILE")
    default_checks.cache_clear()


@pytest.fixture
def app(
    checks_file: None, slack_api: FakeSlackWebAPI, database_url: str, tmp_path: Path
) -> Iterator[RunningApp]:
    slack_api.set_user(ADMIN, name="alice", is_admin=True)
    for user, name in ((ANA, "ana"), (EMMA, "emma"), (CARL, "carl")):
        slack_api.set_user(user, name=name)
    stages = tmp_path / "stages"
    stages.mkdir()
    for team in ("enterprise", "emea"):
        (stages / f"{team}.yml").write_text(TEAM_STAGES, encoding="utf-8")
    with running_app(slack_api, database_url, dealbot_stages_dir=stages) as running:
        running.command("/dealbot", "team create Enterprise <#C0ENT|ent>", user=ADMIN)
        running.command("/dealbot", "team add Enterprise rep <@U0ANA|ana>", user=ADMIN)
        running.command("/dealbot", "team create EMEA <#C0EMEA|emea>", user=ADMIN)
        running.command("/dealbot", "team add EMEA rep <@U0EMMA|emma>", user=ADMIN)
        yield running


def _forecast_changes(app: RunningApp, account: str) -> list[tuple[str | None, str | None]]:
    deal = app.deal_named(account)
    return [
        (old, new) for field, old, new, _ in app.changes_of(deal.id) if field == "forecast_category"
    ]


def test_forecast_commit_refuses_on_one_team_and_warns_on_another_same_command(
    app: RunningApp,
) -> None:
    for rep, account in ((ANA, "Initech"), (EMMA, "Globex"), (CARL, "Hooli")):
        stage = "evaluate" if rep != CARL else "proposal"
        app.command("/deal", f"new {account} 50k stage:{stage}", user=rep)

    before = app.row_counts()
    refused = app.command("/deal", "initech forecast:commit", user=ANA)
    assert refused.is_private
    assert f"Commit needs cited evidence for: {MISSING_ALL}." in refused.all_text
    assert "/deal Initech evidence eb: &lt;link&gt;" in refused.all_text
    assert app.row_counts() == before
    assert app.deal_named("Initech").forecast_category == "best_case"

    # On no team: the file's own setting, require.
    refused = app.command("/deal", "hooli forecast:commit", user=CARL)
    assert f"Commit needs cited evidence for: {MISSING_ALL}." in refused.all_text
    assert app.row_counts() == before

    warned = app.command("/deal", "globex forecast:commit", user=EMMA).all_text
    assert "forecast best case → commit" in warned
    assert f"Commit without cited evidence for: {MISSING_ALL}." in warned
    assert app.deal_named("Globex").forecast_category == "commit"


def test_a_stage_defaulting_to_commit_moves_the_deal_but_holds_its_forecast(
    app: RunningApp,
) -> None:
    app.command("/deal", "new Initech 50k stage:evaluate", user=ANA)
    assert app.deal_named("Initech").forecast_category == "best_case"

    moved = app.command("/deal", "initech stage:commit", user=ANA)
    assert "stage Evaluate → Commit" in moved.all_text
    assert (
        f"Forecast stays best case: Commit needs cited evidence for {MISSING_ALL}. "
        "Cite with `/deal #"
    ) in moved.all_text
    deal = app.deal_named("Initech")
    assert (deal.team_stage, deal.forecast_category) == ("enterprise:commit", "best_case")
    assert "forecast" not in moved.all_text.split("Forecast stays")[0]
    assert _forecast_changes(app, "Initech") == [(None, "best_case")]

    # The same move on EMEA (warn) takes the stage's Commit and says what is missing.
    app.command("/deal", "new Globex 50k stage:evaluate", user=EMMA)
    warned = app.command("/deal", "globex stage:commit", user=EMMA).all_text
    assert "forecast best case → commit (the stage's default)" in warned
    assert f"Commit without cited evidence for: {MISSING_ALL}." in warned
    assert "Forecast stays" not in warned
    assert app.deal_named("Globex").forecast_category == "commit"


def test_with_the_evidence_cited_the_stages_commit_default_applies(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:evaluate", user=ANA)
    for kind in ("eb", "process", "paper"):
        app.command("/deal", f"initech evidence {kind}: {GMAIL_LINK}", user=ANA)
    moved = app.command("/deal", "initech stage:commit", user=ANA).all_text
    assert "forecast best case → commit (the stage's default)" in moved
    assert "Forecast stays" not in moved and "without cited evidence" not in moved
    assert app.deal_named("Initech").forecast_category == "commit"


def test_a_new_deal_in_a_commit_stage_starts_at_best_case_and_says_why(
    app: RunningApp,
) -> None:
    created = app.command("/deal", "new Initech 50k stage:commit", user=ANA)
    assert "New deal: Initech" in created.all_text
    assert f"Forecast stays best case: Commit needs cited evidence for {MISSING_ALL}." in (
        created.all_text
    )
    deal = app.deal_named("Initech")
    assert (deal.team_stage, deal.forecast_category) == ("enterprise:commit", "best_case")

    # EMEA warns: its new deal takes the stage's Commit.
    app.command("/deal", "new Globex 50k stage:commit", user=EMMA)
    assert app.deal_named("Globex").forecast_category == "commit"
