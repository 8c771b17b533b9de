"""Parse the text of dealbot's slash commands, exactly as Slack delivers it.

The manifest sets `should_escape: true`, so Slack sends mentions as `<@U123|jane>` or
`<@U123>`, channels as `<#C123|sales>`, `<#C123|>` or `<#C123>`, typed addresses as
`<mailto:peter@initech.com|peter@initech.com>`, links as `<http://x|x>`, and a literal
`&`, `<` or `>` the rep typed as `&amp;`, `&lt;`, `&gt;`. Double quotes group words, and
the smart quotes macOS types (“like this”) count as quotes.

Grammar (examples in `USAGE`, which is the one source of help text):

- `/deal` opens the modal; `/deal help`;
  `/deal new <account> [amount] [options]`;
  `/deal <deal> <options>`; `/deal show <deal>`;
  `/deal won <deal> [reason]`; `/deal lost <deal> <reason>`;
  `/deal followup <deal> [template]`.
- `/nextstep <deal> <what> [due:<date>] [owner:@user]`; `/nextstep done <deal>`.
- `/pipeline [me | team [<name>] | @user]`.
- `/dealbot help`; `/dealbot team create <name> <#channel> [tz:<IANA zone>]`;
  `/dealbot team add <name> rep|manager <@user> [<@user> …]`;
  `/dealbot team remove <name> <@user>`; `/dealbot team move <@user> <name>`;
  `/dealbot team list`;
  `/dealbot team quota <name> <@user> <amount> [period:<2026-Q4>]`;
  `/dealbot team show [<name>]`.

Deal options: `stage: close: amount: forecast: buyer: champion: contact: criteria:
process: paper: pain: metrics: competition: title:`. A value with spaces is quoted
(`criteria:"SSO and audit log"`), except that dates, stages, forecast categories and
amounts take the words that complete them (`close:dec 15`, `due:in 2 weeks`,
`stage:closed won`, `forecast:best case`, `amount:40k EUR`). `contact:` may repeat.

Deal reference rule. `<deal>` is a name (any case, a unique prefix is enough) or `#<id>`:

- `/deal <deal> <options>`: the reference is every word before the first option, so
  `/deal Initech Europe stage:demo` updates "Initech Europe".
- `/deal show <deal>`: the reference is all of the text.
- `/deal won|lost|followup <deal> …` and `/nextstep [done] <deal> …`: the reference is ONE
  token (a word, a "quoted name" or `#42`), because a unique prefix is enough and the rest
  of the text is the reason or the next step: `/nextstep Initech send the proposal`.

A first word that is a sub-command (`new`, `show`, …) can be used as a deal name by quoting
it: `/deal "New Horizons" stage:demo`.

Every parse function raises `CommandSyntaxError` and nothing else, whatever the text: its
`problem` says what was wrong and `usage` shows the right form, ready for an ephemeral reply.
Free text (reasons, next steps, criteria …) comes back as plain text with entities and
addresses decoded; user and channel mentions inside it are kept as `<@U123>` / `<#C123>` so
Slack still renders them.
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal, TypeAlias, TypeVar

from domain.changes import ContactRef, DealChanges, DealRef
from domain.dates import InvalidDate, parse_date, parse_period, quarter_of
from domain.money import InvalidAmount, Money, is_currency_code, parse_amount
from domain.names import InvalidName, clean_name
from domain.stages import UnknownForecast, UnknownStage, match_forecast, match_stage

__all__ = [
    "MAX_FREE_TEXT",
    "MAX_NAME",
    "MAX_NEXT_STEP",
    "USAGE",
    "AddNextStep",
    "ChannelRef",
    "CloseDeal",
    "CommandSyntaxError",
    "CompleteNextStep",
    "ContactRef",
    "DealChanges",
    "DealCommand",
    "DealHelp",
    "DealRef",
    "DealbotCommand",
    "DealbotHelp",
    "FollowUp",
    "NewDeal",
    "NextStepCommand",
    "NextStepHelp",
    "OpenDealModal",
    "PipelineQuery",
    "ShowDeal",
    "TeamAdd",
    "TeamCreate",
    "TeamList",
    "TeamMove",
    "TeamQuota",
    "TeamRemove",
    "TeamShow",
    "UpdateDeal",
    "UserRef",
    "parse_deal",
    "parse_dealbot",
    "parse_nextstep",
    "parse_pipeline",
]

logger = logging.getLogger(__name__)

MAX_NAME: Final = 200
MAX_FREE_TEXT: Final = 2000
MAX_NEXT_STEP: Final = 500
# Slack caps command text well below this; the cap only bounds work on hostile input.
_MAX_COMMAND_TEXT: Final = 12_000

# Examples per command form; the first of each is what an error about that form shows.
_FORMS: Final[dict[str, tuple[str, ...]]] = {
    "/deal": ("/deal", "/deal help"),
    "/deal new": (
        "/deal new Initech 50k stage:discovery close:dec 15",
        '/deal new "Acme Corp" €40,000 forecast:pipeline close:eoq',
    ),
    "/deal update": (
        "/deal Initech stage:proposal close:eoq amount:60k forecast:commit",
        '/deal #42 buyer:@peter criteria:"SSO and an audit log" process:"legal, then CFO"',
        '/deal Initech contact:"Peter Gibbons <peter@initech.com>" champion:@samir',
    ),
    "/deal show": ("/deal show Initech", "/deal show #42"),
    "/deal won": ("/deal won Initech beat the incumbent on support",),
    "/deal lost": ('/deal lost "Acme Corp" chose a cheaper competitor',),
    "/deal followup": ("/deal followup Initech proposal_sent",),
    "/nextstep": ("/nextstep Initech send the security questionnaire due:fri owner:@jane",),
    "/nextstep done": ("/nextstep done Initech",),
    "/pipeline": ("/pipeline", "/pipeline team", "/pipeline team East", "/pipeline @jane"),
    "/dealbot": ("/dealbot help",),
    "/dealbot team create": ("/dealbot team create East #sales-east tz:America/New_York",),
    "/dealbot team add": ("/dealbot team add East rep @jane @raj",),
    "/dealbot team remove": ("/dealbot team remove East @jane",),
    "/dealbot team move": ("/dealbot team move @jane West",),
    "/dealbot team list": ("/dealbot team list",),
    "/dealbot team quota": ("/dealbot team quota East @jane 250k period:2026-Q4",),
    "/dealbot team show": ("/dealbot team show East",),
}
# Forms parsed but left out of help (none at the moment).
_UNANNOUNCED: Final[frozenset[str]] = frozenset()

USAGE: Final[dict[str, Sequence[str]]] = {
    command: tuple(
        line
        for form, lines in _FORMS.items()
        if form.split()[0] == command and form not in _UNANNOUNCED
        for line in lines
    )
    for command in ("/deal", "/nextstep", "/pipeline", "/dealbot")
}


def _usage(form: str) -> str:
    """Return the example an error about `form` shows."""
    return _FORMS[form][0]


def _usages(prefix: str) -> str:
    """Return the first example of every form under `prefix`, one per line."""
    return "\n".join(lines[0] for form, lines in _FORMS.items() if form.startswith(prefix))


class CommandSyntaxError(Exception):
    """Command text dealbot cannot act on.

    `problem` is one short sentence quoting the offending bit; `usage` shows the right form.
    """

    def __init__(self, problem: str, usage: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage


# --- What the parsers return ---------------------------------------------------------


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
class OpenDealModal:
    """`/deal` with no text."""


@dataclass(frozen=True)
class DealHelp:
    """`/deal help`."""


@dataclass(frozen=True)
class NewDeal:
    """`/deal new <account> [amount] [options]`."""

    account: str
    changes: DealChanges


@dataclass(frozen=True)
class ShowDeal:
    """`/deal show <deal>`."""

    deal: DealRef


@dataclass(frozen=True)
class CloseDeal:
    """`/deal won <deal> [reason]` or `/deal lost <deal> <reason>`."""

    deal: DealRef
    won: bool
    reason: str | None


@dataclass(frozen=True)
class UpdateDeal:
    """`/deal <deal> <options>`."""

    deal: DealRef
    changes: DealChanges


@dataclass(frozen=True)
class FollowUp:
    """`/deal followup <deal> [template]`."""

    deal: DealRef
    template: str | None


DealCommand: TypeAlias = (
    OpenDealModal | DealHelp | NewDeal | ShowDeal | CloseDeal | UpdateDeal | FollowUp
)


@dataclass(frozen=True)
class AddNextStep:
    """`/nextstep <deal> <what> [due:<date>] [owner:@user]`."""

    deal: DealRef
    what: str
    due: date | None
    owner: UserRef | None


@dataclass(frozen=True)
class CompleteNextStep:
    """`/nextstep done <deal>`."""

    deal: DealRef


@dataclass(frozen=True)
class NextStepHelp:
    """`/nextstep` with no text, or `/nextstep help`."""


NextStepCommand: TypeAlias = AddNextStep | CompleteNextStep | NextStepHelp


@dataclass(frozen=True)
class PipelineQuery:
    """`/pipeline [me | team [<name>] | @user]`."""

    scope: Literal["me", "team"] | UserRef
    team_name: str | None = None


@dataclass(frozen=True)
class DealbotHelp:
    """`/dealbot` with no text, or `/dealbot help`."""


@dataclass(frozen=True)
class TeamCreate:
    """`/dealbot team create <name> <#channel> [tz:<IANA zone>]`."""

    name: str
    channel: ChannelRef
    timezone: str | None


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


@dataclass(frozen=True)
class TeamShow:
    """`/dealbot team show [<name>]`."""

    name: str | None


DealbotCommand: TypeAlias = (
    DealbotHelp | TeamCreate | TeamAdd | TeamRemove | TeamMove | TeamList | TeamQuota | TeamShow
)


# --- Tokens --------------------------------------------------------------------------

_PieceKind: TypeAlias = Literal["text", "user", "channel", "email", "link"]


@dataclass(frozen=True)
class _Piece:
    """A run of one word: decoded text, or one of Slack's `<…>` escapes."""

    kind: _PieceKind
    value: str
    label: str | None = None
    quoted: bool = False


