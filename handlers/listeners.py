"""How a module-level listener is registered: its services bound, its slow part after the ack."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, Respond
from slack_sdk import WebClient
from slack_sdk.models.views import View

from domain.changes import DealRef
from domain.errors import DomainError
from domain.views import DealView
from handlers import blocks, messages
from handlers.modals import open_modal

if TYPE_CHECKING:
    from bot.app import Services


def _ack_at_once(ack: Ack) -> None:
    ack()


def with_services(listener: Callable[..., Any], services: Services) -> Callable[..., Any]:
    """Return `listener` with its keyword-only `services` given, for Bolt to call.

    Bolt passes a listener the arguments it names (body, ack, client, ...); `services` is
    not Bolt's, so it is bound here. The wrapper keeps the listener's name and signature
    (`__wrapped__`), which is what Bolt reads to choose those arguments.
    """
    return functools.update_wrapper(functools.partial(listener, services=services), listener)


def after_ack(listener: Callable[..., Any], work: Callable[..., None], services: Services) -> None:
    """Register `work` to run right after an immediate ack(), with `services` bound.

    Replies to slash commands are computed inside the request (process_before_response);
    a click or an event that talks to Slack (respond, views.open, views.publish) is acked
    first and does that work in Bolt's listener pool, so Slack never waits on it.
    """
    listener(ack=_ack_at_once, lazy=[with_services(work, services)])


def after_reply(services: Services, work: Callable[..., None], /, *args: Any) -> None:
    """Run `work(*args)` in the listener pool, so the request's reply does not wait for it.

    What Bolt's lazy listeners do, for work only some requests have: Bolt starts a lazy
    listener (copying the request for it) on every request its listener gets. Without a
    pool (Services built by hand) the work runs here, before the reply.
    """
    pool = services.after_reply
    if pool is None:
        work(*args)
    else:
        pool.submit(work, *args)


def deal_on_button(action: dict[str, Any]) -> DealRef:
    """Return the deal a button's value names; ValueError when it names none (forged, stale)."""
    return DealRef(name=None, deal_id=int(action.get("value") or ""))


def button_refused(error: ValueError | DomainError) -> blocks.Reply:
    """Return the private reply for a button whose deal cannot be read or acted on."""
    if isinstance(error, DomainError):
        problem, _ = messages.refusal(error)
        return blocks.error_reply(problem)
    return blocks.error_reply(messages.DEAL_GONE)


def respond_privately(
    respond: Respond, reply: blocks.Reply, *, replace_original: bool = False
) -> None:
    """Show `reply` only to the user who clicked, under the message or in its place."""
    respond(
        response_type="ephemeral",
        replace_original=replace_original,
        text=reply.text,
        blocks=reply.block_dicts(),
    )


def open_deal_form(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
    form: Callable[[DealView], View],
) -> None:
    """Return once the form for the button's deal is open, or the user told privately why not.

    Reading the deal first means a forged or stale button is refused before any modal opens.
    """
    try:
        deal = services.deals.show_deal(services.actor(body["user"]["id"]), deal_on_button(action))
    except (ValueError, DomainError) as error:
        respond_privately(respond, button_refused(error))
        return
    if not open_modal(client, body.get("trigger_id"), form(deal)):
        respond_privately(respond, blocks.error_reply(messages.BUTTON_EXPIRED))
