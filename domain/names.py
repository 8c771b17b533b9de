"""Names people type (accounts, deal titles, teams, contacts) made canonical, or refused.

Two names that look the same must be the same name: `Acme` typed on a Mac may arrive
decomposed, and `Acme` followed by an invisible zero-width space would otherwise become a
second Acme that nobody can tell apart or find. So a name is NFC-normalised, trimmed and
its inner whitespace collapsed, and a name holding an invisible character (zero-width
spaces and joiners, the word joiner, the byte-order mark) or a bidirectional override or
isolate (which make `Acme` display as something it is not) is refused, naming the
character so the rep can find it.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from domain.errors import DomainError

# Code point -> how the refusal names it (unicodedata.name gives Unicode's own names).
_INVISIBLE: Final[dict[int, str]] = {
    code: unicodedata.name(chr(code))
    for code in (
        *range(0x200B, 0x200E),  # zero width space, non-joiner, joiner
        0x2060,  # word joiner
        0xFEFF,  # zero width no-break space (byte-order mark)
        *range(0x202A, 0x202F),  # bidi embeddings and overrides
        *range(0x2066, 0x206A),  # bidi isolates
    )
}


class InvalidName(DomainError):
    """A name dealbot refuses to store; `problem` names the offending character."""


def hidden_characters(text: str) -> list[str]:
    """Return the invisible or direction-changing characters in `text`, as `U+200B NAME`."""
    found = dict.fromkeys(
        f"U+{ord(char):04X} {_INVISIBLE[ord(char)]}" for char in text if ord(char) in _INVISIBLE
    )
    return list(found)


def clean_name(text: str, *, what: str = "name") -> str:
    """Return `text` as a canonical name: NFC, trimmed, inner whitespace collapsed.

    Raises InvalidName when it holds an invisible or bidi-control character; `what` says
    which name it is ("account", "team name"…) so the refusal can name it.
    """
    name = " ".join(unicodedata.normalize("NFC", text).split())
    hidden = hidden_characters(name)
    if hidden:
        shown = ", ".join(hidden)
        raise InvalidName(
            f"The {what} contains an invisible character ({shown}); "
            "retype it without that character.",
            f"Type the {what} again by hand rather than pasting it.",
        )
    return name
