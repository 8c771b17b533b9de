"""Requests signed and shaped the way Slack sends them to an app's Request URL.

End-to-end tests post these over real HTTP, so Bolt's signature check, body parsing and
3-second ack run exactly as they do in production.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"

# Slack's documented example trigger id; the shape matters to nothing but looks like the real one.
DEFAULT_TRIGGER_ID = "13345224609.738474920.8088930838d88f008e0"


def sign(body: bytes, signing_secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Return the X-Slack-Request-Timestamp and X-Slack-Signature headers for ``body``."""
    # Bolt rejects timestamps older than five minutes, so "now" is the only safe default.
    sent_at = int(time.time()) if timestamp is None else timestamp
    base_string = b"v0:" + str(sent_at).encode("ascii") + b":" + body
    digest = hmac.new(signing_secret.encode("utf-8"), base_string, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(sent_at), "X-Slack-Signature": f"v0={digest}"}


def slash_command_body(
    command: str,
    text: str,
    *,
    user_id: str,
    user_name: str = "rep",
    channel_id: str = "C0TEAM",
    channel_name: str = "sales",
    team_id: str = "T1",
    team_domain: str = "dealbot-test",
    response_url: str,
    trigger_id: str = DEFAULT_TRIGGER_ID,
    api_app_id: str = "A0DEALBOT",
) -> bytes:
    """Return a form-encoded slash command body with the fields Slack sends."""
    fields = {
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    return urlencode(fields).encode("utf-8")


def interaction_body(payload: dict[str, Any]) -> bytes:
    """Return an interactivity body: the JSON payload form-encoded as ``payload=...``."""
    return urlencode({"payload": json.dumps(payload)}).encode("utf-8")


def _guess_content_type(body: bytes) -> str:
    return JSON_CONTENT_TYPE if body.lstrip().startswith(b"{") else FORM_CONTENT_TYPE


def post_signed(
    url: str,
    body: bytes,
    signing_secret: str,
    *,
    timestamp: int | None = None,
    content_type: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` signed as Slack would; return (status, headers, body) even for 4xx/5xx."""
    headers = {
        "Content-Type": content_type or _guess_content_type(body),
        # One request per connection keeps servers under test from holding sockets open.
        "Connection": "close",
        **sign(body, signing_secret, timestamp),
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        # A rejected signature (401) or bad request is a result to assert on, not a crash.
        with error:
            return error.code, dict(error.headers.items()), error.read()
