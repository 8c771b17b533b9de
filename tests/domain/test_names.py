"""Names are canonical (NFC, trimmed) and never hide an invisible or bidi character."""

from __future__ import annotations

import unicodedata

import pytest

from domain.names import InvalidName, clean_name, hidden_characters


def test_a_name_typed_decomposed_is_the_same_name_as_one_typed_composed() -> None:
    decomposed = unicodedata.normalize("NFD", "Société Générale")
    assert decomposed != "Société Générale"
    assert clean_name(decomposed) == "Société Générale"


def test_a_name_is_trimmed_and_its_inner_spaces_collapsed() -> None:
    assert clean_name("  Initech \t Europe  ") == "Initech Europe"


@pytest.mark.parametrize(
    ("character", "named"),
    [
        ("\u200b", "U+200B ZERO WIDTH SPACE"),
        ("\u200c", "U+200C ZERO WIDTH NON-JOINER"),
        ("\u200d", "U+200D ZERO WIDTH JOINER"),
        ("\u2060", "U+2060 WORD JOINER"),
        ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
        ("\u202a", "U+202A LEFT-TO-RIGHT EMBEDDING"),
        ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("\u2066", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("\u2069", "U+2069 POP DIRECTIONAL ISOLATE"),
    ],
)
def test_acme_with_a_hidden_character_is_refused_not_a_second_acme(
    character: str, named: str
) -> None:
    with pytest.raises(InvalidName) as refused:
        clean_name(f"Acme{character}", what="account")
    assert named in refused.value.problem
    assert refused.value.problem.startswith("The account contains an invisible character")


def test_each_hidden_character_is_named_once() -> None:
    assert hidden_characters("A\u200bc\u200bm\u202ee") == [
        "U+200B ZERO WIDTH SPACE",
        "U+202E RIGHT-TO-LEFT OVERRIDE",
    ]
    assert hidden_characters("Acme — Ünïcode & <co>") == []
