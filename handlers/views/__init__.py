"""Modal submissions: the new-deal form and the post-mortem form."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
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

    @app.view(blocks.NEW_DEAL_VIEW)
    def submit_new_deal(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        user_id = body["user"]["id"]
        values = view["state"]["values"]
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
        close_date = _date(values, "close_date")
        if errors:
            ack(response_action="errors", errors=errors)
            return
        changes = DealChanges(stage=stage, amount=amount, close_date=close_date, forecast=forecast)
        try:
            deal = services.deals.create_deal(services.actor(user_id), account, changes)
        except DomainError as error:
            ack(response_action="errors", errors={"account": error.problem[:150]})
            return
        ack()
        today = services.deals.today_for(user_id)
        reply = blocks.deal_created(deal, today)
        channel_id = json.loads(view.get("private_metadata") or "{}").get("channel_id")
        _tell(client, user_id=user_id, channel_id=channel_id, reply=reply)

    @app.view(blocks.POST_MORTEM_VIEW)
    def submit_post_mortem(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        values = view["state"]["values"]
        reason = (_text(values, "reason") or "").strip()
        if not reason:
            ack(response_action="errors", errors={"reason": "Say in a few words what decided it."})
            return
        try:
            deal_id = int(json.loads(view.get("private_metadata") or "{}")["deal_id"])
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
        except (KeyError, ValueError, TypeError):
            ack(
                response_action="errors",
                errors={"reason": messages.FORM_EXPIRED},
            )
            return
        ack()


def _text(values: dict[str, Any], block_id: str) -> str | None:
    value = values.get(block_id, {}).get("value", {}).get("value")
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _selected(values: dict[str, Any], block_id: str) -> str | None:
    option = values.get(block_id, {}).get("value", {}).get("selected_option")
    return option.get("value") if isinstance(option, dict) else None


def _date(values: dict[str, Any], block_id: str) -> dt.date | None:
    picked = values.get(block_id, {}).get("value", {}).get("selected_date")
    return dt.date.fromisoformat(picked) if picked else None


def _tell(client: WebClient, *, user_id: str, channel_id: str | None, reply: blocks.Reply) -> None:
    """Show the user a private confirmation where they opened the form, else in a DM."""
    try:
        if channel_id:
            client.chat_postEphemeral(
                channel=channel_id, user=user_id, text=reply.text, blocks=reply.block_dicts()
            )
            return
    except SlackApiError as error:
        logger.info("ephemeral confirmation failed (%s); sending a DM", error.response.get("error"))
    client.chat_postMessage(channel=user_id, text=reply.text, blocks=reply.block_dicts())
