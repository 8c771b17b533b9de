"""Answers are private unless the user shares them: a button posts them to the channel."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.harness import RunningApp, block_actions, blocks_text


def _share_button(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return next(
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "share_in_channel"
    )


def _click(app: RunningApp, button: dict[str, Any], *, user: str = "U0ANA") -> None:
    status, _ = app.interact(
        block_actions(
            button["action_id"],
            button["value"],
            block_id="share",
            response_url=app.slack.response_url_for("share"),
            user=user,
        )
    )
    assert status == 200


def test_a_shared_pipeline_is_posted_to_the_channel_with_who_shared_it(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo")
    private = app.command("/pipeline")
    assert private.is_private
    _click(app, _share_button(private.blocks))
    posted = app.slack.responses[-1].body
    assert posted["response_type"] == "in_channel"
    assert posted["replace_original"] is False
    text = blocks_text(posted["blocks"])
    assert "Initech" in text and "Shared by <@U0ANA>" in text
    assert not [block for block in posted["blocks"] if block["type"] == "actions"]


def test_a_shared_deal_is_the_same_deal_by_id(app: RunningApp) -> None:
    app.command("/deal", "new Initech East 10k")
    shown = app.command("/deal", "show initech east")
    button = _share_button(shown.blocks)
    app.command("/deal", "new Initech Eastern 20k")  # "initech east" is now ambiguous
    _click(app, button)
    posted = app.slack.responses[-1].body
    assert posted["response_type"] == "in_channel"
    assert "Initech East" in blocks_text(posted["blocks"])
    assert "Eastern" not in blocks_text(posted["blocks"])


def test_a_share_button_never_changes_a_deal(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo")
    forged = {
        "action_id": "share_in_channel",
        "value": json.dumps({"command": "/deal", "text": "initech stage:proposal"}),
    }
    _click(app, forged)
    assert app.deal_named("Initech").stage == "demo"
    said = app.slack.responses[-1].body
    assert said["response_type"] == "ephemeral"
    assert "expired" in blocks_text(said["blocks"])


def test_a_refusal_is_never_shared(app: RunningApp) -> None:
    shown = app.command("/deal", "new Initech 50k")
    assert shown.status == 200
    private = app.command("/pipeline", "team")  # not in a team yet: a refusal, no button
    assert not [b for b in private.blocks if b["type"] == "actions"]
    stale = {
        "action_id": "share_in_channel",
        "value": json.dumps({"command": "/pipeline", "text": "team"}),
    }
    _click(app, stale)
    said = app.slack.responses[-1].body
    assert said["response_type"] == "ephemeral"
    assert "not in a team" in blocks_text(said["blocks"])
