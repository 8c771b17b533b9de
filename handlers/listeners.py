"""How a module-level listener is registered: its services bound, its slow part after the ack."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, Respond

if TYPE_CHECKING:
    from bot.app import Services
    from handlers.blocks import Reply


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


def respond_privately(respond: Respond, reply: Reply, *, replace_original: bool = False) -> None:
    """Show `reply` only to the user who clicked, under the message or in its place."""
    respond(
        response_type="ephemeral",
        replace_original=replace_original,
        text=reply.text,
        blocks=reply.block_dicts(),
    )
