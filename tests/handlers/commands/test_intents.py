"""A pick-a-deal button's value: the parsed command, rebuilt exactly on a click, or refused."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from domain.errors import Candidate
from handlers import blocks, messages
from handlers.commands.dispatch import COMMANDS, picked_intent
from handlers.commands.intents import to_button_value
from handlers.commands.values import OnDeal

TODAY = dt.date(2026, 11, 23)
BY_NAME = {command.name: command for command in COMMANDS}


def parsed(command: str, text: str) -> OnDeal:
    intent = BY_NAME[command].parse(text, TODAY, "USD")
    assert isinstance(intent, OnDeal)
    return intent


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (
            "/deal",
            "Initech stage:proposal close:eoq amount:60k EUR forecast:commit "
            'buyer:<@U0PETER> champion:"Samir N <samir@initech.com>" contact:"Zoë Ünal" '
            'contact:bob@initech.com criteria:"SSO & an audit log" process:"legal, then CFO" '
            'paper:"MSA first" pain:"manual \\"quotes\\"" metrics:"2h/day" competition:Globex '
            "title:Renewal",
        ),
        ("/deal", "initech amount:1,234.56"),
        ("/deal", "show init"),
        ("/deal", "won init beat the incumbent on support"),
        ("/deal", "won init"),
        ("/deal", "lost init chose a cheaper competitor 🙁"),
        ("/deal", "followup init proposal_sent"),
        ("/deal", "followup init"),
        ("/nextstep", "init send the security questionnaire due:fri owner:<@U0JANE>"),
        ("/nextstep", "init call the CFO"),
        ("/nextstep", "done init"),
    ],
)
def test_a_button_rebuilds_the_parsed_command_on_the_picked_deal(command: str, text: str) -> None:
    asked = parsed(command, text)
    value = to_button_value(command, asked.on(7))

    assert picked_intent(value) == (command, asked.on(7))
    # The value carries values, not the rep's text to parse again.
    carried = json.loads(value)
    assert set(carried) <= {"command", "intent", "deal_id", "args"}
    assert carried["deal_id"] == 7 and carried["intent"] == type(asked).__name__


def test_the_value_is_compact_json_that_leaves_defaults_out() -> None:
    value = to_button_value("/deal", parsed("/deal", "init stage:demo").on(2))
    assert value == (
        '{"command":"/deal","intent":"UpdateDeal","deal_id":2,"args":{"changes":{"stage":"demo"}}}'
    )
    # Letters stay letters: Slack counts characters, and `\u00eb` would cost six.
    assert "Zoë" in to_button_value("/deal", parsed("/deal", 'init contact:"Zoë"').on(2))


def test_a_button_names_its_deal_by_id() -> None:
    with pytest.raises(ValueError, match="by id"):
        to_button_value("/deal", parsed("/deal", "show init"))


GOOD = {"command": "/deal", "intent": "UpdateDeal", "deal_id": 2, "args": {"changes": {}}}


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "not json",
        "[1, 2]",
        # What buttons carried before: the command's text, to parse again.
        json.dumps({"command": "/deal", "text": "init stage:demo", "deal_id": 1}),
        # Only commands about one deal offer a choice of deals.
        json.dumps({**GOOD, "intent": "NewDeal", "args": {"account": "Acme", "changes": {}}}),
        json.dumps({**GOOD, "intent": "OpenDealModal", "args": {}}),
        json.dumps({**GOOD, "command": "/pipeline"}),
        json.dumps({**GOOD, "command": "/nextstep"}),
        json.dumps({**GOOD, "command": "/nope"}),
        json.dumps({**GOOD, "intent": "DealRef"}),
        json.dumps({**GOOD, "extra": 1}),
        json.dumps({key: item for key, item in GOOD.items() if key != "deal_id"}),
        json.dumps({**GOOD, "deal_id": True}),
        json.dumps({**GOOD, "deal_id": 0}),
        json.dumps({**GOOD, "deal_id": "2"}),
        json.dumps({**GOOD, "args": []}),
        json.dumps({**GOOD, "args": {"changes": {}, "deal": {"name": "x", "deal_id": None}}}),
        json.dumps({**GOOD, "args": {}}),  # an update's changes are not optional
        json.dumps({**GOOD, "args": {"changes": {"stage": 5}}}),
        json.dumps({**GOOD, "args": {"changes": {"owner": "U0X"}}}),
        json.dumps({**GOOD, "args": {"changes": {"close_date": "next friday"}}}),
        json.dumps({**GOOD, "args": {"changes": {"amount": {"amount": "5", "currency": "XYZ"}}}}),
        json.dumps({**GOOD, "args": {"changes": {"amount": {"amount": "NaN", "currency": "USD"}}}}),
        json.dumps({**GOOD, "args": {"changes": {"amount": {"amount": 5, "currency": "USD"}}}}),
        json.dumps({**GOOD, "args": {"changes": {"contacts": {"name": "x"}}}}),
        json.dumps({**GOOD, "intent": "CloseDeal", "args": {"won": 1, "reason": None}}),
        json.dumps({**GOOD, "intent": "CloseDeal", "args": {"won": True}}),
    ],
)
def test_a_value_that_is_not_a_parsed_command_about_one_deal_is_not_ours(
    value: str | None,
) -> None:
    assert picked_intent(value) is None


def test_a_command_too_long_for_a_button_lists_the_deals_instead_of_cutting_it() -> None:
    candidates = [Candidate(1, "Initech East (#1)"), Candidate(2, "Initech *West* (#2)")]
    fits = blocks.ambiguous_reply("More than one.", candidates, value_of=lambda i: "v" * 2000)
    assert [block["type"] for block in fits.block_dicts()][1] == "actions"

    reply = blocks.ambiguous_reply(
        "More than one.", candidates, value_of=lambda i: "v" * (1999 + i)
    )

    rendered = json.dumps(reply.block_dicts())
    assert reply.is_error and messages.CHOICE_TOO_LONG in reply.text
    assert "actions" not in [block["type"] for block in reply.block_dicts()]
    assert "Initech East (#1)" in rendered and "(#2)" in rendered and "v" * 100 not in rendered
