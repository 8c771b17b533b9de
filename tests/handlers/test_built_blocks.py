"""Production's blocks, built as JSON without slack_sdk's models, are the tested ones.

The suite runs the builders with the models' validation on (tests/conftest.py); production
runs them with it off, building the common blocks as plain JSON (`BuiltBlock`). Every
snapshot case is built both ways here and must come out as the same JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from handlers import blocks
from tests.handlers.test_blocks import CASES, VIEWS


@pytest.fixture
def without_validation() -> Iterator[None]:
    blocks.validate_blocks(False)
    try:
        yield
    finally:
        blocks.validate_blocks(True)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _both_ways(render: Callable[[], Any]) -> tuple[Any, Any]:
    validated = render()
    blocks.validate_blocks(False)
    try:
        built = render()
    finally:
        blocks.validate_blocks(True)
    return validated, built


@pytest.mark.parametrize("name", sorted(CASES))
def test_messages_built_without_the_models_are_the_same_json(name: str) -> None:
    def render() -> dict[str, Any]:
        reply = CASES[name]()
        return {"text": reply.text, "blocks": reply.block_dicts()}

    validated, built = _both_ways(render)
    assert _json(built) == _json(validated)


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_built_without_the_models_are_the_same_json(name: str) -> None:
    validated, built = _both_ways(lambda: VIEWS[name]().to_dict())
    assert _json(built) == _json(validated)


@pytest.mark.usefixtures("without_validation")
def test_production_builds_the_common_blocks_as_json() -> None:
    reply = CASES["pipeline"]()
    kinds = {type(block) for block in reply.blocks}
    assert kinds == {blocks.BuiltBlock}
    assert reply.block_dicts()[0]["type"] == "header"


def test_the_suite_builds_slack_sdk_models() -> None:
    reply = CASES["pipeline"]()
    assert not any(isinstance(block, blocks.BuiltBlock) for block in reply.blocks)


@pytest.mark.usefixtures("without_validation")
def test_a_shared_reply_drops_the_sharers_buttons_built_as_json() -> None:
    reply = blocks.with_share_button(CASES["pipeline"](), command="/pipeline", text="")
    assert reply.block_dicts()[-1]["type"] == "actions"
    shared = blocks.shared_reply(reply, user_id="U123")
    assert all(block["type"] != "actions" for block in shared.block_dicts())
    assert shared.block_dicts()[-1]["type"] == "context"