@dataclass(frozen=True)
class _Word:
    """A whitespace-separated word (quotes may join several) and the text it came from.

    `raw` is that text as the rep typed it (see `_as_typed`), so problems can quote it.
    """

    pieces: tuple[_Piece, ...]
    raw: str

    @property
    def quoted(self) -> bool:
        """Return whether any part of the word was inside quotes."""
        return any(piece.quoted for piece in self.pieces)

    @property
    def plain(self) -> bool:
        """Return whether the word is unquoted text with no mention, link or address."""
        return all(piece.kind == "text" and not piece.quoted for piece in self.pieces)

    @property
    def text(self) -> str:
        """Return the word as plain text, keeping mentions in Slack's `<@U123>` form."""
        return "".join(_render(piece) for piece in self.pieces)


@dataclass(frozen=True)
class _Option:
    """A `key:value` word; `value` is None when nothing followed the colon."""

    key: str
    value: _Word | None
    raw: str


_Item: TypeAlias = _Word | _Option

_OPEN_QUOTES: Final = frozenset('"“”„')
_CLOSE_QUOTES: Final = frozenset('"“”')
_ENTITY_RE: Final = re.compile(r"&(amp|lt|gt);")
_ENTITIES: Final = {"amp": "&", "lt": "<", "gt": ">"}
_USER_ID_RE: Final = re.compile(r"^[UW][A-Z0-9]{1,30}$")
_CHANNEL_ID_RE: Final = re.compile(r"^[CG][A-Z0-9]{1,30}$")
_OPTION_RE: Final = re.compile(r"^([A-Za-z][A-Za-z_]{0,30}):(.*)$", re.DOTALL)
_AMOUNTISH_RE: Final = re.compile(r"^[-−+]?[$€£]?[-−]?\.?[0-9]")
_DEAL_ID_RE: Final = re.compile(r"^#([0-9]{1,18})$")
_EMAIL_RE: Final = re.compile(r"^[^\s@<>\"(),;:]+@[^\s@<>\"(),;:]+\.[^\s@<>\"(),;:.]+$")
_NAME_AND_EMAIL_RE: Final = re.compile(r"^(?P<name>.*?)\s*<(?P<email>[^<>]*)>$", re.DOTALL)
_NAME_THEN_EMAIL_RE: Final = re.compile(
    r"^(?P<name>.*\S)\s+(?P<email>[^\s<>]+@[^\s<>]+)$", re.DOTALL
)
_NAME_AND_USER_RE: Final = re.compile(r"^(?P<name>.*?)\s*<@(?P<user>[UW][A-Z0-9]{1,30})>$")
_ZONE_RE: Final = re.compile(r"^[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+){0,3}$")
_TEMPLATE_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def _unescape(text: str) -> str:
    """Return `text` with Slack's three HTML entities turned back into characters."""
    return _ENTITY_RE.sub(lambda match: _ENTITIES[match[1]], text)


