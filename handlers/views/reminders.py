"""The reminder's "log next step" modal submission."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from domain.changes import DealRef
from domain.errors import DomainError
from handlers import blocks, messages, reminder_blocks
from handlers.views import _date, _text

if TYPE_CHECKING:
    from bot.app import Services

logger = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.view(reminder_blocks.LOG_STEP_VIEW)
    def submit_next_step(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        user_id = body["user"]["id"]
        values = view["state"]["values"]
        what = _text(values, "what")
        if not what:
            ack(response_action="errors", errors={"what": "Say what happens next."})
            return
        try:
            deal_id = int(json.loads(view.get("private_metadata") or "{}")["deal_id"])
            due = _date(values, "due")
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
        except (KeyError, ValueError, TypeError):
            ack(response_action="errors", errors={"what": messages.FORM_EXPIRED})
            return
        ack()
        reply = blocks.next_step_added(deal, services.deals.today_for(user_id))
        try:
            client.chat_postMessage(channel=user_id, text=reply.text, blocks=reply.block_dicts())
        except SlackApiError as error:
            logger.info("next step confirmation not sent: %s", error.response.get("error"))
