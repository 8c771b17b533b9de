"""`dealbot serve` with SLACK_APP_TOKEN: Socket Mode end to end, acks included.

The command runs as a subprocess, as in production: Bolt's SocketModeHandler asks the fake
Web API for `apps.connections.open`, which answers with the fake websocket's `ws://` URL;
the real slack_sdk Socket Mode client connects there, gets `hello`, and acks each envelope.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.fake_slack import FakeSlackWebAPI
from tests.e2e.harness import block_actions, blocks_text
from tests.fakes.socket_mode import FakeSocketMode

APP_TOKEN = "xapp-1-A0DEALBOT-socket-mode-test"
BOT_TOKEN = "xoxb-socket-mode-test"


@dataclass
class SocketModeApp:
    process: subprocess.Popen[bytes]
    slack: FakeSlackWebAPI
    socket: FakeSocketMode
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def command(self, command: str, text: str, name: str) -> tuple[str, dict[str, Any]]:
        """Send a slash command envelope; return its id and the app's ack."""
        envelope_id = self.socket.send(
            "slash_commands",
            {
                "token": "deprecated-verification-token",
                "team_id": "T1",
                "team_domain": "dealbot-test",
                "channel_id": "C0TEAM",
                "channel_name": "sales",
                "user_id": "U0ANA",
                "user_name": "ana",
                "command": command,
                "text": text,
                "api_app_id": "A0DEALBOT",
                "is_enterprise_install": "false",
                "response_url": self.slack.response_url_for(name),
                "trigger_id": f"trigger.{name}",
            },
        )
        return envelope_id, self.socket.ack_for(envelope_id)


@contextmanager
def socket_mode_app(tmp_path: Path) -> Iterator[SocketModeApp]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLACK_", "DEALBOT_", "GMAIL_", "GOOGLE_"))
        and name not in ("DATABASE_URL", "HOST", "PORT")
    }
    with FakeSlackWebAPI() as slack, FakeSocketMode() as socket_mode:
        slack.set_response("apps.connections.open", {"ok": True, "url": socket_mode.url})
        environment.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=slack.base_url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'dealbot.sqlite3'}",
        )
        log_path = tmp_path / "serve.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--no-scheduler"],
                cwd=tmp_path,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        app = SocketModeApp(process=process, slack=slack, socket=socket_mode, log_path=log_path)
        try:
            try:
                socket_mode.wait_for_connection(timeout=60)
            except TimeoutError:
                raise AssertionError(app.log()) from None
            yield app
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_slash_command_envelope_is_acked_with_its_reply_and_a_click_reaches_slack(
    tmp_path: Path,
) -> None:
    with socket_mode_app(tmp_path) as app:
        opened = app.slack.calls_to("apps.connections.open")
        created_id, created = app.command("/deal", "new Initech 50k stage:demo", "created")
        pipeline_id, pipeline = app.command("/pipeline", "", "pipeline")

        # The reply travels in the ack itself, under the envelope's own id.
        assert created["envelope_id"] == created_id
        assert "Initech" in blocks_text(created["payload"]["blocks"])
        assert pipeline["envelope_id"] == pipeline_id
        blocks = pipeline["payload"]["blocks"]
        assert "Initech" in blocks_text(blocks)

        share = next(
            element
            for block in blocks
            if block["type"] == "actions"
            for element in block["elements"]
            if element["action_id"] == "share_in_channel"
        )
        click_id = app.socket.send(
            "interactive",
            block_actions(
                share["action_id"],
                share["value"],
                block_id="share",
                response_url=app.slack.response_url_for("share"),
            ),
        )
        clicked = app.socket.ack_for(click_id)
        # The work after the ack (a lazy listener) posts the pipeline to the channel.
        deadline = time.monotonic() + 10
        while not [r for r in app.slack.responses if r.name == "share"]:
            assert time.monotonic() < deadline, app.log()
            time.sleep(0.05)
        shared = next(r for r in app.slack.responses if r.name == "share").body

        home_id = app.socket.send(
            "events_api",
            {
                "type": "event_callback",
                "team_id": "T1",
                "api_app_id": "A0DEALBOT",
                "event": {"type": "app_home_opened", "user": "U0ANA", "tab": "home"},
                "event_id": "Ev1",
                "event_time": 1,
            },
        )
        home_ack = app.socket.ack_for(home_id)
        while not app.slack.calls_to("views.publish"):
            assert time.monotonic() < deadline + 10, app.log()
            time.sleep(0.05)
        published = app.slack.calls_to("views.publish")[0].args

    # The client asked for its URL with the app-level token, not the bot token.
    assert [call.headers.get("Authorization") for call in opened] == [f"Bearer {APP_TOKEN}"]
    assert clicked["envelope_id"] == click_id
    assert shared["response_type"] == "in_channel"
    assert "Initech" in blocks_text(shared["blocks"])
    assert "Shared by <@U0ANA>" in blocks_text(shared["blocks"])
    # An event is acked with its id alone; the Home tab it asks for is published.
    assert home_ack == {"envelope_id": home_id}
    assert published["user_id"] == "U0ANA" and "Initech" in blocks_text(published["view"]["blocks"])