def _render(piece: _Piece) -> str:
    """Return a piece as plain text (mentions stay in Slack's canonical form)."""
    if piece.kind == "user":
        return f"<@{piece.value}>"
    if piece.kind == "channel":
        return f"<#{piece.value}>"
    if piece.kind == "link":
        return piece.label or piece.value
    return piece.value


def _escape_piece(inner: str, *, quoted: bool) -> _Piece:
    """Return the piece for one `<…>` escape, given the text between the brackets."""
    target, _, label = inner.partition("|")
    label = _unescape(label)
    if target.startswith("@") and _USER_ID_RE.match(target[1:]):
        return _Piece("user", target[1:], label or None, quoted)
    if target.startswith("#") and _CHANNEL_ID_RE.match(target[1:]):
        return _Piece("channel", target[1:], label or None, quoted)
    if target.startswith("!"):
        # <!here>, <!subteam^S1|@sales>, <!date^…|fallback>: what the rep saw is the label.
        return _Piece("text", label or "@" + target[1:].partition("^")[0], None, quoted)
    if target.lower().startswith("mailto:"):
        return _Piece("email", _unescape(target[len("mailto:") :]), label or None, quoted)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", target):
        return _Piece("link", _unescape(target), label or None, quoted)
    return _Piece("text", "<" + _unescape(inner) + ">", None, quoted)


_SLACK_ESCAPE_RE: Final = re.compile(r"<([^<>]*)>")


def _as_typed(source: str) -> str:
    """Return Slack's text as the rep saw it, for quoting back in a problem.

    Entities are decoded and addresses and links shown as their text; mentions stay as
    Slack sent them (`<@U123|jane>`). Replies escape whatever they quote, so nothing here is mrkdwn.
    """
    parts: list[str] = []
    last = 0
    for match in _SLACK_ESCAPE_RE.finditer(source):
        parts.append(_unescape(source[last : match.start()]))
        piece = _escape_piece(match[1], quoted=False)
        parts.append(match[0] if piece.kind in ("user", "channel") else _render(piece))
        last = match.end()
    parts.append(_unescape(source[last:]))
    return "".join(parts)


def _words(text: str, form: str) -> list[_Word]:
    """Return the words of `text`, decoding escapes and honouring straight and smart quotes."""
    words: list[_Word] = []
    pieces: list[_Piece] = []
    buffer: list[str] = []
    start: int | None = None
    quote_start = -1
    pieces_at_quote = 0

    def flush(*, quoted: bool) -> None:
        if buffer:
            pieces.append(_Piece("text", _unescape("".join(buffer)), quoted=quoted))
            buffer.clear()

    index = 0
    while index < len(text):
        char = text[index]
        in_quote = quote_start >= 0
        if in_quote and char in _CLOSE_QUOTES:
            flush(quoted=True)
            if len(pieces) == pieces_at_quote:
                pieces.append(_Piece("text", "", quoted=True))
            quote_start = -1
            index += 1
            continue
        if not in_quote and char.isspace():
            flush(quoted=False)
            if start is not None:
                words.append(_Word(tuple(pieces), _as_typed(text[start:index])))
                pieces, start = [], None
            index += 1
            continue
        if start is None:
            start = index
        if not in_quote and char in _OPEN_QUOTES:
            flush(quoted=False)
            quote_start, pieces_at_quote = index, len(pieces)
            index += 1
            continue
        if char == "<":
            close = text.find(">", index + 1)
            reopen = text.find("<", index + 1)
            if close > index and (reopen == -1 or close < reopen):
                flush(quoted=in_quote)
                pieces.append(_escape_piece(text[index + 1 : close], quoted=in_quote))
                index = close + 1
                continue
        buffer.append(char)
        index += 1

    if quote_start >= 0:
        raise CommandSyntaxError(
            f"The quote in `{_clip(_as_typed(text[quote_start:]))}` is never closed.",
            _usage(form),
        )
    flush(quoted=False)
    if start is not None:
        words.append(_Word(tuple(pieces), _as_typed(text[start:])))
    return words


def _option_parts(word: _Word) -> tuple[str, _Word | None] | None:
    """Return the lower-cased key and the value of a `key:value` word, or None."""
    first = word.pieces[0] if word.pieces else None
    if first is None or first.kind != "text" or first.quoted:
        return None
    match = _OPTION_RE.match(first.value)
    if match is None:
        return None
    key, rest = match[1], match[2]
    pieces = ((_Piece("text", rest),) if rest else ()) + word.pieces[1:]
    value = _Word(pieces, word.raw[len(key) + 1 :]) if pieces else None
    return key.lower(), value


def _items(words: Sequence[_Word], known: frozenset[str] | None) -> list[_Item]:
    """Return words with options picked out.

    With `known` None every `word:` is an option (so a typo is reported, not swallowed);
    otherwise only those keys are, and `re: pricing` in free text stays text.
    """

    def option_parts(word: _Word) -> tuple[str, _Word | None] | None:
        parts = _option_parts(word)
        if parts is None or (known is not None and parts[0] not in known):
            return None
        return parts

    items: list[_Item] = []
    index = 0
    while index < len(words):
        word = words[index]
        parts = option_parts(word)
        if parts is None:
            items.append(word)
            index += 1
            continue
        key, value = parts
        raw = word.raw
        index += 1
        # `stage: demo` (a space after the colon) is an easy slip; read it as meant.
        if value is None and index < len(words) and option_parts(words[index]) is None:
            value = words[index]
            raw = f"{raw} {value.raw}"
            index += 1
        items.append(_Option(key, value, raw))
    return items


