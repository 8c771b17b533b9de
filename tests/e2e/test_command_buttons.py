"""A pick-a-deal click runs the command the rep typed on the deal they chose, or says expired."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from handlers import blocks, messages
from storage.models import Deal, NextStep
from tests.e2e.harness import RunningApp, block_actions, blocks_text


def _click(app: RunningApp, action_id: str, value: str) -> str:
    """Return the text of the private reply to a pick-a-deal click."""
    status, _ = app.interact(
        block_actions(
            action_id, value, block_id="pick_deal", response_url=app.slack.response_url_for("pick")
        )
    )
    assert status == 200
    [response] = [r for r in app.slack.responses if r.name == "pick"]
    return blocks_text(response.body["blocks"])


def _button(blocks: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """Return the pick-a-deal button whose label holds `label`."""
    return next(
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if label in element["text"]["text"]
    )


def test_picking_a_deal_adds_the_next_step_to_that_deal(app: RunningApp) -> None:
    app.command("/deal", "new Initech East 10k")
    app.command("/deal", "new Initech West 20k")
    reply = app.command("/nextstep", "initech Call the CFO")
    assert "More than one deal matches" in reply.all_text
    west = _button(reply.blocks, "West")

    shown = _click(app, west["action_id"], west["value"])

    assert "Call the CFO" in shown
    with app.database.session() as session:
        steps = session.execute(select(Deal.account, NextStep.what).join(NextStep.deal)).all()
    assert [tuple(step) for step in steps] == [("Initech West", "Call the CFO")]


def test_a_choice_for_a_command_about_no_deal_is_refused_as_expired(app: RunningApp) -> None:
    # Only commands about one deal offer a choice; a value naming `/deal new` is not ours.
    value = json.dumps({"command": "/deal", "text": "new Acme 5k", "deal_id": 1})

    shown = _click(app, f"{blocks.PICK_DEAL_ACTION}_0", value)

    assert messages.CHOICE_EXPIRED in shown
    assert app.row_counts()["deals"] == 0


def test_a_command_too_long_for_a_button_names_the_deals_to_pick_by_id(app: RunningApp) -> None:
    app.command("/deal", "new Initech East 10k")
    app.command("/deal", "new Initech West 20k")
    long_text = "x" * 1100

    reply = app.command("/deal", f'initech criteria:"{long_text}" pain:"{long_text}"')

    assert "More than one deal matches" in reply.all_text
    assert messages.CHOICE_TOO_LONG in reply.all_text
    assert "Initech East" in reply.all_text and "Initech West" in reply.all_text
    assert not [block for block in reply.blocks if block["type"] == "actions"]
    assert app.deal_named("Initech West").buying_criteria is None


def test_a_picked_deal_is_closed_as_the_command_said_when_it_was_typed(app: RunningApp) -> None:
    app.command("/deal", "new Initech East 10k")
    app.command("/deal", "new Initech West 20k")
    reply = app.command("/deal", "lost initech chose a cheaper competitor")
    east = _button(reply.blocks, "East")

    _click(app, east["action_id"], east["value"])

    assert app.deal_named("Initech East").status == "lost"
    assert app.deal_named("Initech East").close_reason == "chose a cheaper competitor"
    assert app.deal_named("Initech West").status == "open"
