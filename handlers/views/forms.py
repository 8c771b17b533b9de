"""Reading a submitted modal: its private metadata and its values, trusted once checked."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

# The context key under which a submission hands its confirmation to its lazy listener.
CONFIRMATION = "dealbot_confirmation"


def form_metadata(view: dict[str, Any]) -> dict[str, Any] | None:
    """Return the form's private_metadata as a JSON object, or None if it is not one.

    We wrote it when we opened the form, so anything else is a forged or stale form.
    """
    raw = view.get("private_metadata") or "{}"
    try:
        metadata = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return metadata if isinstance(metadata, dict) else None


def metadata_deal_id(view: dict[str, Any]) -> int | None:
    """Return the positive deal id in the form's private_metadata, or None if there is none."""
    deal_id = (form_metadata(view) or {}).get("deal_id")
    # bool is an int to Python, and a deal id only ever arrives as a JSON integer.
    if isinstance(deal_id, bool) or not isinstance(deal_id, int) or deal_id <= 0:
        return None
    return deal_id


def text_value(values: dict[str, Any], block_id: str) -> str | None:
    value = values.get(block_id, {}).get("value", {}).get("value")
    if not isinstance(value, str):
        return None
    return value.strip() or None


def selected_value(values: dict[str, Any], block_id: str) -> str | None:
    option = values.get(block_id, {}).get("value", {}).get("selected_option")
    return option.get("value") if isinstance(option, dict) else None


def date_value(values: dict[str, Any], block_id: str) -> dt.date | None:
    """Return the picked date, None if none was picked; ValueError if it is no real date.

    Slack's date picker sends YYYY-MM-DD, but a forged form may send anything.
    """
    picked = values.get(block_id, {}).get("value", {}).get("selected_date")
    if not picked:
        return None
    if not isinstance(picked, str):
        raise ValueError(f"not a date: {picked!r}")
    day = dt.date.fromisoformat(picked)
    # Year 1 or 9999 passes fromisoformat but overflows any arithmetic on the date.
    if not MIN_PICKED_YEAR <= day.year <= MAX_PICKED_YEAR:
        raise ValueError(f"date out of range: {picked}")
    return day


MIN_PICKED_YEAR, MAX_PICKED_YEAR = 1900, 2999
