"""A pick-a-deal click runs the command the rep typed on the deal they chose, or says expired."""

from __future__ import annotations

import json

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


def test_picking_a_deal_adds_the_next_step_to_that_deal(app: RunningApp) -> None:
    app.command("/deal", "new Initech East 10k")
    app.command("/deal", "new Initech West 20k")
    reply = app.command("/nextstep", "initech Call the CFO")
    assert "More than one deal matches" in reply.all_text
    west = next(
        element
        for block in reply.blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if "West" in element["text"]["text"]
    )

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
