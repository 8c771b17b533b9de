"""Events: App Home shows my open deals, my overdue next steps and my accuracy score."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_sdk import WebClient

from handlers import after_ack, blocks

if TYPE_CHECKING:
    from bot.app import Services


def register(app: App, services: Services) -> None:
    @after_ack(app.event("app_home_opened"))
    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user_id = event["user"]
        client.views_publish(user_id=user_id, view=blocks.home_view(services.deals.home(user_id)))
