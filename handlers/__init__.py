"""Slack surfaces; each sub-package has register(app, services)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App

if TYPE_CHECKING:
    from bot.app import Services


def _ack_at_once(ack: Ack) -> None:
    ack()


def after_ack(
    listener: Callable[..., Any],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Return a decorator that registers work to run right after an immediate ack().

    Replies to slash commands are computed inside the request (process_before_response);
    a click or an event that talks to Slack (respond, views.open, views.publish) is acked
    first and does that work in Bolt's listener pool, so Slack never waits on it.
    """

    def register(work: Callable[..., None]) -> Callable[..., None]:
        listener(ack=_ack_at_once, lazy=[work])
        return work

    return register


def register_all(app: App, services: Services) -> None:
    from handlers import actions, commands, events, views

    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    events.register(app, services)
