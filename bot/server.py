"""HTTP serving: the Bolt app under waitress, a production WSGI server, at POST /slack/events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress import create_server
from waitress.server import BaseWSGIServer, MultiSocketServer

logger = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
# Waitress threads serve requests; with process_before_response the listener runs in them.
SERVER_THREADS = 16

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def build_wsgi_app(app: App) -> WSGIApp:
    """Return the WSGI app: Slack's requests go to Bolt, /healthz answers load balancers."""
    slack = SlackRequestHandler(app, path=SLACK_EVENTS_PATH)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok"]
        return slack(environ, start_response)

    return wsgi


def make_server(
    wsgi: WSGIApp, *, host: str, port: int, threads: int = SERVER_THREADS
) -> BaseWSGIServer | MultiSocketServer:
    """Return a bound (not yet running) waitress server; port 0 picks a free one."""
    return create_server(wsgi, host=host, port=port, threads=threads, ident="dealbot")
