"""The reminder's "log next step" modal submission."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext

from domain.changes import DealRef
from domain.errors import DomainError
from handlers import blocks, messages, reminder_blocks
from handlers.listeners import with_services
from handlers.views.forms import (
    date_value,
    hand_over_confirmation,
    metadata_deal_id,
    refuse_field,
    send_confirmation,
    text_value,
)

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    app.view(reminder_blocks.LOG_STEP_VIEW)(
        ack=with_services(submit_next_step, services), lazy=[send_confirmation]
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
        refuse_field(ack, "what", messages.FORM_EXPIRED)
        return
    what = text_value(values, "what")
    if not what:
        refuse_field(ack, "what", "Say what happens next.")
        return
    try:
        due = date_value(values, "due")
    except ValueError:
        refuse_field(ack, "due", messages.PICK_A_REAL_DATE)
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
        refuse_field(ack, "due", messages.refusal(error)[0])
        return
    hand_over_confirmation(context, blocks.next_step_added(deal, services.deals.today_for(user_id)))
    ack()
