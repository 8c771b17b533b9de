"""Split the text of a slash command into words and options, exactly as Slack delivers it.

The manifest sets `should_escape: true`, so Slack sends mentions as `<@U123|jane>` or
`<@U123>`, channels as `<#C123|sales>`, `<#C123|>` or `<#C123>`, typed addresses as
`<mailto:peter@initech.com|peter@initech.com>`, links as `<http://x|x>`, and a literal
`&`, `<` or `>` the rep typed as `&amp;`, `&lt;`, `&gt;`. Double quotes group words, and
the smart quotes macOS types (“like this”) count as quotes.

Every problem is a `CommandSyntaxError` whose `usage` is the example of the right form; the
grammars (`handlers/commands/grammars/`) pass that example down, so this module knows no
command.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, TypeVar

from domain.dates import InvalidDate
from domain.money import InvalidAmount
from domain.stages import UnknownForecast, UnknownStage

logger = logging.getLogger(__name__)

# Slack caps command text well below this; the cap only bounds work on hostile input.
_MAX_COMMAND_TEXT: Final = 12_000


class CommandSyntaxError(Exception):
    """Command text dealbot cannot act on.

    `problem` is one short sentence quoting the offending bit; `usage` shows the right form.
    """

    def __init__(self, problem: str, usage: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage


@dataclass(frozen=True)
class Forms:
    """Examples per command form (`"/deal new"`: lines); the one source of help text."""

    examples: Mapping[str, tuple[str, ...]]

    def usage(self, form: str) -> str:
        """Return the example an error about `form` shows: its first."""
        return self.examples[form][0]

    def usages(self, prefix: str) -> str:
        """Return the first example of every form under `prefix`, one per line."""
        return "\n".join(
            lines[0] for form, lines in self.examples.items() if form.startswith(prefix)
        )

    def help_lines(self) -> tuple[str, ...]:
        """Return every example, in order: what `/dealbot help` lists for the command."""
        return tuple(line for lines in self.examples.values() for line in lines)


PieceKind: TypeAlias = Literal["text", "user", "channel", "email", "link"]


@dataclass(frozen=True)
class Piece:
    """A run of one word: decoded text, or one of Slack's `<…>` escapes."""

    kind: PieceKind
    value: str
    label: str | None = None
    quoted: bool = False


@dataclass(frozen=True)
class Word:
    """A whitespace-separated word (quotes may join several) and the text it came from.

    `raw` is that text as the rep typed it (see `_as_typed`), so problems can quote it.
    """

    pieces: tuple[Piece, ...]
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
class Option:
    """A `key:value` word; `value` is None when nothing followed the colon."""

    key: str
    value: Word | None
    raw: str


Item: TypeAlias = Word | Option

_OPEN_QUOTES: Final = frozenset('"“”„')
_CLOSE_QUOTES: Final = frozenset('"“”')
_ENTITY_RE: Final = re.compile(r"&(amp|lt|gt);")
_ENTITIES: Final = {"amp": "&", "lt": "<", "gt": ">"}
_USER_ID_RE: Final = re.compile(r"^[UW][A-Z0-9]{1,30}$")
_CHANNEL_ID_RE: Final = re.compile(r"^[CG][A-Z0-9]{1,30}$")
_OPTION_RE: Final = re.compile(r"^([A-Za-z][A-Za-z_]{0,30}):(.*)$", re.DOTALL)


def _unescape(text: str) -> str:
    """Return `text` with Slack's three HTML entities turned back into characters."""
    return _ENTITY_RE.sub(lambda match: _ENTITIES[match[1]], text)


def _render(piece: Piece) -> str:
    """Return a piece as plain text (mentions stay in Slack's canonical form)."""
    if piece.kind == "user":
        return f"<@{piece.value}>"
    if piece.kind == "channel":
        return f"<#{piece.value}>"
    if piece.kind == "link":
        return piece.label or piece.value
    return piece.value


def _escape_piece(inner: str, *, quoted: bool) -> Piece:
    """Return the piece for one `<…>` escape, given the text between the brackets."""
    target, _, label = inner.partition("|")
    label = _unescape(label)
    if target.startswith("@") and _USER_ID_RE.match(target[1:]):
        return Piece("user", target[1:], label or None, quoted)
    if target.startswith("#") and _CHANNEL_ID_RE.match(target[1:]):
        return Piece("channel", target[1:], label or None, quoted)
    if target.startswith("!"):
        # <!here>, <!subteam^S1|@sales>, <!date^…|fallback>: what the rep saw is the label.
        return Piece("text", label or "@" + target[1:].partition("^")[0], None, quoted)
    if target.lower().startswith("mailto:"):
        return Piece("email", _unescape(target[len("mailto:") :]), label or None, quoted)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", target):
        return Piece("link", _unescape(target), label or None, quoted)
    return Piece("text", "<" + _unescape(inner) + ">", None, quoted)