def _clip(text: str, limit: int = 40) -> str:
    """Return `text` short enough to quote in a one-line problem."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _prepare(text: str | None, form: str) -> str:
    """Return the command text ready to split, or raise on control characters."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > _MAX_COMMAND_TEXT:
        raise CommandSyntaxError("That command is too long.", _usage(form))
    for char in text:
        if char not in "\n\t" and unicodedata.category(char) == "Cc":
            raise CommandSyntaxError(
                f"The text contains a control character (U+{ord(char):04X}); retype it.",
                _usage(form),
            )
    return text


_Result = TypeVar("_Result")


def _guarded(form: str, parse: Callable[[], _Result]) -> _Result:
    """Return `parse()`, turning any failure into CommandSyntaxError.

    The parsers convert every expected failure themselves; this net exists so that a bug
    shows the rep a polite line (and the log a traceback) rather than a dead command.
    """
    try:
        return parse()
    except CommandSyntaxError:
        raise
    except _DOMAIN_ERRORS as exc:
        raise CommandSyntaxError(str(exc), _usage(form)) from exc
    except Exception as exc:
        logger.exception("Unexpected failure parsing a %s command", form)
        raise CommandSyntaxError("dealbot could not read that command.", _usage(form)) from exc


_DOMAIN_ERRORS: Final = (InvalidAmount, InvalidDate, UnknownStage, UnknownForecast)


@contextmanager
def _as_syntax_error(form: str) -> Iterator[None]:
    """Yield, re-raising the domain's value errors as CommandSyntaxError for `form`."""
    try:
        yield
    except _DOMAIN_ERRORS as exc:
        raise CommandSyntaxError(str(exc), _usage(form)) from exc


def _keyword(word: _Word) -> str | None:
    """Return the lower-cased word if it could be a sub-command (unquoted text)."""
    return word.text.lower() if word.plain else None


# --- Values --------------------------------------------------------------------------


def _name(words: Sequence[_Word], what: str, form: str, *, limit: int = MAX_NAME) -> str:
    """Return words as a name (an account, a deal, a team), refusing mentions and overlong."""
    for word in words:
        for piece in word.pieces:
            if piece.kind in ("user", "channel"):
                kind = "a person" if piece.kind == "user" else "a channel"
                raise CommandSyntaxError(
                    f"`{_clip(word.raw)}` is {kind}; write the {what} as text.", _usage(form)
                )
    name = _clean_name(" ".join(word.text for word in words), what, form)
    if not name:
        raise CommandSyntaxError(f"The {what} is missing.", _usage(form))
    if len(name) > limit:
        raise CommandSyntaxError(
            f"The {what} `{_clip(name)}` is longer than {limit} characters.", _usage(form)
        )
    return name


def _clean_name(text: str, what: str, form: str) -> str:
    """Return `text` as a canonical name (see domain.names), refusing hidden characters."""
    try:
        return clean_name(text, what=what)
    except InvalidName as refusal:
        raise CommandSyntaxError(refusal.problem, _usage(form)) from None


def _deal_ref(words: Sequence[_Word], form: str) -> DealRef:
    """Return the deal named by `words`: `#42` by id, anything else by name or prefix."""
    if len(words) == 1 and words[0].plain:
        text = words[0].text
        if match := _DEAL_ID_RE.match(text):
            deal_id = int(match[1])
            if deal_id == 0:
                raise CommandSyntaxError("`#0` is not a deal id; ids start at 1.", _usage(form))
            return DealRef(None, deal_id)
        if text.startswith("#") and len(text) > 1:
            raise CommandSyntaxError(
                f"`{_clip(text)}` is not a deal id: use `#42`, or quote a name that starts with #.",
                _usage(form),
            )
    return DealRef(_name(words, "deal", form), None)


def _free_text(words: Sequence[_Word], what: str, form: str, *, limit: int) -> str | None:
    """Return words as one line of free text, or None when there are none."""
    text = " ".join(word.text.strip() for word in words).strip()
    if not text:
        return None
    if len(text) > limit:
        raise CommandSyntaxError(
            f"The {what} is {len(text)} characters long; keep it under {limit}.", _usage(form)
        )
    return text


def _user(word: _Word, form: str) -> UserRef:
    """Return the Slack user a word mentions."""
    if len(word.pieces) == 1 and word.pieces[0].kind == "user":
        return UserRef(word.pieces[0].value)
    raise CommandSyntaxError(
        f"`{_clip(word.raw)}` is not a Slack user: pick the person from the @ menu.",
        _usage(form),
    )


def _contact(value: _Word, key: str, form: str) -> ContactRef:
    """Return the contact an option value names: a name, an email, both, or an @user."""
    pieces = [piece for piece in value.pieces if piece.kind != "text" or piece.value.strip()]
    if any(piece.kind == "channel" for piece in pieces):
        raise CommandSyntaxError(
            f"`{key}:{_clip(value.raw)}` names a channel, not a person.", _usage(form)
        )
    if len(pieces) == 1 and pieces[0].kind == "user":
        return ContactRef(None, None, pieces[0].value)
    text = " ".join(value.text.split())
    if not text:
        raise CommandSyntaxError(f"`{key}:` needs a name, an email or an @user.", _usage(form))
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
        email = _clean_name(email, "email address", form)
    if email is not None and (not _EMAIL_RE.match(email) or len(email) > 254):
        raise CommandSyntaxError(
            f"`{_clip(email)}` in `{key}:` is not an email address.", _usage(form)
        )
    if name is not None:
        if name.startswith("@"):
            raise CommandSyntaxError(
                f"`{_clip(name)}` is not a Slack user: pick the person from the @ menu, or "
                "write their name.",
                _usage(form),
            )
        if any(char in name for char in "<>@"):
            raise CommandSyntaxError(
                f"`{key}:{_clip(value.raw)}` is unclear: write `Name <email>`, an email or "
                "an @user, and quote names with spaces.",
                _usage(form),
            )
        if len(name) > MAX_NAME:
            raise CommandSyntaxError(
                f"The name in `{key}:` is longer than {MAX_NAME} characters.", _usage(form)
            )
        name = _clean_name(name, "contact name", form)
    return ContactRef(name, email, user_id)


