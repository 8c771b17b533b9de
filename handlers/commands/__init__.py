"""Slash commands: /deal, /nextstep, /pipeline, /dealbot, as declared in `dispatch.COMMANDS`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from handlers.commands.dispatch import COMMANDS, Invocation, reply_for

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    def answer_command(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        # Answered inside the request (process_before_response): the reply is the ack body.
        reply = reply_for(services, client, invocation_from(command))
        if reply.blocks:
            ack(response_type="ephemeral", text=reply.text, blocks=reply.block_dicts())
        else:
            ack()

    for command in COMMANDS:
        app.command(command.name)(answer_command)


def invocation_from(command: dict[str, Any]) -> Invocation:
    return Invocation(
        command=command["command"],
        text=command.get("text") or "",
        user_id=command["user_id"],
        channel_id=command.get("channel_id"),
        trigger_id=command.get("trigger_id"),
    )
