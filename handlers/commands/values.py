"""Read values out of command words: names, deal references, people, amounts, options.

Every reader takes the `usage` example its grammar wants shown when the value is wrong, and
raises `CommandSyntaxError` naming the offending words.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Self

from domain.changes import ContactRef, DealRef
from domain.money import Money, is_currency_code, parse_amount
from domain.names import InvalidName, clean_name
from handlers.commands.tokens import (
    DOMAIN_ERRORS,
    CommandSyntaxError,
    Item,
    Option,
    Result,
    Word,
    clip,
)

MAX_NAME: Final = 200
MAX_FREE_TEXT: Final = 2000
MAX_NEXT_STEP: Final = 500

_AMOUNTISH_RE: Final = re.compile(r"^[-−+]?[$€£]?[-−]?\.?[0-9]")
_DEAL_ID_RE: Final = re.compile(r"^#([0-9]{1,18})$")
_EMAIL_RE: Final = re.compile(r"^[^\s@<>\"(),;:]+@[^\s@<>\"(),;:]+\.[^\s@<>\"(),;:.]+$")
_NAME_AND_EMAIL_RE: Final = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^<>]*)>$", re.DOTALL)
_NAME_THEN_EMAIL_RE: Final = re.compile(
    r"^(?P<name>.*\S)\s+(?P<email>[^\s<>]+@[^\s<>]+)$", re.DOTALL
)
_NAME_AND_USER_RE: Final = re.compile(r"^(?P<name>.*?)\s*<@(?P<user>[UW][A-Z0-9]{1,30})>$")
_ZONE_RE: Final = re.compile(r"^[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+){0,3}$")


@dataclass(frozen=True)
class UserRef:
    """A Slack user, by id."""

    user_id: str


@dataclass(frozen=True)
class ChannelRef:
    """A Slack channel, by id, with the name Slack sent along when it sent one."""

    channel_id: str
    name: str | None


@dataclass(frozen=True)
class OnDeal:
    """A parsed command about one deal; the deal comes first in every such command."""

    deal: DealRef

    def on(self, deal_id: int) -> Self:
        """Return the same command about the deal with id `deal_id` (a pick-a-deal click)."""
        return dataclasses.replace(self, deal=DealRef(None, deal_id))


@dataclass(frozen=True)
class OptionSpec:
    """The `key:` options one command form takes, and how it words their problems."""

    keys: Sequence[str]
    usage: str
    # Keys that may be given more than once (`contact:`).
    repeatable: frozenset[str] = frozenset()
    # A key's own "needs a value" problem, when the generic one would not show the form.
    missing: dict[str, str] = field(default_factory=dict)


def collect_options(
    items: Sequence[Item],
    spec: OptionSpec,
    *,
    read: Callable[[Option, Word, int], int],
    word: Callable[[Word, int], int] | None = None,
    already: Callable[[Option], str | None] | None = None,
) -> list[Word]:
    """Return the words of `items` that are not options, having read every option once.

    Refuses an unknown key, a key given twice and a key with no value, in that order.
    `read(option, value, index)` stores an option and returns how many items after it its
    value took (`close:dec 15`). `word(word, index)`, when given, reads the word at
    `items[index]` in place and returns how many items it took; without it, words are
    returned in order.
    `already(option)` returns the problem when the value was already given another way
    (`/deal new Initech 50k amount:60k`).
    """
    words: list[Word] = []
    seen: set[str] = set()
    index = 0
    while index < len(items):
        item = items[index]
        if isinstance(item, Word):
            if word is None:
                words.append(item)
                index += 1
            else:
                index += word(item, index)
            continue
        if item.key not in spec.keys:
            raise unknown_option(item, spec.keys, spec.usage)
        if item.key in seen and item.key not in spec.repeatable:
            raise CommandSyntaxError(f"`{item.key}:` is given twice; give it once.", spec.usage)
        problem = already(item) if already is not None else None
        if problem is not None:
            raise CommandSyntaxError(problem, spec.usage)
        seen.add(item.key)
        if item.value is None or not item.value.text.strip():
            problem = spec.missing.get(item.key, f"`{item.key}:` needs a value after the colon.")
            raise CommandSyntaxError(problem, spec.usage)
        index += 1 + read(item, item.value, index)
    return words


def read_name(words: Sequence[Word], what: str, usage: str, *, limit: int = MAX_NAME) -> str:
    """Return words as a name (an account, a deal, a team), refusing mentions and overlong."""
    for word in words:
        for piece in word.pieces:
            if piece.kind in ("user", "channel"):
                kind = "a person" if piece.kind == "user" else "a channel"
                raise CommandSyntaxError(
                    f"`{clip(word.raw)}` is {kind}; write the {what} as text.", usage
                )
    name = _clean_name(" ".join(word.text for word in words), what, usage)
    if not name:
        raise CommandSyntaxError(f"The {what} is missing.", usage)
    if len(name) > limit:
        raise CommandSyntaxError(
            f"The {what} `{clip(name)}` is longer than {limit} characters.", usage
        )
    return name


def _clean_name(text: str, what: str, usage: str) -> str:
    """Return `text` as a canonical name (see domain.names), refusing hidden characters."""
    try:
        return clean_name(text, what=what)
    except InvalidName as refusal:
        raise CommandSyntaxError(refusal.problem, usage) from None


def deal_ref(words: Sequence[Word], usage: str) -> DealRef:
    """Return the deal named by `words`: `#42` by id, anything else by name or prefix."""
    if len(words) == 1 and words[0].plain:
        text = words[0].text
        if match := _DEAL_ID_RE.match(text):
            deal_id = int(match[1])
            if deal_id == 0:
                raise CommandSyntaxError("`#0` is not a deal id; ids start at 1.", usage)
            return DealRef(None, deal_id)
        if text.startswith("#") and len(text) > 1:
            raise CommandSyntaxError(
                f"`{clip(text)}` is not a deal id: use `#42`, or quote a name that starts with #.",
                usage,
            )
    return DealRef(read_name(words, "deal", usage), None)


def free_text(words: Sequence[Word], what: str, usage: str, *, limit: int) -> str | None:
    """Return words as one line of free text, or None when there are none."""
    text = " ".join(word.text.strip() for word in words).strip()
    if not text:
        return None
    if len(text) > limit:
        raise CommandSyntaxError(
            f"The {what} is {len(text)} characters long; keep it under {limit}.", usage
        )
    return text


def user_ref(word: Word, usage: str) -> UserRef:
    """Return the Slack user a word mentions."""
    if len(word.pieces) == 1 and word.pieces[0].kind == "user":
        return UserRef(word.pieces[0].value)
    raise CommandSyntaxError(
        f"`{clip(word.raw)}` is not a Slack user: pick the person from the @ menu.",
        usage,
    )


def contact_ref(value: Word, key: str, usage: str) -> ContactRef:
    """Return the contact an option value names: a name, an email, both, or an @user."""
    pieces = [piece for piece in value.pieces if piece.kind != "text" or piece.value.strip()]
    if any(piece.kind == "channel" for piece in pieces):
        raise CommandSyntaxError(f"`{key}:{clip(value.raw)}` names a channel, not a person.", usage)
    if len(pieces) == 1 and pieces[0].kind == "user":
        return ContactRef(None, None, pieces[0].value)
    text = " ".join(value.text.split())
    if not text:
        raise CommandSyntaxError(f"`{key}:` needs a name, an email or an @user.", usage)
    name: str | None = text
    email: str | None = None
    user_id: str | None = None
    if match := _NAME_AND_USER_RE.match(text):
        name, user_id = match["name"].strip(" ,") or None, match["user"]
    elif match := _NAME_AND_EMAIL_RE.match(text):
        name, email = match["name"].strip(" ,") or None, match["email"].strip()
    elif _EMAIL_RE.match(text):
        name, email = None, text
    elif match := _NAME_THEN_EMAIL_RE.match(text):
        # `Peter Gibbons peter@initech.com`: what people type; Slack sends the address as
        # `<mailto:…|…>`, which the tokenizer has already turned back into the address.
        name, email = match["name"].strip(" ,") or None, match["email"]
    if email is not None:
        email = _clean_name(email, "email address", usage)
    if email is not None and (not _EMAIL_RE.match(email) or len(email) > 254):
        raise CommandSyntaxError(f"`{clip(email)}` in `{key}:` is not an email address.", usage)
    if name is not None:
        if name.startswith("@"):
            raise CommandSyntaxError(
                f"`{clip(name)}` is not a Slack user: pick the person from the @ menu, or "
                "write their name.",
                usage,
            )
        if any(char in name for char in "<>@"):
            raise CommandSyntaxError(
                f"`{key}:{clip(value.raw)}` is unclear: write `Name <email>`, an email or "
                "an @user, and quote names with spaces.",
                usage,
            )
        if len(name) > MAX_NAME:
            raise CommandSyntaxError(
                f"The name in `{key}:` is longer than {MAX_NAME} characters.", usage
            )
        name = _clean_name(name, "contact name", usage)
    return ContactRef(name, email, user_id)


def plain_followers(items: Sequence[Item], index: int, limit: int) -> list[Word]:
    """Return up to `limit` unquoted plain words right after `items[index]`."""
    followers: list[Word] = []
    for item in items[index + 1 : index + 1 + limit]:
        if not isinstance(item, Word) or not item.plain:
            break
        followers.append(item)
    return followers


def longest_reading(
    first: Word, followers: Sequence[Word], read: Callable[[str], Result]
) -> tuple[Result, int]:
    """Return the reading of the most words (from `first` on) that `read` accepts.

    Also returns how many followers it used. When no run reads, raises the error of the
    longest run that was recognisably an attempt, else that of `first` alone.
    """
    if first.quoted:
        followers = ()
    errors: list[Exception] = []
    for extra in range(len(followers), -1, -1):
        text = " ".join([first.text, *(word.text for word in followers[:extra])])
        try:
            return read(text), extra
        except DOMAIN_ERRORS as exc:
            errors.append(exc)
    telling = [exc for exc in errors if getattr(exc, "recognized", True)]
    raise (telling[0] if telling and len(telling) < len(errors) else errors[-1])


def starts_amount(items: Sequence[Item], index: int) -> bool:
    """Return whether a positional amount starts at `items[index]` (`50k`, `EUR 40000`)."""
    item = items[index]
    if not isinstance(item, Word) or not item.plain:
        return False
    if _AMOUNTISH_RE.match(item.text):
        return True
    # Only an upper-case code counts here: "Acme Try 50k" is an account, "Acme TRY 50k" lira.
    following = items[index + 1] if index + 1 < len(items) else None
    return (
        item.text.isupper()
        and is_currency_code(item.text)
        and isinstance(following, Word)
        and following.plain
        and bool(_AMOUNTISH_RE.match(following.text))
    )


def read_amount(first: Word, followers: Sequence[Word], currency: str) -> tuple[Money, int]:
    """Return the amount starting at `first` and how many followers (a currency) it took."""
    if followers and not first.quoted:
        leading_code = is_currency_code(first.text.upper())
        trailing_code = is_currency_code(followers[0].text.upper())
        if leading_code or trailing_code:
            text = f"{first.text} {followers[0].text}"
            return parse_amount(text, default_currency=currency), 1
    return parse_amount(first.text, default_currency=currency), 0


def unexpected(word: Word, before: Sequence[Item], usage: str) -> CommandSyntaxError:
    """Return the error for a stray word, hinting at quotes when it follows an option."""
    previous = before[-1] if before else None
    if isinstance(previous, Option):
        return CommandSyntaxError(
            f"`{clip(word.raw)}` after `{clip(previous.raw)}` is unexpected: quote values "
            f'with spaces, like {previous.key}:"two words".',
            usage,
        )
    return CommandSyntaxError(f"`{clip(word.raw)}` is unexpected here.", usage)


def unknown_option(option: Option, valid: Sequence[str], usage: str) -> CommandSyntaxError:
    """Return the error for an option key the command does not take, naming the valid ones."""
    close = difflib.get_close_matches(option.key, list(valid), n=1)
    hint = f"did you mean `{close[0]}:`? " if close else ""
    shown = " ".join(f"{key}:" for key in valid) or "none"
    return CommandSyntaxError(
        f"`{option.key}:` is not an option here; {hint}options: {shown}.", usage
    )


def misspelt_option(items: Sequence[Item], valid: Sequence[str], usage: str) -> None:
    """Raise for a `key:value` word kept as text whose key is a typo of a valid option.

    Commands that take free text (`/nextstep … re: pricing`) only pick out their own keys,
    so `dew:fri` would silently become part of the step; a key this close is a slip.
    """
    for item in items:
        if not isinstance(item, Word) or item.pieces[0].kind != "text" or item.pieces[0].quoted:
            continue
        key, colon, value = item.text.partition(":")
        if not colon or not value.strip() or not key.isalpha():
            continue
        if difflib.get_close_matches(key.lower(), list(valid), n=1, cutoff=0.6):
            raise unknown_option(Option(key.lower(), None, item.raw), valid, usage)


def unknown_keyword(
    word: Word, valid: Sequence[str], *, command: str, usage: str
) -> CommandSyntaxError:
    """Return the error for a sub-command `command` does not have, naming the closest one."""
    typed = clip(word.raw)
    close = difflib.get_close_matches(word.text.lower(), list(valid), n=1, cutoff=0.6)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    return CommandSyntaxError(
        f"`{typed}` is not a {command} command.{hint} Use {_either(valid)}.", usage
    )


def close_keyword(word: Word, valid: Sequence[str]) -> str | None:
    """Return the sub-command `word` is a near miss of (`shwo` for `show`), or None."""
    if not word.plain or word.text.lower() in valid:
        return None
    close = difflib.get_close_matches(word.text.lower(), list(valid), n=1, cutoff=0.6)
    return close[0] if close else None


def _either(words: Sequence[str]) -> str:
    """Return `a`, `b` or `c`."""
    shown = [f"`{word}`" for word in words]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def team_name(word: Word, usage: str) -> str:
    """Return a team name: one word or a quoted name."""
    return read_name([word], "team name", usage)


def is_time_zone(name: str) -> bool:
    """Return whether `name` is an IANA zone this machine knows."""
    if len(name) > 64 or not _ZONE_RE.match(name):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except Exception:
        # ZoneInfo raises KeyError, ValueError or OSError depending on how the name is bad.
        return False
    return True
