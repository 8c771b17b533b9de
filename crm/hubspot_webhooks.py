"""HubSpot webhooks: the v3 signature check, and the deals a delivery names.

HubSpot signs each delivery with `X-HubSpot-Signature-v3`: the base64 HMAC-SHA256, keyed
with the app's client secret, of method + URI + body + `X-HubSpot-Request-Timestamp`
(milliseconds since the epoch), where the URI is the full one HubSpot called (scheme, host,
path, query) with a few URL-encoded characters decoded. A delivery older than five minutes
is refused, so a captured one cannot be replayed later.

The route answers at once and leaves the pulling to a background thread: HubSpot counts a
slow answer as a failed delivery and retries it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from domain.clock import Clock

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_AGE = dt.timedelta(minutes=5)
# HubSpot's v3 instructions: these URL-encoded characters are decoded in the URI before it
# is signed; nothing else is.
_DECODED_IN_URI = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ENCODED = re.compile("|".join(_DECODED_IN_URI), re.IGNORECASE)
# The CRM object type id of deals, as newer "object.*" subscriptions name it.
DEAL_OBJECT_TYPE = "0-3"

WSGIStartResponse = Callable[..., Any]


def signed_uri(uri: str) -> str:
    """Return `uri` as HubSpot signs it: the listed URL-encoded characters decoded."""
    return _ENCODED.sub(lambda match: _DECODED_IN_URI[match.group(0).upper()], uri)


def v3_signature(*, secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """Return the `X-HubSpot-Signature-v3` value HubSpot sends for this request."""
    source = method.upper().encode() + signed_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode("utf-8"), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_v3(
    *,
    secret: str,
    method: str,
    uris: Sequence[str],
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: dt.datetime,
) -> bool:
    """Return whether the delivery is HubSpot's, signed within the last five minutes."""
    if not signature or not timestamp or not timestamp.isdigit() or len(timestamp) > 16:
        return False
    sent_at = dt.datetime.fromtimestamp(int(timestamp) / 1000, tz=dt.UTC)
    # A timestamp far ahead is refused too: it would stay "fresh" for as long as it likes.
    if abs(now - sent_at) > MAX_AGE:
        return False
    given = signature.strip().encode("ascii", "replace")
    matches = [
        # Constant time: how much of a guess matched must not show in how long it takes;
        # every candidate is compared, so neither does which one matched.
        hmac.compare_digest(
            v3_signature(
                secret=secret, method=method, uri=uri, body=body, timestamp=timestamp
            ).encode("ascii"),
            given,
        )
        for uri in uris
    ]
    return any(matches)


def deal_ids(events: Iterable[object]) -> tuple[str, ...]:
    """Return the ids of the deals these webhook events are about, each once, in order."""
    found: dict[str, None] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = str(event.get("subscriptionType") or "")
        is_deal = kind.startswith("deal.") or (
            kind.startswith("object.") and str(event.get("objectTypeId")) == DEAL_OBJECT_TYPE
        )
        object_id = event.get("objectId")
        if is_deal and isinstance(object_id, int | str) and str(object_id).isdigit():
            found[str(object_id)] = None
    return tuple(found)


def request_uris(environ: dict[str, Any]) -> tuple[str, ...]:
    """Return the full URIs HubSpot may have called to reach this request, likeliest first.

    Behind a TLS-terminating proxy the server sees plain HTTP (and waitress drops untrusted
    X-Forwarded-* headers), while HubSpot signed the https URI: both schemes are tried, on
    the Host the proxy passed (and X-Forwarded-Host when it arrives). Trying several is
    safe, as each still needs the app's secret to match.
    """
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    forwarded = str(environ.get("HTTP_X_FORWARDED_PROTO") or "").split(",")[0].strip()
    schemes = dict.fromkeys(s for s in (forwarded, scheme, "https", "http") if s)
    hosts = [
        str(value).split(",")[0].strip()
        for value in (environ.get("HTTP_X_FORWARDED_HOST"), environ.get("HTTP_HOST"))
        if value
    ] or [f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"]
    path = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}"
    query = environ.get("QUERY_STRING")
    tail = f"{path}?{query}" if query else path
    return tuple(
        dict.fromkeys(f"{each}://{host}{tail}" for host in dict.fromkeys(hosts) for each in schemes)
    )


class HubSpotWebhooks:
    """The WSGI app of POST /crm/hubspot/webhooks.

    `on_deals` pulls the named deals (`CrmSync.pull_deals`); it runs on `executor`, one
    delivery after another by default, after HubSpot has had its 200. The body is read
    as the server capped it; it is never logged.
    """

    def __init__(
        self,
        *,
        secret: str,
        clock: Clock,
        on_deals: Callable[[Sequence[str]], object],
        executor: Executor | None = None,
    ) -> None:
        self._secret = secret
        self.clock = clock
        self.on_deals = on_deals
        self.executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="dealbot-hubspot-webhook"
        )

    def __call__(self, environ: dict[str, Any], start_response: WSGIStartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start_response, "405 Method Not Allowed", "POST only")
        body = _body(environ)
        valid = is_valid_v3(
            secret=self._secret,
            method="POST",
            uris=request_uris(environ),
            body=body,
            timestamp=environ.get("HTTP_X_HUBSPOT_REQUEST_TIMESTAMP"),
            signature=environ.get("HTTP_X_HUBSPOT_SIGNATURE_V3"),
            now=self.clock.now(),
        )
        if not valid:
            logger.info("Refused a HubSpot webhook: bad signature or stale timestamp")
            return _answer(start_response, "401 Unauthorized", "invalid signature")
        try:
            events = json.loads(body)
        except ValueError:  # not JSON, or not UTF-8
            return _answer(start_response, "400 Bad Request", "malformed body")
        if not isinstance(events, list):
            return _answer(start_response, "400 Bad Request", "expected a list of events")
        ids = deal_ids(events)
        if ids:
            self.executor.submit(self._pull, ids)
        return _answer(start_response, "200 OK", "ok")

    def _pull(self, ids: tuple[str, ...]) -> None:
        try:
            self.on_deals(ids)
        except Exception:
            # The next scheduled pull picks these deals up anyway.
            logger.exception("pulling %d deal(s) named by a HubSpot webhook failed", len(ids))


def _body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if stream is None or not declared.isdigit():
        return b""
    data: bytes = stream.read(int(declared))
    return data


def _answer(start_response: WSGIStartResponse, status: str, text: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode("utf-8")]
