"""The `/pipeline` grammar: `/pipeline [me | team [<name>] | @user]`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from handlers.commands.tokens import (
    CommandSyntaxError,
    Forms,
    as_typed,
    clip,
    guarded,
    keyword_of,
    prepare,
    split_words,
)
from handlers.commands.values import UserRef, close_keyword, read_name, unknown_keyword

FORMS: Final = Forms(
    {"/pipeline": ("/pipeline", "/pipeline team", "/pipeline team East", "/pipeline @jane")}
)


@dataclass(frozen=True)
class PipelineQuery:
    """`/pipeline [me | team [<name>] | @user]`."""

    scope: Literal["me", "team"] | UserRef
    team_name: str | None = None


def parse_pipeline(text: str) -> PipelineQuery:
    """Return whose pipeline `/pipeline` asks for: `me` (the default), a team, or a user.

    Raises CommandSyntaxError (and nothing else) otherwise.
    """
    return guarded("/pipeline", FORMS.usage("/pipeline"), lambda: _parse_pipeline(text))


def _parse_pipeline(text: str) -> PipelineQuery:
    """Return the query of `text`; the body of parse_pipeline."""
    usage = FORMS.usage("/pipeline")
    words = split_words(prepare(text, usage), usage)
    if not words:
        return PipelineQuery("me")
    keyword = keyword_of(words[0])
    if keyword == "me" and len(words) == 1:
        return PipelineQuery("me")
    if keyword == "team":
        if len(words) > 2:
            raise CommandSyntaxError(
                f"`{clip(' '.join(w.raw for w in words[1:]))}` is more than one team name: "
                "quote names with spaces.",
                usage,
            )
        name = read_name(words[1:2], "team name", usage) if len(words) == 2 else None
        return PipelineQuery("team", name)
    if len(words) == 1 and len(words[0].pieces) == 1 and words[0].pieces[0].kind == "user":
        return PipelineQuery(UserRef(words[0].pieces[0].value))
    if close_keyword(words[0], ("me", "team")) is not None:
        raise unknown_keyword(words[0], ("me", "team"), command="/pipeline", usage=usage)
    raise CommandSyntaxError(
        f"`{clip(as_typed(text))}` is not a pipeline: use `me`, `team`, `team <name>` or an @user.",
        usage,
    )
