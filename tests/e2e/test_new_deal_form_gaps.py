"""The new-deal form for a team with its own stages, its duplicate question, and the card's
recent changes in the team's words, over signed requests, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.fake_slack import FakeSlackWebAPI
from handlers import blocks, messages
from tests.databases import BACKENDS, postgres_database, sqlite_url
from tests.e2e.harness import RunningApp, block_actions, blocks_text, running_app, view_submission
from tests.e2e.test_team_own_stages import ENTERPRISE_STAGES

ADMIN = "U0ADMIN"


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
    for user, name in (("U0ANA", "ana"), ("U0CARL", "carl")):
        slack_api.set_user(user, name=name)
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "enterprise.yml").write_text(ENTERPRISE_STAGES, encoding="utf-8")
    with running_app(slack_api, database_url, dealbot_stages_dir=stages) as running:
        running.command("/dealbot", "team create Enterprise <#C0SALES|sales>", user=ADMIN)
        running.command("/dealbot", "team add Enterprise rep <@U0ANA|ana>", user=ADMIN)
        yield running


def _open_form(app: RunningApp, *, user: str) -> dict[str, Any]:
    reply = app.command("/deal", "", user=user)
    assert reply.status == 200
    return app.slack.calls_to("views.open")[-1].args["view"]


def _offered(view: dict[str, Any]) -> list[tuple[str, str]]:
    [stage] = [block for block in view["blocks"] if block.get("block_id") == "stage"]
    return [(o["text"]["text"], o["value"]) for o in stage["element"]["options"]]


def _submit(
    app: RunningApp, view: dict[str, Any], *, user: str, account: str, amount: str, stage: str
) -> dict[str, Any] | None:
    values = {
        "account": {"value": {"type": "plain_text_input", "value": account}},
        "amount": {"value": {"type": "plain_text_input", "value": amount}},
        "stage": {"value": {"type": "static_select", "selected_option": {"value": stage}}},
        "close_date": {"value": {"type": "datepicker", "selected_date": "2026-12-15"}},
        "forecast": {"value": {"type": "static_select", "selected_option": None}},
    }
    status, body = app.interact(view_submission(view, values, user=user))
    assert status == 200
    return body


def _click(app: RunningApp, button: dict[str, Any], *, user: str) -> str:
    """Return the text that replaced the question once `user` clicked `button`."""
    name = f"answer{len(app.slack.responses)}"
    payload = block_actions(
        button["action_id"],
        button["value"],
        block_id="confirm",
        response_url=app.slack.response_url_for(name),
        user=user,
    )
    status, _ = app.interact(payload)
    assert status == 200
    [response] = [r for r in app.slack.responses if r.name == name]
    assert response.body["replace_original"] is True
    return blocks_text(response.body["blocks"])


def _button(posted: list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    [found] = [
        element
        for block in posted
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == action_id
    ]
    return found


def test_the_form_offers_the_askers_stages_and_stores_what_the_command_would(
    app: RunningApp,
) -> None:
    view = _open_form(app, user="U0ANA")
    # The team's open stages, in its order; Close maps to won, which is reached by closing.
    assert _offered(view) == [
        ("Qualify", "qualify"),
        ("Evaluate", "evaluate"),
        ("Commit", "commit"),
    ]

    assert not _submit(app, view, user="U0ANA", account="Umbrella", amount="40k", stage="evaluate")
    app.command("/deal", "new Initech 40k stage:evaluate close:2026-12-15", user="U0ANA")
    by_form, by_command = app.deal_named("Umbrella"), app.deal_named("Initech")
    assert (by_form.stage, by_form.team_stage) == ("demo", "enterprise:evaluate")
    assert (by_form.stage, by_form.team_stage) == (by_command.stage, by_command.team_stage)
    confirmation = blocks_text(app.slack.calls_to("chat.postEphemeral")[-1].args["blocks"])
    assert "Evaluate" in confirmation and "Demo" not in confirmation

    # Someone on no team is offered dealbot's stages, and a deal stores no team stage.
    carls = _open_form(app, user="U0CARL")
    assert [value for _, value in _offered(carls)] == [
        "prospecting",
        "discovery",
        "demo",
        "proposal",
        "negotiation",
    ]
    assert not _submit(app, carls, user="U0CARL", account="Hooli", amount="5k", stage="demo")
    assert (app.deal_named("Hooli").stage, app.deal_named("Hooli").team_stage) == ("demo", None)


@pytest.mark.parametrize("stage", ["proposal", "close", "closed_won", "enterprise:commit"])
def test_a_stage_the_asker_does_not_type_is_sent_back_and_nothing_is_written(
    app: RunningApp, stage: str
) -> None:
    view = _open_form(app, user="U0ANA")
    before = app.row_counts()
    body = _submit(app, view, user="U0ANA", account="Umbrella", amount="40k", stage=stage)
    assert body == {"response_action": "errors", "errors": {"stage": messages.PICK_A_STAGE}}
    assert app.row_counts() == before


def test_a_form_for_an_account_with_an_open_deal_asks_before_a_second(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:commit", user="U0ANA")
    view = _open_form(app, user="U0ANA")
    before = app.row_counts()

    # The form closes (nothing to fix in it); the question follows privately.
    assert not _submit(app, view, user="U0ANA", account="initech", amount="30k", stage="evaluate")
    assert app.row_counts() == before
    question = app.slack.calls_to("chat.postEphemeral")[-1].args
    assert question["channel"] == "C0TEAM" and question["user"] == "U0ANA"
    assert "Initech already has an open deal (#1, $50,000, Commit): create another?" in blocks_text(
        question["blocks"]
    )

    assert messages.CANCELLED in _click(
        app, _button(question["blocks"], blocks.CANCEL_ACTION), user="U0ANA"
    )
    assert app.row_counts() == before

    created = _click(app, _button(question["blocks"], blocks.CONFIRM_ACTION), user="U0ANA")
    assert "New deal: initech" in created
    second = app.deal_named("initech")
    # What the rep filled in, as the form read it: amount, close date, the team's stage.
    assert (second.amount, str(second.close_date)) == (30000, "2026-12-15")
    assert (second.stage, second.team_stage) == ("demo", "enterprise:evaluate")


def test_the_cards_recent_changes_name_the_teams_stages(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:evaluate", user="U0ANA")
    app.command("/deal", "initech stage:commit", user="U0ANA")
    app.command("/deal", "initech stage:qualify", user="U0ANA")

    card = app.command("/deal", "show initech", user="U0ANA").all_text

    assert "Stage: Evaluate → Commit" in card and "Stage: Commit → Qualify" in card
    assert "demo" not in card and "negotiation" not in card
    # History keeps dealbot's keys, which every check and figure reads.
    deal = app.deal_named("Initech")
    assert ("stage", "demo", "negotiation", "U0ANA") in app.changes_of(deal.id)


def test_a_deal_on_no_teams_stages_keeps_dealbots_keys_in_its_changes(app: RunningApp) -> None:
    app.command("/deal", "new Hooli 10k stage:demo", user="U0CARL")
    app.command("/deal", "hooli stage:negotiation", user="U0CARL")
    assert "Stage: demo → negotiation" in app.command("/deal", "show hooli", user="U0CARL").all_text


def test_a_won_deal_still_names_its_teams_stages_in_its_changes(app: RunningApp) -> None:
    # Winning leaves the team stage (the deal is in none); its owner's team still names them.
    app.command("/deal", "new Initech 50k stage:commit", user="U0ANA")
    app.command("/deal", "won initech", user="U0ANA")
    card = app.command("/deal", "show initech", user="U0ANA").all_text
    assert "Stage: Commit → Close" in card and "closed_won" not in card
