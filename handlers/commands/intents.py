"""A parsed command about a deal as a button's value, and back, without reading user text again.

A pick-a-deal button carries what the rep asked, already parsed: the command, the kind of
intent (`UpdateDeal`), its arguments (the changes, the reason, the next step) and the deal
the button picks. A click rebuilds that intent from plain JSON values; nothing the rep typed
is parsed a second time, so a click means what the command meant when it was typed (even a
relative date like `close:eoq`). The value is compact JSON: fields left at their default are
left out, and non-ASCII text is kept as it is rather than escaped six characters a letter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import types
import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

from domain.changes import DealRef
from handlers.commands.values import OnDeal

_T = TypeVar("_T")

# The keys of a button's value; anything else is not ours.
_NEEDED: Final = frozenset({"command", "intent", "deal_id"})
_KEYS: Final = _NEEDED | {"args"}
# Errors a forged, stale or mistyped value raises while it is rebuilt.
_UNREADABLE: Final = (TypeError, ValueError, KeyError, InvalidOperation)


def to_button_value(command: str, intent: OnDeal) -> str:
    """Return the JSON a button carries to run `intent`, its deal named by id, as `command`."""
    if intent.deal.deal_id is None:
        raise ValueError("a button names its deal by id")
    value: dict[str, Any] = {
        "command": command,
        "intent": type(intent).__name__,
        "deal_id": intent.deal.deal_id,
    }
    args = _encode_fields(intent, skip="deal")
    if args:
        value["args"] = args
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def from_button_value(
    value: str | None, kinds: Mapping[str, Sequence[type[OnDeal]]]
) -> tuple[str, OnDeal] | None:
    """Return the (command, intent) a button's value carries, or None when it is not ours.

    `kinds` are the intents each command may carry. A value naming another command or kind,
    or whose arguments do not rebuild that kind exactly, is not ours: forged, or from an
    older dealbot (which carried the command's text).
    """
    try:
        carried = json.loads(value or "")
        if not isinstance(carried, dict) or not _NEEDED <= set(carried) <= _KEYS:
            return None
        command, name, deal_id = carried["command"], carried["intent"], carried["deal_id"]
        kind = next((k for k in kinds.get(command, ()) if k.__name__ == name), None)
        if kind is None or type(deal_id) is not int or deal_id < 1:
            return None
        args = carried.get("args", {})
        if not isinstance(args, dict) or "deal" in args:
            return None
        intent = _decode_dataclass(kind, args, given={"deal": DealRef(None, deal_id)})
    except _UNREADABLE:
        return None
    return command, intent


def _encode_fields(value: object, *, skip: str | None = None) -> dict[str, Any]:
    """Return a dataclass's fields as JSON values, leaving out those at their default."""
    encoded: dict[str, Any] = {}
    for field in dataclasses.fields(value):  # type: ignore[arg-type]
        if field.name == skip:
            continue
        current = getattr(value, field.name)
        if field.default is not dataclasses.MISSING and current == field.default:
            continue
        encoded[field.name] = _encode(current)
    return encoded


def _encode(value: object) -> Any:
    """Return `value` as a JSON value `_decode` rebuilds from its type hint."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_fields(value)
    raise TypeError(f"a button cannot carry {type(value).__name__}")


def _decode_dataclass(kind: type[_T], raw: object, *, given: Mapping[str, Any] = {}) -> _T:
    """Return a `kind` rebuilt from its encoded fields; raises on anything but exactly those."""
    if not isinstance(raw, dict):
        raise TypeError(f"{kind.__name__} is not an object")
    hints = typing.get_type_hints(kind)
    names = {field.name for field in dataclasses.fields(kind)}  # type: ignore[arg-type]
    if set(raw) - names or set(raw) & set(given):
        raise ValueError(f"{kind.__name__} has other fields")
    values = {name: _decode(item, hints[name]) for name, item in raw.items()}
    return kind(**values, **given)


def _decode(raw: object, hint: Any) -> Any:
    """Return the value of type `hint` that `_encode` turned into `raw`."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if raw is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) != 1:
            raise TypeError(f"a button cannot carry {hint}")
        return _decode(raw, options[0])
    if origin is tuple:
        item_hint, ellipsis = typing.get_args(hint)
        if ellipsis is not Ellipsis or not isinstance(raw, list):
            raise TypeError(f"{raw!r} is not a {hint}")
        return tuple(_decode(item, item_hint) for item in raw)
    if hint in (bool, int, str):
        if type(raw) is not hint:
            raise TypeError(f"{raw!r} is not a {hint.__name__}")
        return raw
    if hint is dt.date and isinstance(raw, str):
        return dt.date.fromisoformat(raw)
    if hint is Decimal and isinstance(raw, str):
        return Decimal(raw)
    if dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, raw)
    raise TypeError(f"{raw!r} is not a {hint}")
