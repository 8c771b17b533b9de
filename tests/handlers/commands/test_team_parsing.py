"""`/dealbot team remove|move|list`: parsed from the text Slack sends, bad forms explained."""

from __future__ import annotations

from datetime import date

import pytest

from handlers.commands.dispatch import USAGE
from handlers.commands.grammars.dealbot import TeamList, TeamMove, TeamRemove, parse_dealbot
from handlers.commands.tokens import CommandSyntaxError
from handlers.commands.values import UserRef

TODAY = date(2026, 3, 11)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("team remove East <@U1|jane>", TeamRemove("East", UserRef("U1"))),
        ('team remove "Sales East" <@U1>', TeamRemove("Sales East", UserRef("U1"))),
        ("team move <@U1|jane> West", TeamMove(UserRef("U1"), "West")),
        ("TEAM MOVE <@U1> “Sales West”", TeamMove(UserRef("U1"), "Sales West")),
        ("team list", TeamList()),
    ],
)
def test_team_membership_commands_parse(text: str, expected: object) -> None:
    assert parse_dealbot(text, today=TODAY) == expected


@pytest.mark.parametrize(
    ("text", "problem", "usage"),
    [
        ("team remove East", "one @user", "/dealbot team remove East @jane"),
        ("team remove East jane", "`jane` is not a Slack user", "/dealbot team remove"),
        ("team move West <@U1>", "`West` is not a Slack user", "/dealbot team move"),
        ("team move <@U1>", "the team to move them to", "/dealbot team move @jane West"),
        ("team move <@U1> Sales West", "one @user and the team", "/dealbot team move"),
        ("team list East", "`East` is extra", "/dealbot team list"),
    ],
)
def test_bad_team_membership_commands_say_what_is_wrong(
    text: str, problem: str, usage: str
) -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_dealbot(text, today=TODAY)

    assert problem in raised.value.problem
    assert raised.value.usage.startswith(usage)


def test_help_lists_remove_move_and_list() -> None:
    forms = " ".join(USAGE["/dealbot"])
    for form in ("/dealbot team remove", "/dealbot team move", "/dealbot team list"):
        assert form in forms
