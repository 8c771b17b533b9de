"""The `/nextstep` grammar: `/nextstep <deal> <what> [due:<date>] [owner:@user]`,
`/nextstep done <deal>`.

The deal is ONE token (a word, a "quoted name" or `#42`): a unique prefix is enough and the
rest of the text is the next step, `/nextstep Initech send the proposal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final, TypeAlias

from domain.dates import parse_date
from handlers.commands.tokens import (
    CommandSyntaxError,
    Forms,
    Option,
    Word,
    as_syntax_error,
    clip,
    guarded,
    keyword_of,
    pick_options,
    prepare,
    split_words,
)
from handlers.commands.values import (
    MAX_NEXT_STEP,
    OnDeal,
    OptionSpec,
    UserRef,
    collect_options,
    deal_ref,
    free_text,
    longest_reading,
    misspelt_option,
    plain_followers,
    user_ref,
)

FORMS: Final = Forms(
    {
        "/nextstep": ("/nextstep Initech send the security questionnaire due:fri owner:@jane",),
        "/nextstep done": ("/nextstep done Initech",),
    }
)


@dataclass(frozen=True)
class AddNextStep(OnDeal):
    """`/nextstep <deal> <what> [due:<date>] [owner:@user]`."""

    what: str
    due: date | None
    owner: UserRef | None


@dataclass(frozen=True)
class CompleteNextStep(OnDeal):
    """`/nextstep done <deal>`."""


@dataclass(frozen=True)
class NextStepHelp:
    """`/nextstep` with no text, or `/nextstep help`."""


NextStepCommand: TypeAlias = AddNextStep | CompleteNextStep | NextStepHelp


_NEXTSTEP_OPTIONS: Final = ("due", "owner")


def parse_nextstep(text: str, *, today: date) -> NextStepCommand:
    """Return the `/nextstep` command `text` asks for.

    Raises CommandSyntaxError (and nothing else) when the text is not a valid `/nextstep`.
    """
    return guarded(
        "/nextstep", FORMS.usage("/nextstep"), lambda: _parse_nextstep(text, today=today)
    )


def _parse_nextstep(text: str, *, today: date) -> NextStepCommand:
    """Return the `/nextstep` command of `text`; the body of parse_nextstep."""
    usage = FORMS.usage("/nextstep")
    words = split_words(prepare(text, usage), usage)
    if not words:
        return NextStepHelp()
    keyword = keyword_of(words[0])
    if keyword == "help" and len(words) == 1:
        return NextStepHelp()
    if keyword == "done":
        done_usage = FORMS.usage("/nextstep done")
        if len(words) == 1:
            raise CommandSyntaxError("Say which deal's next step is done.", done_usage)
        if len(words) > 2:
            raise CommandSyntaxError(
                f"`{clip(' '.join(w.raw for w in words[2:]))}` is extra: give just the deal "
                "(quote names with spaces).",
                done_usage,
            )
        return CompleteNextStep(deal_ref(words[1:2], done_usage))

    deal = deal_ref(words[:1], usage)
    items = pick_options(words[1:], frozenset(_NEXTSTEP_OPTIONS))
    given: dict[str, Any] = {}

    def option(option: Option, value: Word, index: int) -> int:
        if option.key == "owner":
            given["owner"] = user_ref(value, usage)
            return 0
        with as_syntax_error(usage):
            given["due"], used = longest_reading(
                value, plain_followers(items, index, 3), lambda text: parse_date(text, today=today)
            )
        return used

    misspelt_option(items, _NEXTSTEP_OPTIONS, usage)
    what_words = collect_options(items, OptionSpec(_NEXTSTEP_OPTIONS, usage), read=option)
    what = free_text(what_words, "next step", usage, limit=MAX_NEXT_STEP)
    if what is None:
        raise CommandSyntaxError(
            f"Say what the next step on `{clip(words[0].raw)}` is, after the deal name.",
            usage,
        )
    return AddNextStep(deal, what, given.get("due"), given.get("owner"))
