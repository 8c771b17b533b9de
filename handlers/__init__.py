"""Slack surfaces; each sub-package has register(app, services)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

if TYPE_CHECKING:
    from bot.app import Services


def register_all(app: App, services: Services) -> None:
    from handlers import actions, commands, events, shortcuts, views

    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    shortcuts.register(app, services)
    events.register(app, services)
