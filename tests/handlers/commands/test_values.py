"""collect_options: the one option loop every grammar shares, on plain tokenized words."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from handlers.commands.tokens import CommandSyntaxError, Item, Option, Word, pick_options
from handlers.commands.tokens import split_words as tokenize
from handlers.commands.values import OptionSpec, collect_options

USAGE = "/x thing key:value"


def items(text: str) -> list[Item]:
    return pick_options(tokenize(text, USAGE), None)


def read_into(store: dict[str, list[str]]) -> Callable[[Option, Word, int], int]:
    def read(option: Option, value: Word, index: int) -> int:
        store.setdefault(option.key, []).append(value.text)
        return 0

    return read


def test_words_come_back_in_order_and_options_are_read() -> None:
    store: dict[str, list[str]] = {}
    words = collect_options(
        items("one tz:UTC two"), OptionSpec(("tz",), USAGE), read=read_into(store)
    )
    assert [word.text for word in words] == ["one", "two"]
    assert store == {"tz": ["UTC"]}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tz:UTC tz:CET", "`tz:` is given twice; give it once."),
        ("tz:", "`tz:` needs a value after the colon."),
        ('tz:""', "`tz:` needs a value after the colon."),
        ("tzz:UTC", "`tzz:` is not an option here; did you mean `tz:`? options: tz:."),
    ],
)
def test_refusals_name_the_option_and_show_the_usage(text: str, problem: str) -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        collect_options(items(text), OptionSpec(("tz",), USAGE), read=read_into({}))
    assert caught.value.problem == problem
    assert caught.value.usage == USAGE


def test_a_repeatable_option_is_read_each_time() -> None:
    store: dict[str, list[str]] = {}
    spec = OptionSpec(("contact",), USAGE, repeatable=frozenset({"contact"}))
    collect_options(items("contact:ann contact:bob"), spec, read=read_into(store))
    assert store == {"contact": ["ann", "bob"]}


def test_an_option_can_word_its_own_missing_value() -> None:
    spec = OptionSpec(("period",), USAGE, missing={"period": "`period:` needs a quarter."})
    with pytest.raises(CommandSyntaxError, match="needs a quarter"):
        collect_options(items("period:"), spec, read=read_into({}))


def test_already_refuses_a_value_given_another_way_before_reading_it() -> None:
    store: dict[str, list[str]] = {}
    with pytest.raises(CommandSyntaxError, match="given another way"):
        collect_options(
            items("amount:5"),
            OptionSpec(("amount",), USAGE),
            read=read_into(store),
            already=lambda option: "The amount is given another way.",
        )
    assert store == {}


def test_a_value_may_take_the_words_after_it() -> None:
    def read(option: Option, value: Word, index: int) -> int:
        return 1  # `close:dec 15` took `15`

    words = collect_options(items("close:dec 15 rest"), OptionSpec(("close",), USAGE), read=read)
    assert [word.text for word in words] == ["rest"]
