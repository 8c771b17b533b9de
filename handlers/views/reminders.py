"""The reminder's "log next step" modal submission."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from domain.changes import DealRef
from domain.errors import DomainError
from handlers import blocks, messages, reminder_blocks
from handlers.listeners import with_services
from handlers.views.forms import CONFIRMATION, date_value, metadata_deal_id, text_value

if TYPE_CHECKING:
    from bot.app import Services

logger = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    app.view(reminder_blocks.LOG_STEP_VIEW)(
        ack=with_services(submit_next_step, services), lazy=[confirm_next_step]
    )


def submit_next_step(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    context: BoltContext,
    *,
    services: Services,
) -> None:
    """Ack the "log next step" form: its errors, or the step saved on the deal."""
    user_id = body["user"]["id"]
    values = view["state"]["values"]
    deal_id = metadata_deal_id(view)
    if deal_id is None:
        ack(response_action="errors", errors={"what": messages.FORM_EXPIRED})
        return
    what = text_value(values, "what")
    if not what:
        ack(response_action="errors", errors={"what": "Say what happens next."})
        return
    try:
        due = date_value(values, "due")
    except ValueError:
        ack(response_action="errors", errors={"due": messages.PICK_A_REAL_DATE})
        return
    try:
        deal = services.deals.add_next_step(
            services.actor(user_id),
            DealRef(name=None, deal_id=deal_id),
            what=what[:500],
            due=due,
            owner_id=None,
        )
    except DomainError as error:
        ack(response_action="errors", errors={"due": error.problem[:150]})
        return
    reply = blocks.next_step_added(deal, services.deals.today_for(user_id))
    # Handed to the lazy listener: Slack hears the ack now, the rep the reply after.
    context[CONFIRMATION] = {"text": reply.text, "blocks": reply.block_dicts()}
    ack()


def confirm_next_step(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """DM the rep the saved next step (after the ack)."""
    confirmation = context.get(CONFIRMATION)
    if confirmation is None:
        return
    try:
        client.chat_postMessage(channel=body["user"]["id"], **confirmation)
    except SlackApiError as error:
        logger.info("next step confirmation not sent: %s", error.response.get("error"))
