"""HTTP serving: the Bolt app under waitress, a production WSGI server, at POST /slack/events."""

from __future__ import annotations

import gc
import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.request.internals import (
    build_context,
    build_normalized_headers,
    extract_content_type,
    parse_body,
)
from sqlalchemy import text
from waitress import create_server, wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer

from storage.database import Database

logger = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
GOOGLE_OAUTH_PATHS = ("/oauth/google/start", "/oauth/google/callback")
HUBSPOT_WEBHOOKS_PATH = "/crm/hubspot/webhooks"
# Waitress threads serve requests; with process_before_response the listener runs in them.
SERVER_THREADS = 16
# Slack's biggest payloads (a modal's full state) are tens of kilobytes; anything past a
# megabyte is not from Slack and is refused before it is read.
MAX_BODY_BYTES = 1_000_000

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def build_wsgi_app(
    app: App | None,
    *,
    google_oauth: WSGIApp | None = None,
    hubspot_webhooks: WSGIApp | None = None,
    database: Database | None = None,
) -> WSGIApp:
    """Return the WSGI app: Slack's requests go to Bolt, /healthz answers load balancers.

    `google_oauth` serves the Gmail connect pages (/oauth/google/start and /callback)
    when reps connect Gmail with per-rep OAuth; `hubspot_webhooks` serves
    POST /crm/hubspot/webhooks when HUBSPOT_WEBHOOK_SECRET is set (404 otherwise). A body
    over MAX_BODY_BYTES is refused with 413 before it is read, whatever server runs this
    app. Without `app` (Socket Mode's side server) only those pages are served. `database`
    is what /healthz asks for a `SELECT 1`; without it only the process answers.
    """
    slack = SlackHTTPHandler(app, path=SLACK_EVENTS_PATH) if app is not None else None

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == "/healthz":
            return _health(start_response, database)
        try:
            body = read_capped_body(environ)
        except InvalidContentLength:
            return _plain(start_response, "400 Bad Request", "Bad Content-Length")
        if body is None:
            return _plain(start_response, "413 Payload Too Large", "Request body too large")
        # Whoever reads next reads the capped copy, with a length that matches it.
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        if google_oauth is not None and path in GOOGLE_OAUTH_PATHS:
            return google_oauth(environ, start_response)
        if hubspot_webhooks is not None and path == HUBSPOT_WEBHOOKS_PATH:
            return hubspot_webhooks(environ, start_response)
        if slack is None or path == HUBSPOT_WEBHOOKS_PATH:
            # No "Connection: close" here: waitress refuses hop-by-hop headers from apps.
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Not found"]
        return slack(environ, start_response)

    return wsgi


def build_side_pages(
    *, google_oauth: WSGIApp | None = None, hubspot_webhooks: WSGIApp | None = None
) -> WSGIApp:
    """Return the pages Socket Mode still serves over HTTP (Gmail connect, HubSpot webhooks)."""
    return build_wsgi_app(None, google_oauth=google_oauth, hubspot_webhooks=hubspot_webhooks)


class InvalidContentLength(ValueError):
    """The Content-Length header is not a number of bytes."""


def read_capped_body(environ: dict[str, Any], limit: int = MAX_BODY_BYTES) -> bytes | None:
    """Return the request body, or None when it is longer than `limit` bytes.

    A declared length over the limit is refused without reading a byte; a body of unknown
    length (chunked, on servers that pass it through) is read to at most one byte past it.
    """
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ.get("wsgi.input")
    if declared:
        if not declared.isdigit():
            raise InvalidContentLength(declared)
        length = int(declared)
        if length > limit:
            return None
        return stream.read(length) if stream is not None and length else b""
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    if stream is None or not (chunked or environ.get("wsgi.input_terminated")):
        return b""
    body: bytes = stream.read(limit + 1)
    return None if len(body) > limit else body


def _health(start_response: Callable[..., Any], database: Database | None) -> list[bytes]:
    """Answer 200 `{"ok": true}` once the database answers, else 503 `{"ok": false}`."""
    ok = True
    if database is not None:
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:  # any driver's error: the balancer needs 503, not a 500
            logger.warning("health check: the database did not answer (%s)", type(error).__name__)
            ok = False
    status = "200 OK" if ok else "503 Service Unavailable"
    start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
    return [json.dumps({"ok": ok}).encode()]


