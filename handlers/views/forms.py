"""Reading a submitted modal (its private metadata and its values, trusted once checked),
and confirming it to the rep after the ack."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.blocks import Reply

logger = logging.getLogger(__name__)

# The context key under which a submission hands its confirmation to its lazy listener.
CONFIRMATION = "dealbot_confirmation"
# Dates a picker may send that any date arithmetic survives (a forged form sends any).
MIN_PICKED_YEAR, MAX_PICKED_YEAR = 1900, 2999


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


# A form error is one short line under its input; a longer domain refusal is cut to fit.
FIELD_ERROR_LIMIT = 150


def refuse_field(ack: Ack, block_id: str, problem: str) -> None:
    """Return once the submission is acked with `problem` under the input `block_id`.

    Slack keeps the form open with the rep's entries, so they fix the field and resubmit;
    nothing was saved.
    """
    ack(response_action="errors", errors={block_id: problem[:FIELD_ERROR_LIMIT]})


def hand_over_confirmation(
    context: BoltContext, reply: Reply, *, channel_id: str | None = None
) -> None:
    """Return once `reply` waits in `context` for the lazy listener `send_confirmation`.

    Slack hears the ack now, the rep the reply after: a submission's ack must not wait on
    another Web API call. `channel_id` is where the form was opened (None: a DM).
    """
    context[CONFIRMATION] = {
        "channel_id": channel_id,
        "text": reply.text,
        "blocks": reply.block_dicts(),
    }


def send_confirmation(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Return once the rep was shown the handed-over confirmation (after the ack), if any.

    Privately where they opened the form, else in a DM; a slow or failing Slack costs the
    rep only the confirmation, never what was saved.
    """
    confirmation = context.get(CONFIRMATION)
    if confirmation is None:
        return
    user_id, channel_id = body["user"]["id"], confirmation["channel_id"]
    text, blocks = confirmation["text"], confirmation["blocks"]
    try:
        if channel_id:
            client.chat_postEphemeral(channel=channel_id, user=user_id, text=text, blocks=blocks)
            return
    except SlackApiError as error:
        logger.info("ephemeral confirmation failed (%s); sending a DM", error.response.get("error"))
    try:
        client.chat_postMessage(channel=user_id, text=text, blocks=blocks)
    except SlackApiError as error:
        logger.warning("form confirmation not delivered: %s", error.response.get("error"))
