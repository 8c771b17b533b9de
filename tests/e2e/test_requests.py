"""Slack's side of the wire: oversized, malformed, replayed and slow-to-answer requests.

Each test is named after a bug it pins; each drives the real app over real HTTP with
requests signed as Slack signs them (or, for "the body is never read", the WSGI app itself).
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from bot.app import create_app
from bot.fake_slack import FakeSlackWebAPI
from bot.server import build_wsgi_app
from bot.settings import load_settings
from handlers import blocks, messages
from storage.database import Database
from storage.migrate import upgrade
from tests.databases import BACKENDS, database_url_for
from tests.e2e.harness import SIGNING_SECRET, RunningApp, running_app, view_submission
from tests.fakes.slack_signing import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    interaction_body,
    post_signed,
    sign,
    slash_command_body,
)

TWO_MEGABYTES = 2 * 1024 * 1024
# The limit, written out so the test does not take it from the code it checks.
ONE_MEGABYTE = 1_000_000


class StreamThatMustNotBeRead(io.RawIOBase):
    """A request body stream that fails the test if more than `allowed` bytes are read."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.read_so_far = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = len(buffer)
        self.read_so_far += wanted
        assert self.read_so_far <= self.allowed, f"read {self.read_so_far} bytes of the body"
        buffer[:wanted] = b"x" * wanted
        return wanted


@pytest.fixture
def wsgi_app(slack_api: FakeSlackWebAPI, tmp_path: Path) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path / 'wsgi.db'}"
    upgrade(url)
    database = Database.from_url(url)
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-e2e-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack_api.base_url,
        database_url=url,
    )
    yield build_wsgi_app(create_app(settings, database=database))
    database.dispose()


def _call(wsgi: Any, environ: dict[str, Any]) -> str:
    statuses: list[str] = []
    b"".join(wsgi(environ, lambda status, headers: statuses.append(status)))
    return statuses[0]


def _post_environ(stream: Any, **extra: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": FORM_CONTENT_TYPE,
        "wsgi.input": stream,
        **extra,
    }


def test_a_two_megabyte_body_gets_413_and_is_never_read(wsgi_app: Any) -> None:
    stream = StreamThatMustNotBeRead(allowed=0)
    status = _call(wsgi_app, _post_environ(stream, CONTENT_LENGTH=str(TWO_MEGABYTES)))
    assert status.startswith("413")
    assert stream.read_so_far == 0


def test_a_chunked_body_without_length_is_read_no_further_than_the_cap(wsgi_app: Any) -> None:
    stream = StreamThatMustNotBeRead(allowed=ONE_MEGABYTE + 1)
    status = _call(wsgi_app, _post_environ(stream, HTTP_TRANSFER_ENCODING="chunked"))
    assert status.startswith("413")