_SLACK_ESCAPE_RE: Final = re.compile(r"<([^<>]*)>")


def as_typed(source: str) -> str:
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


def split_words(text: str, usage: str) -> list[Word]:
    """Return the words of `text`, decoding escapes and honouring straight and smart quotes."""
    words: list[Word] = []
    pieces: list[Piece] = []
    buffer: list[str] = []
    start: int | None = None
    quote_start = -1
    pieces_at_quote = 0

    def flush(*, quoted: bool) -> None:
        if buffer:
            pieces.append(Piece("text", _unescape("".join(buffer)), quoted=quoted))
            buffer.clear()

    index = 0
    while index < len(text):
        char = text[index]
        in_quote = quote_start >= 0
        if in_quote and char in _CLOSE_QUOTES:
            flush(quoted=True)
            if len(pieces) == pieces_at_quote:
                pieces.append(Piece("text", "", quoted=True))
            quote_start = -1
            index += 1
            continue
        if not in_quote and char.isspace():
            flush(quoted=False)
            if start is not None:
                words.append(Word(tuple(pieces), as_typed(text[start:index])))
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
            f"The quote in `{clip(as_typed(text[quote_start:]))}` is never closed.",
            usage,
        )
    flush(quoted=False)
    if start is not None:
        words.append(Word(tuple(pieces), as_typed(text[start:])))
    return words


def _option_parts(word: Word) -> tuple[str, Word | None] | None:
    """Return the lower-cased key and the value of a `key:value` word, or None."""
    first = word.pieces[0] if word.pieces else None
    if first is None or first.kind != "text" or first.quoted:
        return None
    match = _OPTION_RE.match(first.value)
    if match is None:
        return None
    key, rest = match[1], match[2]
    pieces = ((Piece("text", rest),) if rest else ()) + word.pieces[1:]
    value = Word(pieces, word.raw[len(key) + 1 :]) if pieces else None
    return key.lower(), value


def pick_options(words: Sequence[Word], known: frozenset[str] | None) -> list[Item]:
    """Return words with options picked out.

    With `known` None every `word:` is an option (so a typo is reported, not swallowed);
    otherwise only those keys are, and `re: pricing` in free text stays text.
    """

    def option_parts(word: Word) -> tuple[str, Word | None] | None:
        parts = _option_parts(word)
        if parts is None or (known is not None and parts[0] not in known):
            return None
        return parts

    items: list[Item] = []
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
        items.append(Option(key, value, raw))
    return items


def clip(text: str, limit: int = 40) -> str:
    """Return `text` short enough to quote in a one-line problem."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prepare(text: str | None, usage: str) -> str:
    """Return the command text ready to split, or raise on control characters."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > _MAX_COMMAND_TEXT:
        raise CommandSyntaxError("That command is too long.", usage)
    for char in text:
        if char not in "\n\t" and unicodedata.category(char) == "Cc":
            raise CommandSyntaxError(
                f"The text contains a control character (U+{ord(char):04X}); retype it.",
                usage,
            )
    return text


Result = TypeVar("Result")


def guarded(command: str, usage: str, parse: Callable[[], Result]) -> Result:
    """Return `parse()`, turning any failure into CommandSyntaxError.

    The parsers convert every expected failure themselves; this net exists so that a bug
    shows the rep a polite line (and the log a traceback) rather than a dead command.
    """
    try:
        return parse()
    except CommandSyntaxError:
        raise
    except DOMAIN_ERRORS as exc:
        raise CommandSyntaxError(str(exc), usage) from exc
    except Exception as exc:
        logger.exception("Unexpected failure parsing a %s command", command)
        raise CommandSyntaxError("dealbot could not read that command.", usage) from exc


DOMAIN_ERRORS: Final = (InvalidAmount, InvalidDate, UnknownStage, UnknownForecast)


@contextmanager
def as_syntax_error(usage: str) -> Iterator[None]:
    """Yield, re-raising the domain's value errors as CommandSyntaxError showing `usage`."""
    try:
        yield
    except DOMAIN_ERRORS as exc:
        raise CommandSyntaxError(str(exc), usage) from exc


def keyword_of(word: Word) -> str | None:
    """Return the lower-cased word if it could be a sub-command (unquoted text)."""
    return word.text.lower() if word.plain else None
