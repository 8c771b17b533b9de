"""HTTP serving: the Bolt app under waitress, a production WSGI server, at POST /slack/events."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress import create_server, wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer

logger = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
GOOGLE_OAUTH_PATHS = ("/oauth/google/start", "/oauth/google/callback")
# Waitress threads serve requests; with process_before_response the listener runs in them.
SERVER_THREADS = 16

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def build_wsgi_app(app: App, *, google_oauth: WSGIApp | None = None) -> WSGIApp:
    """Return the WSGI app: Slack's requests go to Bolt, /healthz answers load balancers.

    `google_oauth` serves the Gmail connect pages (/oauth/google/start and /callback)
    when reps connect Gmail with per-rep OAuth.
    """
    slack = SlackRequestHandler(app, path=SLACK_EVENTS_PATH)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok"]
        if google_oauth is not None and path in GOOGLE_OAUTH_PATHS:
            return google_oauth(environ, start_response)
        return slack(environ, start_response)

    return wsgi


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
    """Return a bound (not yet running) waitress server; port 0 picks a free one."""
    return create_server(wsgi, host=host, port=port, threads=threads, ident="dealbot")


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
