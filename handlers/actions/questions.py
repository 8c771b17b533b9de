"""The answers to a question asked before acting: Delete / Create, or Cancel.

`/deal delete` and a `/deal new` that would repeat an open deal ask first. The confirm
button carries the command already parsed (`handlers.commands.intents`), so a click runs
what the rep typed, checked again (permissions, the deal still there) as if typed now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import App, Respond
from slack_sdk import WebClient

from handlers import blocks, messages
from handlers.commands.dispatch import Invocation, picked_intent, reply_for
from handlers.listeners import after_ack, respond_privately

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    after_ack(app.action(blocks.CONFIRM_ACTION), confirm, services)
    after_ack(app.action(blocks.CANCEL_ACTION), cancel, services)


def confirm(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
) -> None:
    """Run the command the question asked about, in the question's place."""
    picked = picked_intent(action.get("value"))
    if picked is None:
        reply = blocks.error_reply(messages.CHOICE_EXPIRED)
    else:
        command, intent = picked
        invocation = Invocation.from_click(body, command=command, with_trigger=False)
        reply = reply_for(services, client, invocation, intent=intent)
    respond_privately(respond, reply, replace_original=True)


def cancel(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
) -> None:
    """Say that nothing was done, in the question's place."""
    respond_privately(respond, blocks.cancelled(), replace_original=True)
