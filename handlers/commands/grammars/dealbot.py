"""The `/dealbot` grammar: help, and the admin's team commands.

`/dealbot help`;
`/dealbot team create <name> <#channel> [tz:<IANA zone>] [currency:<ISO code>]`;
`/dealbot team currency <name> <ISO code>`;
`/dealbot team add <name> rep|manager <@user> [<@user> …]`;
`/dealbot team remove <name> <@user>`; `/dealbot team move <@user> <name>`;
`/dealbot team list`; `/dealbot team quota <name> <@user> <amount> [period:<2026-Q4>]`;
`/dealbot team show [<name>]`; `/dealbot team stages <name> [from-crm]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal, TypeAlias

from domain.dates import parse_period, quarter_of
from domain.money import Money, is_currency_code
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
    ChannelRef,
    OptionSpec,
    UserRef,
    collect_options,
    is_time_zone,
    longest_reading,
    plain_followers,
    read_amount,
    team_name,
    unknown_keyword,
    user_ref,
)

FORMS: Final = Forms(
    {
        "/dealbot": ("/dealbot help",),
        "/dealbot team create": (
            "/dealbot team create East #sales-east tz:America/New_York",
            "/dealbot team create EMEA #sales-emea tz:Europe/Paris currency:EUR",
        ),
        "/dealbot team currency": ("/dealbot team currency EMEA EUR",),
        "/dealbot team add": ("/dealbot team add East rep @jane @raj",),
        "/dealbot team remove": ("/dealbot team remove East @jane",),
        "/dealbot team move": ("/dealbot team move @jane West",),
        "/dealbot team list": ("/dealbot team list",),
        "/dealbot team quota": ("/dealbot team quota East @jane 250k period:2026-Q4",),
        "/dealbot team show": ("/dealbot team show East",),
        "/dealbot team stages": (
            "/dealbot team stages East",
            "/dealbot team stages East from-crm",
        ),
    }
)


@dataclass(frozen=True)
class DealbotHelp:
    """`/dealbot` with no text, or `/dealbot help`."""


@dataclass(frozen=True)
class TeamCreate:
    """`/dealbot team create <name> <#channel> [tz:<IANA zone>] [currency:<ISO code>]`."""

    name: str
    channel: ChannelRef
    timezone: str | None
    currency: str | None = None  # None: the team reports in DEALBOT_CURRENCY


@dataclass(frozen=True)
class TeamCurrency:
    """`/dealbot team currency <name> <ISO code>`."""

    name: str
    currency: str


@dataclass(frozen=True)
class TeamAdd:
    """`/dealbot team add <name> rep|manager <@user> [<@user> …]`."""

    name: str
    role: Literal["rep", "manager"]
    users: tuple[UserRef, ...]


@dataclass(frozen=True)
class TeamRemove:
    """`/dealbot team remove <name> <@user>`."""

    name: str
    user: UserRef


@dataclass(frozen=True)
class TeamMove:
    """`/dealbot team move <@user> <name>`."""

    user: UserRef
    name: str


@dataclass(frozen=True)
class TeamList:
    """`/dealbot team list`."""


@dataclass(frozen=True)
class TeamQuota:
    """`/dealbot team quota <name> <@user> <amount> [period:<2026-Q4>]`."""

    name: str
    user: UserRef
    amount: Money
    period: str
    # False: the amount named no currency (`250k`), so it is in the team's reporting
    # currency, which only the team knows; `amount` then holds the default's code.
    currency_named: bool = True


@dataclass(frozen=True)
class TeamShow:
    """`/dealbot team show [<name>]`."""

    name: str | None


@dataclass(frozen=True)
class TeamStages:
    """`/dealbot team stages <name> [from-crm]`."""

    name: str
    # Take the team's stages from the connected CRM's pipeline (an admin's).
    from_crm: bool = False


DealbotCommand: TypeAlias = (
    DealbotHelp
    | TeamCreate
    | TeamCurrency
    | TeamAdd
    | TeamRemove
    | TeamMove
    | TeamList
    | TeamQuota
    | TeamShow
    | TeamStages
)


def parse_dealbot(text: str, *, today: date, default_currency: str = "USD") -> DealbotCommand:
    """Return the `/dealbot` admin command `text` asks for.

    Raises CommandSyntaxError (and nothing else) when the text is not a valid `/dealbot`.
    """
    return guarded(
        "/dealbot",
        FORMS.usage("/dealbot"),
        lambda: _parse_dealbot(text, today=today, currency=default_currency),
    )


def _parse_dealbot(text: str, *, today: date, currency: str) -> DealbotCommand:
    """Return the `/dealbot` command of `text`; the body of parse_dealbot."""
    words = split_words(prepare(text, FORMS.usage("/dealbot")), FORMS.usage("/dealbot"))
    if not words or (keyword_of(words[0]) == "help" and len(words) == 1):
        return DealbotHelp()
    if keyword_of(words[0]) != "team":
        raise unknown_keyword(
            words[0], ("help", "team"), command="/dealbot", usage=FORMS.usages("/dealbot ")
        )
    action = keyword_of(words[1]) if len(words) > 1 else None
    rest = words[2:]
    if action == "create":
        return _parse_team_create(rest)
    if action == "currency":
        return _parse_team_currency(rest)
    if action == "add":
        return _parse_team_add(rest)
    if action == "remove":
        return _parse_team_remove(rest)
    if action == "move":
        return _parse_team_move(rest)
    if action == "list":
        if rest:
            raise CommandSyntaxError(
                f"`{clip(' '.join(w.raw for w in rest))}` is extra: `team list` takes nothing.",
                FORMS.usage("/dealbot team list"),
            )
        return TeamList()
    if action == "quota":
        return _parse_team_quota(rest, today=today, currency=currency)
    if action == "show":
        if len(rest) > 1:
            raise CommandSyntaxError(
                f"`{clip(' '.join(w.raw for w in rest))}` is more than one team name: "
                "quote names with spaces.",
                FORMS.usage("/dealbot team show"),
            )
        return TeamShow(team_name(rest[0], FORMS.usage("/dealbot team show")) if rest else None)
    if action == "stages":
        usage = FORMS.usage("/dealbot team stages")
        if not rest:
            raise CommandSyntaxError("Give the team whose stages to show.", usage)
        from_crm = len(rest) == 2 and rest[1].raw.casefold() in ("from-crm", "from_crm")
        if from_crm:
            rest = rest[:1]
        if len(rest) > 1:
            raise CommandSyntaxError(
                f"`{clip(' '.join(w.raw for w in rest))}` is more than one team name: "
                "quote names with spaces.",
                usage,
            )
        return TeamStages(team_name(rest[0], usage), from_crm=from_crm)
    if len(words) > 1:
        raise unknown_keyword(
            words[1], _TEAM_ACTIONS, command="/dealbot team", usage=FORMS.usages("/dealbot team")
        )
    raise CommandSyntaxError(
        "`team` needs a team command: use create, add, remove, move, list, quota, show, "
        "stages or currency.",
        FORMS.usages("/dealbot team"),
    )


_TEAM_ACTIONS: Final = (
    "create",
    "add",
    "remove",
    "move",
    "list",
    "quota",
    "show",
    "stages",
    "currency",
)


def _parse_team_create(words: Sequence[Word]) -> TeamCreate:
    """Return `team create <name> <#channel> [tz:<zone>] [currency:<ISO code>]`."""
    usage = FORMS.usage("/dealbot team create")
    options: dict[str, Word] = {}

    def option(option: Option, value: Word, index: int) -> int:
        options[option.key] = value
        return 0

    positional = collect_options(
        pick_options(words, None), OptionSpec(("tz", "currency"), usage), read=option
    )
    if len(positional) < 2:
        raise CommandSyntaxError("Give the team a name and a #channel.", usage)
    if len(positional) > 2:
        raise CommandSyntaxError(
            f"`{clip(' '.join(w.raw for w in positional[2:]))}` is extra: quote team names "
            "with spaces.",
            usage,
        )
    name = team_name(positional[0], usage)
    channel_word = positional[1]
    pieces = channel_word.pieces
    if len(pieces) != 1 or pieces[0].kind != "channel":
        raise CommandSyntaxError(
            f"`{clip(channel_word.raw)}` is not a Slack channel: pick it from the # menu.",
            usage,
        )
    channel = ChannelRef(pieces[0].value, pieces[0].label)
    zone = options["tz"].text.strip() if "tz" in options else None
    if zone is not None and not is_time_zone(zone):
        raise CommandSyntaxError(
            f"`{clip(zone)}` is not an IANA time zone like `Europe/Paris`.", usage
        )
    currency = (
        _currency_code(options["currency"], FORMS.examples["/dealbot team create"][1])
        if "currency" in options
        else None
    )
    return TeamCreate(name, channel, zone, currency)


def _parse_team_currency(words: Sequence[Word]) -> TeamCurrency:
    """Return `team currency <name> <ISO code>`."""
    usage = FORMS.usage("/dealbot team currency")
    if len(words) != 2:
        raise CommandSyntaxError(
            "Give the team name and a currency code (quote team names with spaces).", usage
        )
    return TeamCurrency(team_name(words[0], usage), _currency_code(words[1], usage))


def _currency_code(word: Word, usage: str) -> str:
    """Return the ISO currency code `word` names, in any case: `eur` is EUR."""
    code = word.text.strip().upper()
    if not is_currency_code(code):
        raise CommandSyntaxError(
            f"`{clip(word.raw)}` is not a currency code: use an ISO code like EUR, GBP or USD.",
            usage,
        )
    return code


def _parse_team_add(words: Sequence[Word]) -> TeamAdd:
    """Return `team add <name> rep|manager <@user> [<@user> …]`."""
    usage = FORMS.usage("/dealbot team add")
    if len(words) < 3:
        raise CommandSyntaxError(
            "Give the team name, `rep` or `manager`, and at least one @user.", usage
        )
    name = team_name(words[0], usage)
    role_text = keyword_of(words[1])
    roles: dict[str | None, Literal["rep", "manager"]] = {
        "rep": "rep",
        "reps": "rep",
        "manager": "manager",
        "managers": "manager",
    }
    role = roles.get(role_text)
    if role is None:
        raise CommandSyntaxError(
            f"`{clip(words[1].raw)}` is not a role: use `rep` or `manager`.", usage
        )
    users = tuple(dict.fromkeys(user_ref(word, usage) for word in words[2:]))
    return TeamAdd(name, role, users)


def _parse_team_remove(words: Sequence[Word]) -> TeamRemove:
    """Return `team remove <name> <@user>`."""
    usage = FORMS.usage("/dealbot team remove")
    if len(words) != 2:
        raise CommandSyntaxError("Give the team name and one @user.", usage)
    return TeamRemove(team_name(words[0], usage), user_ref(words[1], usage))


def _parse_team_move(words: Sequence[Word]) -> TeamMove:
    """Return `team move <@user> <name>`."""
    usage = FORMS.usage("/dealbot team move")
    if len(words) != 2:
        raise CommandSyntaxError("Give one @user and the team to move them to.", usage)
    return TeamMove(user_ref(words[0], usage), team_name(words[1], usage))


def _parse_team_quota(words: Sequence[Word], *, today: date, currency: str) -> TeamQuota:
    """Return `team quota <name> <@user> <amount> [period:<2026-Q4>]`."""
    usage = FORMS.usage("/dealbot team quota")
    items = pick_options(words, None)
    periods: list[str] = []

    def option(option: Option, value: Word, index: int) -> int:
        with as_syntax_error(usage):
            # `period:Q4 2026` arrives as two words.
            (start, _), used = longest_reading(
                value,
                plain_followers(items, index, 1),
                lambda text: parse_period(text, today=today),
            )
        periods.append(quarter_of(start))
        return used

    spec = OptionSpec(
        ("period",), usage, missing={"period": "`period:` needs a quarter like 2026-Q4."}
    )
    positional = collect_options(items, spec, read=option)
    period = periods[0] if periods else quarter_of(today)
    if len(positional) < 3:
        raise CommandSyntaxError("Give the team name, an @user and the quota amount.", usage)
    name = team_name(positional[0], usage)
    user = user_ref(positional[1], usage)
    with as_syntax_error(usage):
        money, used = read_amount(positional[2], positional[3:4], currency)
        # Read again with another default: only an amount that names no currency changes.
        other = "EUR" if currency != "EUR" else "USD"
        named = read_amount(positional[2], positional[3:4], other)[0].currency == money.currency
    if len(positional) > 3 + used:
        raise CommandSyntaxError(
            f"`{clip(' '.join(w.raw for w in positional[3 + used :]))}` is extra.",
            usage,
        )
    return TeamQuota(name, user, money, period, currency_named=named)
