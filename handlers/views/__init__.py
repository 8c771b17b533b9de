"""Modal submissions: the new-deal form and the post-mortem form."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from domain.changes import DealChanges
from domain.errors import DomainError
from domain.money import InvalidAmount, parse_amount
from domain.names import InvalidName, clean_name
from domain.stages import FORECAST_CATEGORIES
from handlers import blocks, messages

if TYPE_CHECKING:
    from bot.app import Services

logger = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    from handlers.views import reminders

    reminders.register(app, services)

    def submit_new_deal(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        user_id = body["user"]["id"]
        values = view["state"]["values"]
        # Read before anything is written: a form we cannot trust saves nothing.
        metadata = form_metadata(view)
        if metadata is None:
            ack(response_action="errors", errors={"account": messages.FORM_EXPIRED})
            return
        channel_id = metadata.get("channel_id")
        errors: dict[str, str] = {}
        try:
            account = clean_name(_text(values, "account") or "", what="account")
        except InvalidName as refusal:
            account, errors["account"] = "", refusal.problem[:150]
        if not account and "account" not in errors:
            errors["account"] = "Name the account, e.g. Initech."
        amount = None
        amount_text = _text(values, "amount")
        if amount_text:
            try:
                amount = parse_amount(
                    amount_text, default_currency=services.settings.dealbot_currency
                )
            except InvalidAmount as error:
                errors["amount"] = f"{error} Try 50k, $1.2M or €40,000."
        stage = _selected(values, "stage")
        forecast = _selected(values, "forecast")
        if forecast is not None and forecast not in FORECAST_CATEGORIES:
            errors["forecast"] = "Pick a forecast category from the list."
        try:
            close_date = _date(values, "close_date")
        except ValueError:
            errors["close_date"] = messages.PICK_A_REAL_DATE
            close_date = None
        if errors:
            ack(response_action="errors", errors=errors)
            return
        changes = DealChanges(stage=stage, amount=amount, close_date=close_date, forecast=forecast)
        try:
            deal = services.deals.create_deal(services.actor(user_id), account, changes)
        except DomainError as error:
            ack(response_action="errors", errors={"account": error.problem[:150]})
            return
        reply = blocks.deal_created(deal, services.deals.today_for(user_id))
        # Handed to the lazy listener: Slack hears the ack now, the rep the reply after.
        context[CONFIRMATION] = {
            "channel_id": channel_id if isinstance(channel_id, str) else None,
            "text": reply.text,
            "blocks": reply.block_dicts(),
        }
        ack()

    def confirm_new_deal(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        confirmation = context.get(CONFIRMATION)
        if confirmation is None:
            return
        _tell(client, user_id=body["user"]["id"], **confirmation)

    app.view(blocks.NEW_DEAL_VIEW)(ack=submit_new_deal, lazy=[confirm_new_deal])

    @app.view(blocks.POST_MORTEM_VIEW)
    def submit_post_mortem(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        values = view["state"]["values"]
        deal_id = metadata_deal_id(view)
        if deal_id is None:
            ack(response_action="errors", errors={"reason": messages.FORM_EXPIRED})
            return
        reason = (_text(values, "reason") or "").strip()
        if not reason:
            ack(response_action="errors", errors={"reason": "Say in a few words what decided it."})
            return
        try:
            services.deals.record_post_mortem(
                services.actor(user_id),
                deal_id,
                primary_reason=reason,
                competitor=_text(values, "competitor"),
                lessons=_text(values, "lessons"),
            )
        except DomainError as error:
            ack(response_action="errors", errors={"reason": error.problem[:150]})
            return
        ack()


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


def _text(values: dict[str, Any], block_id: str) -> str | None:
    value = values.get(block_id, {}).get("value", {}).get("value")
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _selected(values: dict[str, Any], block_id: str) -> str | None:
    option = values.get(block_id, {}).get("value", {}).get("selected_option")
    return option.get("value") if isinstance(option, dict) else None


def _date(values: dict[str, Any], block_id: str) -> dt.date | None:
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


def _tell(
    client: WebClient,
    *,
    user_id: str,
    channel_id: str | None,
    text: str,
    blocks: list[dict[str, Any]],
) -> None:
    """Show the user a private confirmation where they opened the form, else in a DM.

    Runs after the ack, so a slow or failing Slack costs the rep only the confirmation.
    """
    try:
        if channel_id:
            client.chat_postEphemeral(channel=channel_id, user=user_id, text=text, blocks=blocks)
            return
    except SlackApiError as error:
        logger.info("ephemeral confirmation failed (%s); sending a DM", error.response.get("error"))
    try:
        client.chat_postMessage(channel=user_id, text=text, blocks=blocks)
    except SlackApiError as error:
        logger.warning("deal confirmation not delivered: %s", error.response.get("error"))
