"""Events: App Home shows my open deals, my overdue next steps and my accuracy score."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient

from handlers import blocks
from handlers.listeners import after_ack

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    after_ack(app.event("app_home_opened"), publish_home, services)


def publish_home(event: dict[str, Any], client: WebClient, *, services: Services) -> None:
    """Publish the user's App Home: open deals, overdue next steps, accuracy score."""
    user_id = event.get("user")
    # Only a home tab opened by a user has a home to publish.
    if event.get("tab", "home") != "home" or not isinstance(user_id, str) or not user_id:
        return
    client.views_publish(user_id=user_id, view=blocks.home_view(services.deals.home(user_id)))