def _send_raw(url: str, headers: dict[str, str], chunks: Iterator[bytes]) -> int:
    """Return the status of a POST whose body is streamed; the server may hang up early."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest("POST", parts.path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            for chunk in chunks:
                connection.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # It answered before taking the whole body, as it should.
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_two_megabyte_post_over_http_gets_413(app: RunningApp) -> None:
    headers = {
        "Content-Type": FORM_CONTENT_TYPE,
        "Content-Length": str(TWO_MEGABYTES),
        **sign(b"", "not-the-secret"),
    }
    chunk = b"x" * 65536
    status = _send_raw(app.url, headers, iter([chunk] * (TWO_MEGABYTES // len(chunk))))
    assert status == 413


def test_a_chunked_two_megabyte_post_over_http_gets_413(app: RunningApp) -> None:
    headers = {"Content-Type": FORM_CONTENT_TYPE, "Transfer-Encoding": "chunked"}
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    chunks = [chunk] * (TWO_MEGABYTES // len(piece)) + [b"0\r\n\r\n"]
    assert _send_raw(app.url, headers, iter(chunks)) == 413


def test_a_bad_signature_logs_one_short_line_without_token_or_response_url(
    app: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = urlencode(
        {
            "token": "verification-token-secret",
            "response_url": "https://hooks.slack.com/commands/T1/secret-hook",
            "command": "/deal",
            "text": "new Initech",
            "user_id": "U0ANA",
        }
    ).encode()
    status, _, _ = post_signed(app.url, body, "not-the-secret")
    assert status == 401
    assert "verification-token-secret" not in caplog.text
    assert "secret-hook" not in caplog.text
    refusals = [r for r in caplog.records if "signature" in r.getMessage().lower()]
    assert len(refusals) == 1 and len(refusals[0].getMessage()) < 120


def _post_with_timestamp(url: str, body: bytes, timestamp: str) -> int:
    headers = sign(body, SIGNING_SECRET)
    headers["X-Slack-Request-Timestamp"] = timestamp
    headers["Content-Type"] = FORM_CONTENT_TYPE
    return _send_raw(url, headers | {"Content-Length": str(len(body))}, iter([body]))


def test_a_non_numeric_timestamp_gets_401_not_500(app: RunningApp) -> None:
    body = slash_command_body("/pipeline", "", user_id="U0ANA", response_url="https://x")
    assert _post_with_timestamp(app.url, body, "yesterday") == 401


# Signed bodies Bolt cannot parse: each used to raise inside Bolt and answer 500.
UNPARSABLE = {
    "form body sent as JSON": (b"command=%2Fdeal&text=new+Initech", JSON_CONTENT_TYPE),
    "payload not JSON": (b"payload=%7Bnot-json", FORM_CONTENT_TYPE),
    "payload a JSON list": (urlencode({"payload": "[1, 2]"}).encode(), FORM_CONTENT_TYPE),
    "body a JSON list": (b'[{"type": "event_callback"}]', JSON_CONTENT_TYPE),
    "body not UTF-8": (b"command=%2Fdeal&text=\xff\xfe", FORM_CONTENT_TYPE),
}


@pytest.mark.parametrize(("body", "content_type"), UNPARSABLE.values(), ids=UNPARSABLE.keys())
def test_a_signed_body_bolt_cannot_parse_gets_400_not_500(
    app: RunningApp, body: bytes, content_type: str
) -> None:
    status, _, _ = post_signed(app.url, body, SIGNING_SECRET, content_type=content_type)
    assert status == 400
    assert app.row_counts()["deals"] == 0


def _new_deal_form(private_metadata: str, *, close_date: str | None = None) -> dict[str, Any]:
    view = {"callback_id": blocks.NEW_DEAL_VIEW, "private_metadata": private_metadata}
    return view_submission(
        view,
        {
            "account": {"value": {"type": "plain_text_input", "value": "Initech"}},
            "amount": {"value": {"type": "plain_text_input", "value": "50k"}},
            "stage": {"value": {"type": "static_select", "selected_option": None}},
            "close_date": {"value": {"type": "datepicker", "selected_date": close_date}},
            "forecast": {"value": {"type": "static_select", "selected_option": None}},
        },
    )


def test_a_slash_command_whose_text_says_payload_is_answered_not_404(app: RunningApp) -> None:
    """Bolt read any form body containing "payload" as a click with no payload: a 404."""
    created = app.command("/deal", "new Payload Systems 20k")
    step = app.command("/nextstep", "payload send the payload spec due:fri")
    shown = app.command("/deal", "show payload")

    assert (created.status, step.status, shown.status) == (200, 200, 200)
    assert "Payload Systems" in created.text
    assert "send the payload spec" in step.text
    assert "send the payload spec" in json.dumps(shown.blocks)


@pytest.mark.parametrize("metadata", ["{not json", "[1, 2]", '"C0TEAM"'])
def test_new_deal_form_with_bad_private_metadata_saves_nothing_and_says_so(
    app: RunningApp, metadata: str
) -> None:
    status, body = app.interact(_new_deal_form(metadata))
    assert status == 200
    assert body == {"response_action": "errors", "errors": {"account": messages.FORM_EXPIRED}}
    assert app.row_counts()["deals"] == 0


def test_new_deal_form_with_date_0000_01_01_saves_nothing_and_asks_for_a_real_date(
    app: RunningApp,
) -> None:
    form = _new_deal_form(json.dumps({"channel_id": "C0TEAM"}), close_date="0000-01-01")
    status, body = app.interact(form)
    assert status == 200
    assert body is not None and body["response_action"] == "errors"
    assert "2026-12-15" in body["errors"]["close_date"]
    assert app.row_counts()["deals"] == 0


def test_post_mortem_for_deal_id_ten_to_the_thirty_is_refused_politely(app: RunningApp) -> None:
    view = {
        "callback_id": blocks.POST_MORTEM_VIEW,
        "private_metadata": json.dumps({"deal_id": 10**30}),
    }
    reason = {"reason": {"value": {"type": "plain_text_input", "value": "Price"}}}
    status, body = app.interact(view_submission(view, reason))
    assert status == 200
    assert body is not None and body["response_action"] == "errors"
    assert "no deal" in body["errors"]["reason"]
    assert app.row_counts()["post_mortems"] == 0


# --- retries and replays, on both backends ---------------------------------------------


@pytest.fixture(params=BACKENDS)
def app_on_each_backend(
    request: pytest.FixtureRequest, slack_api: FakeSlackWebAPI, tmp_path: Path
) -> Iterator[RunningApp]:
    slack_api.set_user("U0ANA", name="ana")
    with (
        database_url_for(request.param, tmp_path) as url,
        running_app(slack_api, url) as running,
    ):
        yield running


def test_the_same_signed_deal_new_sent_three_times_makes_one_deal(
    app_on_each_backend: RunningApp,
) -> None:
    app = app_on_each_backend
    body = slash_command_body(
        "/deal", "new Initech 50k", user_id="U0ANA", response_url=app.slack.response_url_for("c")
    )
    sent_at = int(time.time())
    answers = [post_signed(app.url, body, SIGNING_SECRET, timestamp=sent_at) for _ in range(3)]
    app.listeners.wait_until_idle()
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert b"Initech" in answers[0][2]
    # The replays get an empty 200: Slack shows nothing more.
    assert [raw for _, _, raw in answers[1:]] == [b"", b""]
    assert app.row_counts()["deals"] == 1


def _home_opened(event_id: str) -> bytes:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A0DEALBOT",
            "event": {"type": "app_home_opened", "user": "U0ANA", "channel": "D1", "tab": "home"},
            "event_id": event_id,
            "event_time": 1,
        }
    ).encode()


def test_a_replayed_app_home_opened_publishes_home_once(app_on_each_backend: RunningApp) -> None:
    app = app_on_each_backend
    body = _home_opened("Ev0REPLAY")
    sent_at = int(time.time())
    for _ in range(3):
        assert post_signed(app.url, body, SIGNING_SECRET, timestamp=sent_at)[0] == 200
    app.listeners.wait_until_idle()
    assert len(app.slack.calls_to("views.publish")) == 1


def test_an_event_slack_retries_is_handled_once(app_on_each_backend: RunningApp) -> None:
    app = app_on_each_backend
    body = _home_opened("Ev0RETRIED")
    assert post_signed(app.url, body, SIGNING_SECRET)[0] == 200
    # Slack signs a retry anew, so its timestamp (and signature) differ from the first.
    headers = sign(body, SIGNING_SECRET, int(time.time()) + 1)
    headers |= {"Content-Type": JSON_CONTENT_TYPE, "X-Slack-Retry-Num": "1"}
    headers |= {"X-Slack-Retry-Reason": "http_timeout", "Content-Length": str(len(body))}
    assert _send_raw(app.url, headers, iter([body])) == 200
    app.listeners.wait_until_idle()
    assert len(app.slack.calls_to("views.publish")) == 1


def test_two_different_events_are_both_handled(app_on_each_backend: RunningApp) -> None:
    app = app_on_each_backend
    sent_at = int(time.time())
    for event_id in ("Ev0ONE", "Ev0TWO"):
        post_signed(app.url, _home_opened(event_id), SIGNING_SECRET, timestamp=sent_at)
    app.listeners.wait_until_idle()
    assert len(app.slack.calls_to("views.publish")) == 2


# --- ack first, then talk to Slack -----------------------------------------------------

# Slack gives an app three seconds to answer; the client gives up at that mark.
SLACKS_DEADLINE_SECONDS = 3.0


def _submit_new_deal_within_slacks_deadline(app: RunningApp) -> int:
    form = _new_deal_form(json.dumps({"channel_id": "C0TEAM"}))
    status, _, raw = post_signed(
        app.url, interaction_body(form), SIGNING_SECRET, timeout=SLACKS_DEADLINE_SECONDS
    )
    assert raw.strip() == b""
    return status


def test_new_deal_form_is_acked_before_a_rate_limited_slack_answers(app: RunningApp) -> None:
    # Each 429 asks for a second's wait: the ephemeral fails after two retries, the DM
    # gets through on its second try. Answering only afterwards took over three seconds.
    app.slack.fail_next(3, status=429, retry_after=1, method="chat.postEphemeral")
    app.slack.fail_next(1, status=429, retry_after=1, method="chat.postMessage")
    assert _submit_new_deal_within_slacks_deadline(app) == 200
    app.listeners.wait_until_idle()
    assert app.row_counts()["deals"] == 1
    dms = app.slack.calls_to("chat.postMessage")
    assert len(dms) == 1 and "Initech" in dms[0].args["text"]


def test_new_deal_form_answers_200_when_slack_refuses_every_confirmation(
    app: RunningApp,
) -> None:
    # This used to be a 500 after the deal was saved, so the rep submitted it again.
    app.slack.fail_next(3, status=429, retry_after=0, method="chat.postEphemeral")
    app.slack.fail_next(3, status=429, retry_after=0, method="chat.postMessage")
    assert _submit_new_deal_within_slacks_deadline(app) == 200
    app.listeners.wait_until_idle()
    assert app.row_counts()["deals"] == 1


def _command_within_slacks_deadline(app: RunningApp, text: str, *, user: str) -> dict[str, Any]:
    """Send `/deal`-family text as Slack does; fail if no answer comes within 3 s."""
    command, _, rest = text.partition(" ")
    body = slash_command_body(
        command, rest, user_id=user, response_url=app.slack.response_url_for("command")
    )
    status, _, raw = post_signed(app.url, body, SIGNING_SECRET, timeout=SLACKS_DEADLINE_SECONDS)
    assert status == 200
    app.listeners.wait_until_idle()
    return json.loads(raw) if raw.strip() else {}


def test_deal_with_no_text_answers_in_time_when_views_open_is_slow(app: RunningApp) -> None:
    # views.open answering after 2.5 s, then retried, took the command past Slack's 3 s.
    app.slack.slow_next(2, seconds=2.5, method="views.open")
    reply = _command_within_slacks_deadline(app, "/deal", user="U0ANA")
    assert reply["response_type"] == "ephemeral"
    assert "did not open the new deal form in time" in reply["text"]
    assert "/deal new" in reply["text"]


def test_deal_won_answers_in_time_when_views_open_is_rate_limited(app: RunningApp) -> None:
    # A 429 asking for 5 s was waited out twice before the command could answer.
    app.command("/deal", "new Initech 50k")
    app.slack.fail_next(3, status=429, retry_after=5, method="views.open")
    reply = _command_within_slacks_deadline(app, "/deal won initech", user="U0ANA")
    assert "Initech" in reply["text"]
    assert app.deal_named("Initech").status == "won"


def test_an_admin_check_slack_is_slow_to_answer_is_said_not_refused_nor_waited_out(
    app: RunningApp,
) -> None:
    app.slack.slow_next(1, seconds=2.5, method="users.info")
    reply = _command_within_slacks_deadline(
        app, "/dealbot team create West <#C0SALES|sales>", user="U0ADMIN"
    )
    assert "did not say in time whether you are a workspace admin" in reply["text"]
    assert "only" not in reply["text"].lower()  # not "only admins may…": we do not know yet
    assert app.row_counts()["teams"] == 0

    again = _command_within_slacks_deadline(
        app, "/dealbot team create West <#C0SALES|sales>", user="U0ADMIN"
    )
    assert "West" in again["text"] and app.row_counts()["teams"] == 1
