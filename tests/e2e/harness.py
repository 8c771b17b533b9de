"""The real app over real HTTP on 127.0.0.1, talking to the fake Slack Web API."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from bot.app import ListenerPool, create_app
from bot.email_setup import build_gmail_connect
from bot.fake_slack import FakeSlackWebAPI
from bot.google_oauth import google_oauth_wsgi
from bot.server import BackgroundServer, build_wsgi_app
from bot.settings import load_settings
from domain.clock import FixedClock
from storage.database import Database
from storage.migrate import upgrade
from storage.models import (
    Contact,
    Deal,
    DealChange,
    NextStep,
    PostMortem,
    Quota,
    Team,
    TeamMember,
)
from tests.fakes.slack_signing import interaction_body, post_signed, slash_command_body

SIGNING_SECRET = "e2e-signing-secret"
# Monday 23 Nov 2026, mid-morning in New York.
NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
CONFIGURED_ADMIN = "U0ROOT"
ALL_TABLES = (Deal, Contact, NextStep, DealChange, PostMortem, Team, TeamMember, Quota)


@dataclass
class Reply:
    """What the slash command's HTTP response carried."""

    status: int
    body: dict[str, Any] | None

    @property
    def text(self) -> str:
        return (self.body or {}).get("text", "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return (self.body or {}).get("blocks", [])

    @property
    def is_private(self) -> bool:
        return (self.body or {}).get("response_type") == "ephemeral"

    @property
    def all_text(self) -> str:
        return blocks_text(self.blocks)

    def button(self, action_id: str) -> dict[str, Any]:
        """Return the reply's one button with `action_id`; fail if there is not exactly one."""
        [found] = [
            element
            for block in self.blocks
            if block["type"] == "actions"
            for element in block["elements"]
            if element["action_id"] == action_id
        ]
        return found


def blocks_text(blocks: list[dict[str, Any]]) -> str:
    """Return every piece of text in `blocks`, for assertions on what the user reads."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(parts)


def view_submission(
    view: dict[str, Any], values: dict[str, Any], *, user: str = "U0ANA"
) -> dict[str, Any]:
    """Return the payload Slack posts when `user` submits `view` with these input `values`."""
    return {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A0DEALBOT",
        "trigger_id": f"trigger.{view['callback_id']}",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {"values": values},
        },
    }


def block_actions(
    action_id: str,
    value: str,
    *,
    block_id: str,
    response_url: str,
    user: str = "U0ANA",
    channel: str = "C0TEAM",
    ephemeral: bool = True,
) -> dict[str, Any]:
    """Return the payload Slack posts when `user` clicks a button in a message."""
    return {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A0DEALBOT",
        "trigger_id": f"trigger.{action_id}",
        "channel": {"id": channel},
        "container": {"type": "message", "is_ephemeral": ephemeral},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "action_ts": "1.1",
            }
        ],
    }


def message_action(
    callback_id: str,
    message: dict[str, Any],
    *,
    response_url: str,
    user: str = "U0ANA",
    channel: str = "C0TEAM",
) -> dict[str, Any]:
    """Return the payload Slack posts when `user` picks a message shortcut on `message`."""
    return {
        "type": "message_action",
        "team": {"id": "T1", "domain": "dealbot-test"},
        "user": {"id": user, "name": user.lower()},
        "api_app_id": "A0DEALBOT",
        "callback_id": callback_id,
        "trigger_id": f"trigger.{callback_id}",
        "action_ts": "1700000100.000001",
        "message_ts": message["ts"],
        "channel": {"id": channel, "name": channel.lower()},
        "message": {"type": "message", **message},
        "response_url": response_url,
    }


@dataclass
class RunningApp:
    url: str
    database: Database
    slack: FakeSlackWebAPI
    clock: FixedClock
    listeners: ListenerPool
    _triggers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def command(self, command: str, text: str = "", *, user: str = "U0ANA") -> Reply:
        body = slash_command_body(
            command,
            text,
            user_id=user,
            response_url=self.slack.response_url_for("command"),
            trigger_id=f"trigger.{next(self._triggers)}",
        )
        status, _, raw = post_signed(self.url, body, SIGNING_SECRET)
        self.listeners.wait_until_idle()
        return Reply(status=status, body=json.loads(raw) if raw.strip() else None)

    def interact(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        status, _, raw = post_signed(self.url, interaction_body(payload), SIGNING_SECRET)
        self.listeners.wait_until_idle()
        return status, json.loads(raw) if raw.strip() else None

    def event(self, event: dict[str, Any]) -> int:
        body = json.dumps(
            {
                "type": "event_callback",
                "team_id": "T1",
                "api_app_id": "A0DEALBOT",
                "event": event,
                "event_id": f"Ev{next(self._triggers)}",
                "event_time": 1,
            }
        ).encode()
        status, _, _ = post_signed(self.url, body, SIGNING_SECRET)
        self.listeners.wait_until_idle()
        return status

    def row_counts(self) -> dict[str, int]:
        with self.database.session() as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in ALL_TABLES
            }

    def deal_named(self, account: str) -> Deal:
        with self.database.session() as session:
            deal = session.scalars(select(Deal).where(Deal.account == account)).one()
            session.expunge(deal)
            return deal

    def changes_of(self, deal_id: int) -> list[tuple[str, str | None, str | None, str]]:
        with self.database.session() as session:
            rows = session.scalars(
                select(DealChange).where(DealChange.deal_id == deal_id).order_by(DealChange.id)
            )
            return [(c.field, c.old_value, c.new_value, c.changed_by) for c in rows]


@contextmanager
def running_app(
    slack: FakeSlackWebAPI, database_url: str, **overrides: Any
) -> Iterator[RunningApp]:
    """Yield the app served by waitress on a free port, with a migrated database.

    `overrides` are extra settings (the email backend, say).
    """
    upgrade(database_url)
    database = Database.from_url(database_url)
    clock = FixedClock(at=NOW)
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-e2e-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.base_url,
        database_url=database_url,
        dealbot_admins=CONFIGURED_ADMIN,
        dealbot_timezone="America/New_York",
        **overrides,
    )
    listeners = ListenerPool(max_workers=4)
    app = create_app(settings, database=database, clock=clock, listener_executor=listeners)
    connect = build_gmail_connect(settings, database=database, clock=clock)
    google_oauth = google_oauth_wsgi(connect) if connect is not None else None
    server = BackgroundServer(build_wsgi_app(app, google_oauth=google_oauth), threads=8).start()
    try:
        yield RunningApp(
            url=f"http://127.0.0.1:{server.port}/slack/events",
            database=database,
            slack=slack,
            clock=clock,
            listeners=listeners,
        )
    finally:
        server.stop()
        listeners.shutdown(wait=True)
        database.dispose()