def _plain(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")])
    return [text.encode("utf-8")]


class SlackHTTPHandler(SlackRequestHandler):
    """Bolt's WSGI adapter, answering malformed requests with 4xx instead of a 500.

    Bolt parses the body before it checks anything and raises on what it cannot parse
    (a form sent as JSON, `payload=` that is not a JSON object, bytes that are not UTF-8),
    and the signature check raises on a timestamp that is not a number.
    """

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        headers = request.get_headers()
        normalized = build_normalized_headers(headers)
        timestamp = (normalized.get("x-slack-request-timestamp") or [""])[0]
        if timestamp and not timestamp.isdigit():
            logger.info("Refused a Slack request: its timestamp is not a number")
            return BoltResponse(status=401, body={"error": "invalid request"})
        try:
            raw_body = request.get_body()
            parsed = parse_body(raw_body, extract_content_type(normalized))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors.
            return BoltResponse(status=400, body={"error": "malformed request body"})
        if not isinstance(parsed, dict):
            return BoltResponse(status=400, body={"error": "malformed request body"})
        return self.app.dispatch(
            SlackFormRequest(body=raw_body, query=request.query_string, headers=headers)
        )


class SlackFormRequest(BoltRequest):
    """Bolt's request, with a form body that merely mentions "payload" read as a form.

    Bolt takes any form body containing the word "payload" for a click or a form, and
    finding no `payload` field reads it as empty, so `/nextstep acme send the payload spec`
    answered 404. Lazy listeners get a copy of the request, so the copy keeps this class.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.mode != "http" or self.body or not self.raw_body:
            return
        if self.content_type == "application/json" or self.raw_body.startswith("{"):
            return
        fields = dict(parse_qsl(self.raw_body, keep_blank_values=True))
        if "payload" not in fields:
            self.body = fields
            self.context = build_context(BoltContext(kwargs.get("context") or {}), fields)

    def to_copyable(self) -> SlackFormRequest:
        return SlackFormRequest(
            body=self.raw_body if self.mode == "http" else self.body,
            query=self.query,
            headers=self.headers,
            context=self.context.to_copyable(),
            mode=self.mode,
        )


def tune_gc_for_serving() -> None:
    """Make garbage collection pauses rarer once the app is loaded.

    Start-up objects (modules, the app, compiled statements) never die: freezing them keeps
    each collection from rescanning them, and a higher first threshold stops a collection
    landing inside nearly every request that builds a few hundred rows and blocks.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def make_server(
    wsgi: WSGIApp, *, host: str, port: int, threads: int = SERVER_THREADS
) -> BaseWSGIServer | MultiSocketServer:
    """Return a bound (not yet running) waitress server; port 0 picks a free one.

    Waitress buffers a whole body before the app sees it, so it is capped there too: a
    larger declared length, or a chunked body growing past the cap, gets 413 unread.
    """
    return create_server(
        wsgi,
        host=host,
        port=port,
        threads=threads,
        ident="dealbot",
        # Waitress refuses a body whose length is >= this, so the cap itself is allowed.
        max_request_body_size=MAX_BODY_BYTES + 1,
    )


class BackgroundServer:
    """A waitress server running in a thread, stoppable cleanly (tests, benchmarks, demo)."""

    # How long the loop may take to notice a stop request.
    POLL_SECONDS = 0.05

    def __init__(
        self,
        wsgi: WSGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        threads: int = SERVER_THREADS,
    ) -> None:
        self.server = make_server(wsgi, host=host, port=port, threads=threads)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dealbot-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.effective_port)  # type: ignore[union-attr]

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        # Our own loop rather than server.run(): closing sockets from another thread
        # while select() watches them breaks the loop, so they are closed here, after it.
        server_map = self.server._map  # type: ignore[union-attr]
        while not self._stopping.is_set():
            wasyncore.loop(timeout=self.POLL_SECONDS, map=server_map, count=1)
        wasyncore.close_all(server_map)
        self.server.task_dispatcher.shutdown()  # type: ignore[union-attr]

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
