"""Issue 12: a near miss of a sub-command or option names the closest one and the usage line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from handlers.commands.grammars.deal import UpdateDeal, parse_deal
from handlers.commands.grammars.dealbot import TeamQuota, parse_dealbot
from handlers.commands.grammars.nextstep import AddNextStep, parse_nextstep
from handlers.commands.grammars.pipeline import parse_pipeline
from handlers.commands.tokens import CommandSyntaxError
from handlers.messages import unknown_command

TODAY = date(2026, 11, 4)  # a Wednesday in 2026-Q4


def _deal(text: str) -> object:
    return parse_deal(text, today=TODAY)


def _nextstep(text: str) -> object:
    return parse_nextstep(text, today=TODAY)


def _dealbot(text: str) -> object:
    return parse_dealbot(text, today=TODAY)


@pytest.mark.parametrize(
    ("parse", "text", "meant", "usage_starts"),
    [
        (_deal, "shwo Initech", "Did you mean `/deal show Initech`?", "/deal show"),
        (_deal, "nwe Initech", "Did you mean `/deal new Initech`?", "/deal new"),
        (_deal, "folowup Initech", "Did you mean `/deal followup Initech`?", "/deal followup"),
        (_deal, "hlep", "Did you mean `/deal help`?", "/deal"),
        (_deal, "Initech stgae:demo", "did you mean `stage:`?", "/deal Initech"),
        (_deal, "Initech champoin:@samir", "did you mean `champion:`?", "/deal Initech"),
        (_nextstep, "Initech Call Bill dew:fri", "did you mean `due:`?", "/nextstep Initech"),
        (_nextstep, "Initech Call Bill ownr:<@U1>", "did you mean `owner:`?", "/nextstep"),
        (_dealbot, "tema list", "Did you mean `team`?", "/dealbot team create"),
        (_dealbot, "team lsit", "Did you mean `list`?", "/dealbot team create"),
        (_dealbot, "team quota East <@U1> 5k perod:Q1", "did you mean `period:`?", "/dealbot"),
        (parse_pipeline, "tem", "Did you mean `team`?", "/pipeline"),
    ],
)
def test_a_near_miss_names_the_closest_valid_word_and_the_usage(
    parse: Callable[[str], object], text: str, meant: str, usage_starts: str
) -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        parse(text)
    assert meant in caught.value.problem
    assert caught.value.usage.startswith(usage_starts)


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        # A deal whose name only resembles a sub-command is still a deal when options follow.
        (_deal, "Shown Corp stage:demo"),
        # Free text with a colon that is no near miss stays text.
        (_nextstep, "Initech re: pricing due:fri"),
        (_nextstep, "Initech agenda:pricing and terms"),
    ],
)
def test_words_that_are_not_near_misses_are_read_as_before(
    parse: Callable[[str], object], text: str
) -> None:
    assert isinstance(parse(text), UpdateDeal | AddNextStep)


def test_a_far_miss_gets_no_guess_but_still_the_choices() -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        _dealbot("frobnicate")
    assert "Did you mean" not in caught.value.problem
    assert "`help` or `team`" in caught.value.problem


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/pipline", "Did you mean `/pipeline`?"),
        ("/dela", "Did you mean `/deal`?"),
        ("/nextstpe", "Did you mean `/nextstep`?"),
    ],
)
def test_an_unknown_slash_command_names_the_closest(command: str, expected: str) -> None:
    said = unknown_command(command, ["/deal", "/nextstep", "/pipeline", "/dealbot"])
    assert expected in said and "/dealbot" in said


# --- dates people type, through the grammars ------------------------------------------------


def test_close_q1_is_the_next_q1s_last_day() -> None:
    parsed = _deal("Initech close:Q1")
    assert isinstance(parsed, UpdateDeal)
    assert parsed.changes.close_date == date(2027, 3, 31)


def test_close_end_of_january_and_a_numeric_date() -> None:
    parsed = _deal("Initech close:end of january")
    assert isinstance(parsed, UpdateDeal) and parsed.changes.close_date == date(2027, 1, 31)
    parsed = _deal("Initech close:12/15 stage:demo")
    assert isinstance(parsed, UpdateDeal) and parsed.changes.close_date == date(2026, 12, 15)


def test_a_numeric_date_with_two_readings_asks_which() -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        _deal("Initech close:3/4")
    assert "could be Thu 4 Mar 2027 or Sat 3 Apr 2027" in caught.value.problem


def test_due_yesterday_reads_as_the_day_before() -> None:
    parsed = _nextstep("Initech Call Bill due:yesterday")
    assert isinstance(parsed, AddNextStep) and parsed.due == date(2026, 11, 3)


@pytest.mark.parametrize(
    ("text", "period"), [("period:Q1", "2027-Q1"), ("period:Q4", "2026-Q4"), ("", "2026-Q4")]
)
def test_a_quota_period_may_be_a_bare_quarter(text: str, period: str) -> None:
    parsed = _dealbot(f"team quota East <@U1> 250k {text}")
    assert isinstance(parsed, TeamQuota) and parsed.period == period