def _plain_followers(items: Sequence[_Item], index: int, limit: int) -> list[_Word]:
    """Return up to `limit` unquoted plain words right after `items[index]`."""
    followers: list[_Word] = []
    for item in items[index + 1 : index + 1 + limit]:
        if not isinstance(item, _Word) or not item.plain:
            break
        followers.append(item)
    return followers


def _longest_reading(
    first: _Word, followers: Sequence[_Word], read: Callable[[str], _Result]
) -> tuple[_Result, int]:
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
        except _DOMAIN_ERRORS as exc:
            errors.append(exc)
    telling = [exc for exc in errors if getattr(exc, "recognized", True)]
    raise (telling[0] if telling and len(telling) < len(errors) else errors[-1])


# --- /deal -----------------------------------------------------------------------------

_DEAL_OPTIONS: Final[dict[str, str]] = {
    "stage": "stage",
    "close": "close_date",
    "amount": "amount",
    "forecast": "forecast",
    "buyer": "economic_buyer",
    "champion": "champion",
    "contact": "contacts",
    "criteria": "buying_criteria",
    "process": "buying_process",
    "paper": "paper_process",
    "pain": "pain",
    "metrics": "metrics",
    "competition": "competition",
    "title": "title",
}
_DEAL_KEYS_SHOWN: Final = " ".join(f"{key}:" for key in _DEAL_OPTIONS)
_DEAL_SUBCOMMANDS: Final = frozenset({"new", "show", "won", "lost", "help", "followup"})


def parse_deal(text: str, *, today: date, default_currency: str = "USD") -> DealCommand:
    """Return the `/deal` command `text` asks for.

    Raises CommandSyntaxError (and nothing else) when the text is not a valid `/deal`.
    """
    return _guarded(
        "/deal update", lambda: _parse_deal(text, today=today, currency=default_currency)
    )


def _parse_deal(text: str, *, today: date, currency: str) -> DealCommand:
    """Return the `/deal` command of `text`; the body of parse_deal."""
    first = (text or "").split(maxsplit=1)[0].lower() if (text or "").strip() else ""
    early_form = f"/deal {first}" if f"/deal {first}" in _FORMS else "/deal update"
    words = _words(_prepare(text, early_form), early_form)
    if not words:
        return OpenDealModal()
    keyword = _keyword(words[0])
    rest = words[1:]
    if keyword == "help":
        return DealHelp()
    if keyword == "new":
        return _parse_new_deal(rest, today=today, currency=currency)
    if keyword == "show":
        if not rest:
            raise CommandSyntaxError("Say which deal to show.", _usage("/deal show"))
        return ShowDeal(_deal_ref(rest, "/deal show"))
    if keyword in ("won", "lost"):
        return _parse_close_deal(rest, won=keyword == "won")
    if keyword == "followup":
        return _parse_follow_up(rest)
    return _parse_update_deal(words, today=today, currency=currency)


def _parse_new_deal(words: Sequence[_Word], *, today: date, currency: str) -> NewDeal:
    """Return `/deal new <account> [amount] [options]`."""
    form = "/deal new"
    items = _items(words, None)
    if not items or not isinstance(items[0], _Word):
        raise CommandSyntaxError("Name the account for the new deal.", _usage(form))
    account_end = 1
    if not items[0].quoted:
        while account_end < len(items):
            item = items[account_end]
            if not isinstance(item, _Word) or item.quoted or _starts_amount(items, account_end):
                break
            account_end += 1
    account_words = [item for item in items[:account_end] if isinstance(item, _Word)]
    account = _name(account_words, "account", form)
    changes = _deal_changes(
        items[account_end:], today=today, currency=currency, form=form, allow_amount=True
    )
    return NewDeal(account, changes)


def _parse_update_deal(words: Sequence[_Word], *, today: date, currency: str) -> UpdateDeal:
    """Return `/deal <deal> <options>`; the deal is every word before the first option."""
    form = "/deal update"
    items = _items(words, None)
    ref_end = next((i for i, item in enumerate(items) if isinstance(item, _Option)), len(items))
    ref_words = [item for item in items[:ref_end] if isinstance(item, _Word)]
    if not ref_words:
        raise CommandSyntaxError(
            f"Say which deal to change before `{_clip(items[0].raw)}`.", _usage(form)
        )
    deal = _deal_ref(ref_words, form)
    if ref_end == len(items):
        shown = _clip(" ".join(word.raw for word in ref_words))
        hint = "" if len(ref_words) > 1 else f" (to see it: `/deal show {shown}`)"
        raise CommandSyntaxError(
            f"Nothing to change on `{shown}`: add an option like stage: or close:{hint}.",
            _usage(form),
        )
    changes = _deal_changes(
        items[ref_end:], today=today, currency=currency, form=form, allow_amount=False
    )
    return UpdateDeal(deal, changes)


def _parse_close_deal(words: Sequence[_Word], *, won: bool) -> CloseDeal:
    """Return `/deal won <deal> [reason]` or `/deal lost <deal> <reason>`."""
    form = "/deal won" if won else "/deal lost"
    if not words:
        raise CommandSyntaxError(f"Say which deal was {'won' if won else 'lost'}.", _usage(form))
    deal = _deal_ref(words[:1], form)
    reason = _free_text(words[1:], "reason", form, limit=MAX_FREE_TEXT)
    if reason is None and not won:
        raise CommandSyntaxError(
            f"Say why `{_clip(words[0].raw)}` was lost, after the deal name.", _usage(form)
        )
    return CloseDeal(deal, won, reason)


