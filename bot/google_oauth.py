"""The Gmail connect pages: GET /oauth/google/start and /oauth/google/callback.

The start page turns a single-use connect link into a redirect to Google's consent screen
(with a PKCE challenge made on the first open only) and gives the browser a cookie; the
callback, from that browser only, exchanges the code once and stores the grant.
Neither page ever shows, logs or echoes a token or a code.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from reminders.email.google_auth import (
    BROWSER_COOKIE,
    CALLBACK_PATH,
    FLOW_TTL,
    START_PATH,
    ConnectError,
    OAuthMailboxes,
)

logger = logging.getLogger(__name__)

PATHS = (START_PATH, CALLBACK_PATH)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dealbot · {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34em;margin:4em auto;padding:0 1em}}
</style></head><body><h1>{title}</h1><p>{message}</p></body></html>"""

# The callback URL carries the authorisation code: keep it out of caches and referrers.
_PRIVATE_HEADERS = [("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")]


def google_oauth_wsgi(
    connect: OAuthMailboxes,
) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """Return the WSGI app serving the two Gmail connect pages."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _page(start_response, "405 Method Not Allowed", "Not allowed", "Use GET.")
        query = parse_qs(environ.get("QUERY_STRING") or "")
        state = (query.get("state") or [""])[0]
        try:
            if not state:
                raise ConnectError("This link is incomplete. Open the link dealbot sent again.")
            if environ.get("PATH_INFO") == START_PATH:
                started = connect.authorization_url(state)
                cookie = _browser_cookie(started.browser_key, connect.client.redirect_uri)
                start_response(
                    "302 Found",
                    [("Location", started.url), ("Set-Cookie", cookie), *_PRIVATE_HEADERS],
                )
                return [b""]
            connected = connect.finish(
                state=state,
                code=(query.get("code") or [None])[0],
                error=(query.get("error") or [None])[0],
                browser_key=_cookie(environ, BROWSER_COOKIE),
            )
        except ConnectError as error:
            return _page(start_response, "400 Bad Request", "Gmail not connected", error.problem)
        except Exception:
            logger.exception("the Gmail connect flow failed")
            return _page(
                start_response,
                "500 Internal Server Error",
                "Gmail not connected",
                "Something went wrong on our side. Please open the link from Slack again.",
            )
        mailbox = f" ({connected.email})" if connected.email else ""
        return _page(
            start_response,
            "200 OK",
            "Gmail connected",
            f"dealbot will put follow-up drafts in your mailbox{mailbox}. It never sends "
            "anything: you review each draft and send it yourself. Drafts that were waiting "
            "are made on the next run, within 15 minutes. You can close this tab.",
        )

    return wsgi


def _browser_cookie(browser_key: str, redirect_uri: str) -> str:
    """Return the Set-Cookie value binding a sign-in to this browser until it times out."""
    # Lax, not Strict: Google's redirect back is a cross-site top-level GET that must carry it.
    cookie = (
        f"{BROWSER_COOKIE}={browser_key}; Path=/oauth/google; "
        f"Max-Age={int(FLOW_TTL.total_seconds())}; HttpOnly; SameSite=Lax"
    )
    return cookie + "; Secure" if redirect_uri.startswith("https://") else cookie


def _cookie(environ: dict[str, Any], name: str) -> str | None:
    """Return the value of one request cookie, or None (a malformed header counts as none)."""
    try:
        morsel = SimpleCookie(environ.get("HTTP_COOKIE") or "").get(name)
    except CookieError:
        return None
    return morsel.value if morsel is not None else None


def _page(
    start_response: Callable[..., Any], status: str, title: str, message: str
) -> Iterable[bytes]:
    body = _PAGE.format(title=html.escape(title), message=html.escape(message)).encode()
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *_PRIVATE_HEADERS,
        ],
    )
    return [body]
