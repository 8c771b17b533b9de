"""Slash commands: /deal, /nextstep, /pipeline, /dealbot, as declared in `dispatch.COMMANDS`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from handlers.commands.dispatch import COMMANDS, Invocation, reply_for
from handlers.follow_ups import draft_and_dm
from handlers.listeners import after_reply, with_services

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    # No Bolt lazy listener: Bolt would copy every command's request and hand it to a
    # thread (a tenth of a /pipeline's CPU) for the rare reply that promises a draft.
    for command in COMMANDS:
        app.command(command.name)(with_services(answer_command, services))


def answer_command(
    ack: Ack,
    command: dict[str, Any],
    client: WebClient,
    *,
    services: Services,
) -> None:
    """Answer a slash command inside the request (process_before_response): the ack's body.

    A follow-up draft the reply promises is made once the reply is on its way, in the
    listener pool (`after_reply`), its outcome DMed.
    """
    reply = reply_for(services, client, invocation_from(command))
    if reply.pending_draft is not None:
        after_reply(services, draft_and_dm, services, client, reply.pending_draft)
    if reply.blocks:
        ack(response_type="ephemeral", text=reply.text, blocks=reply.block_dicts())
    else:
        ack()


def invocation_from(command: dict[str, Any]) -> Invocation:
    return Invocation(
        command=command["command"],
        text=command.get("text") or "",
        user_id=command["user_id"],
        channel_id=command.get("channel_id"),
        trigger_id=command.get("trigger_id"),
    )