def _parse_follow_up(words: Sequence[_Word]) -> FollowUp:
    """Return `/deal followup <deal> [template]`."""
    form = "/deal followup"
    if not words:
        raise CommandSyntaxError("Say which deal to follow up on.", _usage(form))
    deal = _deal_ref(words[:1], form)
    if len(words) > 2:
        raise CommandSyntaxError(
            f"`{_clip(' '.join(w.raw for w in words[2:]))}` is extra: give one template name.",
            _usage(form),
        )
    template = words[1].text.strip().lower() if len(words) == 2 else None
    if template is not None and not _TEMPLATE_RE.match(template):
        raise CommandSyntaxError(
            f"`{_clip(words[1].raw)}` is not a template name like `proposal_sent`.", _usage(form)
        )
    return FollowUp(deal, template)


def _starts_amount(items: Sequence[_Item], index: int) -> bool:
    """Return whether a positional amount starts at `items[index]` (`50k`, `EUR 40000`)."""
    item = items[index]
    if not isinstance(item, _Word) or not item.plain:
        return False
    if _AMOUNTISH_RE.match(item.text):
        return True
    # Only an upper-case code counts here: "Acme Try 50k" is an account, "Acme TRY 50k" lira.
    following = items[index + 1] if index + 1 < len(items) else None
    return (
        item.text.isupper()
        and is_currency_code(item.text)
        and isinstance(following, _Word)
        and following.plain
        and bool(_AMOUNTISH_RE.match(following.text))
    )


def _read_amount(first: _Word, followers: Sequence[_Word], currency: str) -> tuple[Money, int]:
    """Return the amount starting at `first` and how many followers (a currency) it took."""
    if followers and not first.quoted:
        leading_code = is_currency_code(first.text.upper())
        trailing_code = is_currency_code(followers[0].text.upper())
        if leading_code or trailing_code:
            text = f"{first.text} {followers[0].text}"
            return parse_amount(text, default_currency=currency), 1
    return parse_amount(first.text, default_currency=currency), 0


def _deal_changes(
    items: Sequence[_Item], *, today: date, currency: str, form: str, allow_amount: bool
) -> DealChanges:
    """Return the changes the options in `items` ask for."""
    values: dict[str, Any] = {}
    contacts: list[ContactRef] = []
    seen: set[str] = set()
    index = 0
    while index < len(items):
        item = items[index]
        if isinstance(item, _Word):
            if allow_amount and _starts_amount(items, index):
                if "amount" in values:
                    raise CommandSyntaxError(
                        f"`{_clip(item.raw)}` is a second amount: give one, and quote an "
                        "account name that contains numbers.",
                        _usage(form),
                    )
                with _as_syntax_error(form):
                    money, used = _read_amount(item, _plain_followers(items, index, 1), currency)
                values["amount"] = money
                index += 1 + used
                continue
            if _starts_amount(items, index):
                raise CommandSyntaxError(
                    f"`{_clip(item.raw)}` is unexpected: set an amount with `amount:{item.text}`.",
                    _usage(form),
                )
            raise _unexpected(item, items[:index], form)
        key = item.key
        if key not in _DEAL_OPTIONS:
            raise _unknown_option(item, _DEAL_OPTIONS, form)
        if key in seen and key != "contact":
            raise CommandSyntaxError(f"`{key}:` is given twice; give it once.", _usage(form))
        if key == "amount" and "amount" in values:
            raise CommandSyntaxError("The amount is given twice; give it once.", _usage(form))
        seen.add(key)
        value = item.value
        if value is None or not value.text.strip():
            raise CommandSyntaxError(f"`{key}:` needs a value after the colon.", _usage(form))
        with _as_syntax_error(form):
            used = _apply_deal_option(
                item,
                value,
                items,
                index,
                (values, contacts),
                today=today,
                currency=currency,
                form=form,
            )
        index += 1 + used
    return DealChanges(contacts=tuple(contacts), **values)


def _apply_deal_option(
    option: _Option,
    value: _Word,
    items: Sequence[_Item],
    index: int,
    changes: tuple[dict[str, Any], list[ContactRef]],
    *,
    today: date,
    currency: str,
    form: str,
) -> int:
    """Return how many words after `items[index]` the option used, storing its value."""
    values, contacts = changes
    key = option.key
    field_name = _DEAL_OPTIONS[key]
    followers = _plain_followers(items, index, 3)
    used = 0
    if key == "close":
        values[field_name], used = _longest_reading(
            value, followers, lambda text: parse_date(text, today=today)
        )
    elif key == "stage":
        stage, used = _longest_reading(value, followers[:1], match_stage)
        values[field_name] = stage.key
    elif key == "forecast":
        values[field_name], used = _longest_reading(value, followers[:1], match_forecast)
    elif key == "amount":
        values[field_name], used = _read_amount(value, followers[:1], currency)
    elif key == "contact":
        contacts.append(_contact(value, key, form))
    elif key in ("buyer", "champion"):
        values[field_name] = _contact(value, key, form)
    elif key == "title":
        values[field_name] = _name([value], "title", form)
    else:
        values[field_name] = _free_text([value], f"`{key}:` text", form, limit=MAX_FREE_TEXT)
    return used


def _unexpected(word: _Word, before: Sequence[_Item], form: str) -> CommandSyntaxError:
    """Return the error for a stray word, hinting at quotes when it follows an option."""
    previous = before[-1] if before else None
    if isinstance(previous, _Option):
        return CommandSyntaxError(
            f"`{_clip(word.raw)}` after `{_clip(previous.raw)}` is unexpected: quote values "
            f'with spaces, like {previous.key}:"two words".',
            _usage(form),
        )
    return CommandSyntaxError(f"`{_clip(word.raw)}` is unexpected here.", _usage(form))


