"""Modal submissions: the new-deal form and the post-mortem form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext

from domain.changes import DealChanges, DealRef
from domain.deals import CommitNeedsEvidence, DuplicateDeal
from domain.errors import DomainError
from domain.money import InvalidAmount, parse_amount
from domain.names import InvalidName, clean_name
from domain.stages import FORECAST_CATEGORIES
from handlers import blocks, messages
from handlers.commands.grammars.deal import CreateAnother
from handlers.commands.intents import to_button_value
from handlers.listeners import with_services
from handlers.views import reminders
from handlers.views.forms import (
    FIELD_ERROR_LIMIT,
    date_value,
    form_metadata,
    hand_over_confirmation,
    metadata_deal_id,
    refuse_field,
    selected_value,
    send_confirmation,
    text_value,
)

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    reminders.register(app, services)
    app.view(blocks.NEW_DEAL_VIEW)(
        ack=with_services(submit_new_deal, services), lazy=[send_confirmation]
    )
    app.view(blocks.POST_MORTEM_VIEW)(with_services(submit_post_mortem, services))


def submit_new_deal(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    context: BoltContext,
    *,
    services: Services,
) -> None:
    """Ack the new-deal form: its errors, or a saved deal whose confirmation follows.

    An account that already has an open deal is asked about as `/deal new` asks, in the
    confirmation's place: the form closes and a private Create / Cancel question follows,
    its button carrying what the rep filled in. A field error could only say "type /deal
    new" and lose the form; a submission's ack cannot carry a button.
    """
    user_id = body["user"]["id"]
    values = view["state"]["values"]
    # Read before anything is written: a form we cannot trust saves nothing.
    metadata = form_metadata(view)
    if metadata is None:
        refuse_field(ack, "account", messages.FORM_EXPIRED)
        return
    channel_id = metadata.get("channel_id")
    errors: dict[str, str] = {}
    try:
        account = clean_name(text_value(values, "account") or "", what="account")
    except InvalidName as refusal:
        account, errors["account"] = "", refusal.problem[:FIELD_ERROR_LIMIT]
    if not account and "account" not in errors:
        errors["account"] = "Name the account, e.g. Initech."
    amount = None
    amount_text = text_value(values, "amount")
    if amount_text:
        try:
            amount = parse_amount(amount_text, default_currency=services.settings.dealbot_currency)
        except InvalidAmount as error:
            errors["amount"] = f"{error} Try 50k, $1.2M or €40,000."
    # The stages the rep types, looked up again: the form only offers their keys.
    stage = team_stage = None
    picked = selected_value(values, "stage")
    if picked is not None:
        offered = services.teams.stages_for(user_id)
        chosen = next((s for s in offered.stages if s.key == picked and not s.is_closed), None)
        if chosen is None:
            errors["stage"] = messages.PICK_A_STAGE
        else:
            stage, team_stage = offered.stored(chosen)
    forecast = selected_value(values, "forecast")
    if forecast is not None and forecast not in FORECAST_CATEGORIES:
        errors["forecast"] = "Pick a forecast category from the list."
    try:
        close_date = date_value(values, "close_date")
    except ValueError:
        errors["close_date"] = messages.PICK_A_REAL_DATE
        close_date = None
    if errors:
        ack(response_action="errors", errors=errors)
        return
    changes = DealChanges(
        stage=stage,
        team_stage=team_stage,
        amount=amount,
        close_date=close_date,
        forecast=forecast,
    )
    today = services.deals.today_for(user_id)
    try:
        deal = services.deals.create_deal(
            services.actor(user_id), account, changes, today=today, check_duplicates=True
        )
    except DuplicateDeal as duplicate:
        existing = duplicate.existing
        create = CreateAnother(DealRef(None, existing.id), account, changes)
        reply = blocks.duplicate_question(existing, value=to_button_value("/deal", create))
    except CommitNeedsEvidence as error:
        # A new deal has nothing cited yet: the forecast is what to change.
        refuse_field(ack, "forecast", messages.refusal(error)[0])
        return
    except DomainError as error:
        refuse_field(ack, "account", messages.refusal(error)[0])
        return
    else:
        reply = blocks.deal_created(deal, today)
    hand_over_confirmation(
        context, reply, channel_id=channel_id if isinstance(channel_id, str) else None
    )
    ack()


def submit_post_mortem(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], *, services: Services
) -> None:
    """Ack the post-mortem form: its errors, or the post-mortem saved with the deal."""
    user_id = body["user"]["id"]
    values = view["state"]["values"]
    deal_id = metadata_deal_id(view)
    if deal_id is None:
        refuse_field(ack, "reason", messages.FORM_EXPIRED)
        return
    reason = (text_value(values, "reason") or "").strip()
    if not reason:
        refuse_field(ack, "reason", "Say in a few words what decided it.")
        return
    try:
        services.deals.record_post_mortem(
            services.actor(user_id),
            deal_id,
            primary_reason=reason,
            competitor=text_value(values, "competitor"),
            lessons=text_value(values, "lessons"),
        )
    except DomainError as error:
        refuse_field(ack, "reason", messages.refusal(error)[0])
        return
    ack()
