"""Slash commands: /deal, /nextstep, /pipeline, /dealbot, as declared in `dispatch.COMMANDS`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from handlers.commands.dispatch import COMMANDS, Invocation, reply_for
from handlers.follow_ups import draft_and_dm
from handlers.listeners import with_services

if TYPE_CHECKING:
    from bot.app import Services

# Where the reply leaves the draft it promised, for the lazy listener.
PENDING_DRAFT = "dealbot_pending_draft"


def register(app: App, services: Services) -> None:
    for command in COMMANDS:
        app.command(command.name)(
            ack=with_services(answer_command, services),
            lazy=[with_services(draft_what_the_reply_promised, services)],
        )


def answer_command(
    ack: Ack,
    command: dict[str, Any],
    client: WebClient,
    context: BoltContext,
    *,
    services: Services,
) -> None:
    """Answer a slash command inside the request (process_before_response): the ack's body."""
    reply = reply_for(services, client, invocation_from(command))
    context[PENDING_DRAFT] = reply.pending_draft
    if reply.blocks:
        ack(response_type="ephemeral", text=reply.text, blocks=reply.block_dicts())
    else:
        ack()


def draft_what_the_reply_promised(
    context: BoltContext, client: WebClient, *, services: Services
) -> None:
    """Make the follow-up draft a reply promised, once Slack has the reply (lazy listener)."""
    pending = context.get(PENDING_DRAFT)
    if pending is not None:
        draft_and_dm(services, client, pending)


def invocation_from(command: dict[str, Any]) -> Invocation:
    return Invocation(
        command=command["command"],
        text=command.get("text") or "",
        user_id=command["user_id"],
        channel_id=command.get("channel_id"),
        trigger_id=command.get("trigger_id"),
    )