def _unknown_option(option: _Option, valid: Sequence[str], form: str) -> CommandSyntaxError:
    """Return the error for an option key the command does not take, naming the valid ones."""
    close = difflib.get_close_matches(option.key, list(valid), n=1)
    hint = f"did you mean `{close[0]}:`? " if close else ""
    shown = " ".join(f"{key}:" for key in valid) or "none"
    return CommandSyntaxError(
        f"`{option.key}:` is not an option here; {hint}options: {shown}.", _usage(form)
    )


# --- /nextstep -------------------------------------------------------------------------

_NEXTSTEP_OPTIONS: Final = ("due", "owner")


def parse_nextstep(text: str, *, today: date) -> NextStepCommand:
    """Return the `/nextstep` command `text` asks for.

    Raises CommandSyntaxError (and nothing else) when the text is not a valid `/nextstep`.
    """
    return _guarded("/nextstep", lambda: _parse_nextstep(text, today=today))


def _parse_nextstep(text: str, *, today: date) -> NextStepCommand:
    """Return the `/nextstep` command of `text`; the body of parse_nextstep."""
    form = "/nextstep"
    words = _words(_prepare(text, form), form)
    if not words:
        return NextStepHelp()
    keyword = _keyword(words[0])
    if keyword == "help" and len(words) == 1:
        return NextStepHelp()
    if keyword == "done":
        done_form = "/nextstep done"
        if len(words) == 1:
            raise CommandSyntaxError("Say which deal's next step is done.", _usage(done_form))
        if len(words) > 2:
            raise CommandSyntaxError(
                f"`{_clip(' '.join(w.raw for w in words[2:]))}` is extra: give just the deal "
                "(quote names with spaces).",
                _usage(done_form),
            )
        return CompleteNextStep(_deal_ref(words[1:2], done_form))

    deal = _deal_ref(words[:1], form)
    items = _items(words[1:], frozenset(_NEXTSTEP_OPTIONS))
    what_words: list[_Word] = []
    due: date | None = None
    owner: UserRef | None = None
    seen: set[str] = set()
    index = 0
    while index < len(items):
        item = items[index]
        if isinstance(item, _Word):
            what_words.append(item)
            index += 1
            continue
        if item.key in seen:
            raise CommandSyntaxError(f"`{item.key}:` is given twice; give it once.", _usage(form))
        seen.add(item.key)
        if item.value is None or not item.value.text.strip():
            raise CommandSyntaxError(f"`{item.key}:` needs a value after the colon.", _usage(form))
        used = 0
        if item.key == "due":
            with _as_syntax_error(form):
                due, used = _longest_reading(
                    item.value,
                    _plain_followers(items, index, 3),
                    lambda text: parse_date(text, today=today),
                )
        else:
            owner = _user(item.value, form)
        index += 1 + used
    what = _free_text(what_words, "next step", form, limit=MAX_NEXT_STEP)
    if what is None:
        raise CommandSyntaxError(
            f"Say what the next step on `{_clip(words[0].raw)}` is, after the deal name.",
            _usage(form),
        )
    return AddNextStep(deal, what, due, owner)


# --- /pipeline -------------------------------------------------------------------------


def parse_pipeline(text: str) -> PipelineQuery:
    """Return whose pipeline `/pipeline` asks for: `me` (the default), a team, or a user.

    Raises CommandSyntaxError (and nothing else) otherwise.
    """
    return _guarded("/pipeline", lambda: _parse_pipeline(text))


def _parse_pipeline(text: str) -> PipelineQuery:
    """Return the query of `text`; the body of parse_pipeline."""
    form = "/pipeline"
    words = _words(_prepare(text, form), form)
    if not words:
        return PipelineQuery("me")
    keyword = _keyword(words[0])
    if keyword == "me" and len(words) == 1:
        return PipelineQuery("me")
    if keyword == "team":
        if len(words) > 2:
            raise CommandSyntaxError(
                f"`{_clip(' '.join(w.raw for w in words[1:]))}` is more than one team name: "
                "quote names with spaces.",
                _usage(form),
            )
        name = _name(words[1:2], "team name", form) if len(words) == 2 else None
        return PipelineQuery("team", name)
    if len(words) == 1 and len(words[0].pieces) == 1 and words[0].pieces[0].kind == "user":
        return PipelineQuery(UserRef(words[0].pieces[0].value))
    raise CommandSyntaxError(
        f"`{_clip(_as_typed(text))}` is not a pipeline: use `me`, `team`, `team <name>` or "
        "an @user.",
        _usage(form),
    )


# --- /dealbot --------------------------------------------------------------------------


def parse_dealbot(text: str, *, today: date, default_currency: str = "USD") -> DealbotCommand:
    """Return the `/dealbot` admin command `text` asks for.

    Raises CommandSyntaxError (and nothing else) when the text is not a valid `/dealbot`.
    """
    return _guarded(
        "/dealbot", lambda: _parse_dealbot(text, today=today, currency=default_currency)
    )


def _parse_dealbot(text: str, *, today: date, currency: str) -> DealbotCommand:
    """Return the `/dealbot` command of `text`; the body of parse_dealbot."""
    words = _words(_prepare(text, "/dealbot"), "/dealbot")
    if not words or (_keyword(words[0]) == "help" and len(words) == 1):
        return DealbotHelp()
    if _keyword(words[0]) != "team":
        raise CommandSyntaxError(
            f"`{_clip(words[0].raw)}` is not a /dealbot command: try `help` or `team`.",
            _usages("/dealbot "),
        )
    action = _keyword(words[1]) if len(words) > 1 else None
    rest = words[2:]
    if action == "create":
        return _parse_team_create(rest)
    if action == "add":
        return _parse_team_add(rest)
    if action == "remove":
        return _parse_team_remove(rest)
    if action == "move":
        return _parse_team_move(rest)
    if action == "list":
        if rest:
            raise CommandSyntaxError(
                f"`{_clip(' '.join(w.raw for w in rest))}` is extra: `team list` takes nothing.",
                _usage("/dealbot team list"),
            )
        return TeamList()
    if action == "quota":
        return _parse_team_quota(rest, today=today, currency=currency)
    if action == "show":
        if len(rest) > 1:
            raise CommandSyntaxError(
                f"`{_clip(' '.join(w.raw for w in rest))}` is more than one team name: "
                "quote names with spaces.",
                _usage("/dealbot team show"),
            )
        return TeamShow(_team_name(rest[0], "/dealbot team show") if rest else None)
    shown = f"`team {_clip(words[1].raw)}` is not" if len(words) > 1 else "`team` needs"
    raise CommandSyntaxError(
        f"{shown} a team command: use create, add, remove, move, list, quota or show.",
        _usages("/dealbot team"),
    )


