"""Reminder buttons: log a next step (opens a modal), mark the step done, snooze a deal."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt import App, Respond
from slack_sdk import WebClient
from slack_sdk.models.views import View

from domain.dates import format_day
from domain.errors import DomainError
from domain.nudges import snooze_deal
from domain.views import DealView
from handlers import blocks, messages, reminder_blocks
from handlers.listeners import after_ack, button_refused, deal_on_button, open_deal_form
from handlers.listeners import respond_privately as _say

if TYPE_CHECKING:
    from bot.app import Services

logger = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    after_ack(app.action(reminder_blocks.LOG_STEP_ACTION), log_step, services)
    after_ack(app.action(reminder_blocks.MARK_DONE_ACTION), mark_done, services)
    after_ack(app.action(re.compile(f"^{reminder_blocks.SNOOZE_ACTION}_\\d+$")), snooze, services)


def log_step(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
) -> None:
    """Open the "log next step" modal for the reminder's deal, or say why it cannot open."""
    user_id = body["user"]["id"]

    def form(deal: DealView) -> View:
        today = services.deals.today_for(user_id)
        return reminder_blocks.log_step_modal(deal_id=deal.id, account=deal.name, today=today)

    open_deal_form(body, action, client, respond, services=services, form=form)


def mark_done(
    body: dict[str, Any], action: dict[str, Any], respond: Respond, *, services: Services
) -> None:
    """Mark the deal's next step done and confirm it privately."""
    user_id = body["user"]["id"]
    try:
        deal, step = services.deals.complete_next_step(
            services.actor(user_id), deal_on_button(action)
        )
    except (ValueError, DomainError) as error:
        _say(respond, button_refused(error))
        return
    _say(respond, blocks.next_step_done(deal, step, services.deals.today_for(user_id)))


def snooze(
    body: dict[str, Any], action: dict[str, Any], respond: Respond, *, services: Services
) -> None:
    """Snooze the deal for the button's days and confirm until when."""
    try:
        deal_text, days_text = str(action.get("value") or "").split(":")
        name, until = snooze_deal(
            deals=services.deals,
            database=services.database,
            clock=services.clock,
            actor=services.actor(body["user"]["id"]),
            deal_id=int(deal_text),
            days=int(days_text),
        )
    except DomainError as error:
        problem, _ = messages.refusal(error)
        _say(respond, blocks.error_reply(problem))
        return
    except ValueError:
        _say(respond, blocks.error_reply(messages.BUTTON_EXPIRED))
        return
    _say(
        respond,
        reminder_blocks.confirmation(
            f"Snoozed *{blocks.escape_name(name)}*: no reminder about it until {format_day(until)}."
        ),
    )