def _team_name(word: _Word, form: str) -> str:
    """Return a team name: one word or a quoted name."""
    return _name([word], "team name", form)


def _options_only(
    items: Sequence[_Item], keys: Sequence[str], form: str
) -> tuple[list[_Word], dict[str, _Word]]:
    """Return the positional words and the options (each at most once) of `items`."""
    words: list[_Word] = []
    options: dict[str, _Word] = {}
    for item in items:
        if isinstance(item, _Word):
            words.append(item)
            continue
        if item.key not in keys:
            raise _unknown_option(item, keys, form)
        if item.key in options:
            raise CommandSyntaxError(f"`{item.key}:` is given twice; give it once.", _usage(form))
        if item.value is None or not item.value.text.strip():
            raise CommandSyntaxError(f"`{item.key}:` needs a value after the colon.", _usage(form))
        options[item.key] = item.value
    return words, options


def _parse_team_create(words: Sequence[_Word]) -> TeamCreate:
    """Return `team create <name> <#channel> [tz:<zone>]`."""
    form = "/dealbot team create"
    positional, options = _options_only(_items(words, None), ("tz",), form)
    if len(positional) < 2:
        raise CommandSyntaxError("Give the team a name and a #channel.", _usage(form))
    if len(positional) > 2:
        raise CommandSyntaxError(
            f"`{_clip(' '.join(w.raw for w in positional[2:]))}` is extra: quote team names "
            "with spaces.",
            _usage(form),
        )
    name = _team_name(positional[0], form)
    channel_word = positional[1]
    pieces = channel_word.pieces
    if len(pieces) != 1 or pieces[0].kind != "channel":
        raise CommandSyntaxError(
            f"`{_clip(channel_word.raw)}` is not a Slack channel: pick it from the # menu.",
            _usage(form),
        )
    channel = ChannelRef(pieces[0].value, pieces[0].label)
    zone = options["tz"].text.strip() if "tz" in options else None
    if zone is not None and not _is_time_zone(zone):
        raise CommandSyntaxError(
            f"`{_clip(zone)}` is not an IANA time zone like `Europe/Paris`.", _usage(form)
        )
    return TeamCreate(name, channel, zone)


def _is_time_zone(name: str) -> bool:
    """Return whether `name` is an IANA zone this machine knows."""
    if len(name) > 64 or not _ZONE_RE.match(name):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except Exception:
        # ZoneInfo raises KeyError, ValueError or OSError depending on how the name is bad.
        return False
    return True


def _parse_team_add(words: Sequence[_Word]) -> TeamAdd:
    """Return `team add <name> rep|manager <@user> [<@user> …]`."""
    form = "/dealbot team add"
    if len(words) < 3:
        raise CommandSyntaxError(
            "Give the team name, `rep` or `manager`, and at least one @user.", _usage(form)
        )
    name = _team_name(words[0], form)
    role_text = _keyword(words[1])
    roles: dict[str | None, Literal["rep", "manager"]] = {
        "rep": "rep",
        "reps": "rep",
        "manager": "manager",
        "managers": "manager",
    }
    role = roles.get(role_text)
    if role is None:
        raise CommandSyntaxError(
            f"`{_clip(words[1].raw)}` is not a role: use `rep` or `manager`.", _usage(form)
        )
    users = tuple(dict.fromkeys(_user(word, form) for word in words[2:]))
    return TeamAdd(name, role, users)


def _parse_team_remove(words: Sequence[_Word]) -> TeamRemove:
    """Return `team remove <name> <@user>`."""
    form = "/dealbot team remove"
    if len(words) != 2:
        raise CommandSyntaxError("Give the team name and one @user.", _usage(form))
    return TeamRemove(_team_name(words[0], form), _user(words[1], form))


def _parse_team_move(words: Sequence[_Word]) -> TeamMove:
    """Return `team move <@user> <name>`."""
    form = "/dealbot team move"
    if len(words) != 2:
        raise CommandSyntaxError("Give one @user and the team to move them to.", _usage(form))
    return TeamMove(_user(words[0], form), _team_name(words[1], form))


def _parse_team_quota(words: Sequence[_Word], *, today: date, currency: str) -> TeamQuota:
    """Return `team quota <name> <@user> <amount> [period:<2026-Q4>]`."""
    form = "/dealbot team quota"
    items = _items(words, None)
    positional: list[_Word] = []
    period = quarter_of(today)
    period_given = False
    index = 0
    while index < len(items):
        item = items[index]
        index += 1
        if isinstance(item, _Word):
            positional.append(item)
            continue
        if item.key != "period":
            raise _unknown_option(item, ("period",), form)
        if period_given:
            raise CommandSyntaxError("`period:` is given twice; give it once.", _usage(form))
        if item.value is None or not item.value.text.strip():
            raise CommandSyntaxError("`period:` needs a quarter like 2026-Q4.", _usage(form))
        with _as_syntax_error(form):
            # `period:Q4 2026` arrives as two words.
            (start, _), used = _longest_reading(
                item.value, _plain_followers(items, index - 1, 1), parse_period
            )
        period, period_given = quarter_of(start), True
        index += used
    if len(positional) < 3:
        raise CommandSyntaxError("Give the team name, an @user and the quota amount.", _usage(form))
    name = _team_name(positional[0], form)
    user = _user(positional[1], form)
    with _as_syntax_error(form):
        money, used = _read_amount(positional[2], positional[3:4], currency)
    if len(positional) > 3 + used:
        raise CommandSyntaxError(
            f"`{_clip(' '.join(w.raw for w in positional[3 + used :]))}` is extra.",
            _usage(form),
        )
    return TeamQuota(name, user, money, period)
