"""A fake of Gmail's API and Google's OAuth endpoints on 127.0.0.1, for the real client library.

google-api-python-client, built from its shipped discovery document with
`client_options={"api_endpoint": fake.base_url}`, talks to this server exactly as it talks to
Google: `POST /gmail/v1/users/me/drafts`, `GET …/drafts?q=rfc822msgid:…`, `GET …/profile`.
The fake decodes every draft's raw RFC 2822 message so tests assert on what a rep would see.

It also plays Google's OAuth server: a consent endpoint that approves at once (PKCE S256
checked at the token exchange), a token endpoint for authorization codes, refresh tokens
and service-account JWTs (domain-wide delegation), and revocation of a refresh token.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

COMPOSE = "https://www.googleapis.com/auth/gmail.compose"


@dataclass(frozen=True)
class StoredDraft:
    draft_id: str
    message_id: str  # Gmail's id of the draft's message
    thread_id: str
    mailbox: str
    raw: bytes

    @property
    def mime(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)  # type: ignore[return-value]

    @property
    def body(self) -> str:
        part = self.mime.get_body(preferencelist=("plain",))
        assert part is not None, "the draft has no text/plain part"
        return str(part.get_content()).replace("\r\n", "\n")

    def header(self, name: str) -> str | None:
        value = self.mime[name]
        return None if value is None else str(value)


@dataclass
class _Grant:
    user_email: str
    scope: str
    revoked: bool = False


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    drafts: list[StoredDraft] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, list[str]], bytes]] = field(default_factory=list)
    # (path prefix, status, the error's reason or None)
    faults: deque[tuple[str, int, str | None]] = field(default_factory=deque)
    codes: dict[str, tuple[str, str, str]] = field(
        default_factory=dict
    )  # code -> user, challenge, redirect
    refresh_tokens: dict[str, _Grant] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)  # token -> mailbox
    delegated: set[str] = field(default_factory=set)
    token_grants: list[str] = field(default_factory=list)  # grant_type of each token request
    consent_user: str = "ana@initech-sales.example"
    granted_scope: str = COMPOSE
    threads: set[str] = field(default_factory=set)


class FakeGmail:
    """Threaded fake of the Gmail API and Google's OAuth endpoints."""

    CLIENT_ID = "fake-client.apps.googleusercontent.com"
    CLIENT_SECRET = "fake-client-secret"

    def __init__(self) -> None:
        self._state = _State()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> Self:
        fake = self

        class Handler(_Handler):
            gmail = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """Return what GMAIL_API_URL (the client's api_endpoint) should be."""
        return self.origin + "/"

    @property
    def token_uri(self) -> str:
        return self.origin + "/token"

    def oauth_client_config(self, redirect_uri: str) -> dict[str, Any]:
        """Return a client-secrets JSON for a *Web application* pointing at this fake."""
        return {
            "web": {
                "client_id": self.CLIENT_ID,
                "client_secret": self.CLIENT_SECRET,
                "auth_uri": self.origin + "/o/oauth2/auth",
                "token_uri": self.token_uri,
                "redirect_uris": [redirect_uri],
            }
        }

    # --- configuration ---

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 429,
        path: str = "/gmail/",
        reason: str | None = None,
    ) -> None:
        """Answer the next `count` requests under `path` with an HTTP error.

        `reason` goes in `error.errors[0].reason`, as Google says which 403 it is
        (`userRateLimitExceeded`, `insufficientPermissions`, ...).
        """
        with self._state.lock:
            self._state.faults.extend((path, status, reason) for _ in range(count))

    def consent_as(self, email: str, *, scope: str = COMPOSE) -> None:
        """Set who approves the next consent screen, and which scopes they tick."""
        with self._state.lock:
            self._state.consent_user = email
            self._state.granted_scope = scope

    def issue_refresh_token(self, email: str) -> str:
        """Return a refresh token for `email`, as if they had connected earlier."""
        token = "1//refresh-" + secrets.token_urlsafe(16)
        with self._state.lock:
            self._state.refresh_tokens[token] = _Grant(email, COMPOSE)
        return token

    def revoke_all(self, email: str) -> None:
        """Revoke every grant of `email` (the user removed the app in their Google account)."""
        with self._state.lock:
            for grant in self._state.refresh_tokens.values():
                if grant.user_email == email:
                    grant.revoked = True
            for token, mailbox in list(self._state.access_tokens.items()):
                if mailbox == email:
                    del self._state.access_tokens[token]

    def allow_delegation(self, email: str) -> None:
        """Let the service account act as `email` (the admin's domain-wide delegation)."""
        with self._state.lock:
            self._state.delegated.add(email)

    def delete_threads(self) -> None:
        """Forget every thread (the rep deleted the conversations in Gmail)."""
        with self._state.lock:
            self._state.threads.clear()

    # --- what happened ---

    @property
    def drafts(self) -> list[StoredDraft]:
        with self._state.lock:
            return list(self._state.drafts)

    def requests_to(self, method: str, path_prefix: str) -> list[dict[str, list[str]]]:
        """Return the query parameters of each request `method path_prefix…` (faults included)."""
        with self._state.lock:
            return [
                query
                for m, path, query, _ in self._state.requests
                if m == method and path.startswith(path_prefix)
            ]

    def created_messages(self) -> list[dict[str, Any]]:
        """Return the `message` of each drafts.create request's JSON body, faults included."""
        with self._state.lock:
            return [
                json.loads(body)["message"]
                for method, path, _, body in self._state.requests
                if method == "POST" and path == "/gmail/v1/users/me/drafts"
            ]

    @property
    def token_grants(self) -> list[str]:
        with self._state.lock:
            return list(self._state.token_grants)

    @property
    def refresh_tokens(self) -> list[str]:
        """Return every refresh token this fake Google has issued, in order."""
        with self._state.lock:
            return list(self._state.refresh_tokens)

    # --- the server side (called from request threads) ---

    def _store(self, raw: bytes, mailbox: str, thread_id: str | None) -> StoredDraft:
        number = next(self._ids)
        thread = thread_id or f"thread{number:04d}"
        self._state.threads.add(thread)
        draft = StoredDraft(
            draft_id=f"r-{number:04d}",
            message_id=f"msg{number:04d}",
            thread_id=thread,
            mailbox=mailbox,
            raw=raw,
        )
        self._state.drafts.append(draft)
        return draft

    def _take_fault(self, path: str) -> tuple[int, str | None] | None:
        with self._state.lock:
            for index, (prefix, status, reason) in enumerate(self._state.faults):
                if path.startswith(prefix):
                    del self._state.faults[index]
                    return status, reason
        return None

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        with self._state.lock:
            self._state.requests.append((method, path, query, body))
        fault = self._take_fault(path)
        if fault is not None:
            status, reason = fault
            error: dict[str, Any] = {"code": status, "message": "injected fault"}
            if reason is not None:
                error["errors"] = [{"reason": reason}]
            return status, {"error": error}, {}
        if path == "/o/oauth2/auth":
            return self._consent(query)
        if path == "/token":
            return self._token(parse_qs(body.decode()), headers)
        if path.startswith("/gmail/v1/users/me/"):
            return self._gmail(
                method, path.removeprefix("/gmail/v1/users/me/"), query, headers, body
            )
        return 404, {"error": {"code": 404, "message": "not found"}}, {}

    def _consent(self, query: dict[str, list[str]]) -> tuple[int, None, dict[str, str]]:
        def one(name: str) -> str:
            return (query.get(name) or [""])[0]

        assert one("client_id") == self.CLIENT_ID
        assert one("code_challenge_method") == "S256", "PKCE must use S256"
        assert one("access_type") == "offline"
        assert one("scope") == COMPOSE, f"dealbot asked for {one('scope')!r}"
        code = "4/code-" + secrets.token_urlsafe(12)
        with self._state.lock:
            self._state.codes[code] = (
                self._state.consent_user,
                one("code_challenge"),
                one("redirect_uri"),
            )
        location = one("redirect_uri") + "?" + urlencode({"state": one("state"), "code": code})
        return 302, None, {"Location": location}

    def _token(
        self, form: dict[str, list[str]], headers: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        def one(name: str) -> str:
            return (form.get(name) or [""])[0]

        # Google takes the client's credentials in the body or as HTTP Basic auth.
        basic = (headers.get("Authorization") or "").removeprefix("Basic ")
        _, _, client_secret = base64.b64decode(basic).decode().partition(":")
        client_secret = one("client_secret") or client_secret

        grant_type = one("grant_type")
        with self._state.lock:
            self._state.token_grants.append(grant_type)
            if grant_type == "authorization_code":
                entry = self._state.codes.pop(one("code"), None)
                if entry is None:
                    return 400, {"error": "invalid_grant", "error_description": "Bad code"}, {}
                user, challenge, redirect_uri = entry
                verifier_hash = hashlib.sha256(one("code_verifier").encode()).digest()
                expected = base64.urlsafe_b64encode(verifier_hash).rstrip(b"=").decode()
                if expected != challenge or one("redirect_uri") != redirect_uri:
                    return 400, {"error": "invalid_grant", "error_description": "PKCE"}, {}
                if client_secret != self.CLIENT_SECRET:
                    return 401, {"error": "invalid_client"}, {}
                refresh = "1//refresh-" + secrets.token_urlsafe(16)
                self._state.refresh_tokens[refresh] = _Grant(user, self._state.granted_scope)
                access = self._access_token(user)
                return (
                    200,
                    {
                        "access_token": access,
                        "refresh_token": refresh,
                        "expires_in": 3599,
                        "scope": self._state.granted_scope,
                        "token_type": "Bearer",
                    },
                    {},
                )
            if grant_type == "refresh_token":
                grant = self._state.refresh_tokens.get(one("refresh_token"))
                if grant is None or grant.revoked:
                    return (
                        400,
                        {
                            "error": "invalid_grant",
                            "error_description": "Token has been expired or revoked.",
                        },
                        {},
                    )
                return (
                    200,
                    {
                        "access_token": self._access_token(grant.user_email),
                        "expires_in": 3599,
                        "scope": grant.scope,
                        "token_type": "Bearer",
                    },
                    {},
                )
            if grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                claims = _jwt_claims(one("assertion"))
                subject = claims.get("sub")
                if claims.get("scope") != COMPOSE or subject not in self._state.delegated:
                    return (
                        401,
                        {
                            "error": "unauthorized_client",
                            "error_description": "Client is unauthorized to retrieve access "
                            "tokens using this method.",
                        },
                        {},
                    )
                return (
                    200,
                    {"access_token": self._access_token(subject), "expires_in": 3599},
                    {},
                )
        return 400, {"error": "unsupported_grant_type"}, {}

    def _access_token(self, mailbox: str) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        self._state.access_tokens[token] = mailbox
        return token

    def _gmail(
        self, method: str, resource: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        authorization = headers.get("Authorization") or ""
        with self._state.lock:
            mailbox = self._state.access_tokens.get(authorization.removeprefix("Bearer "))
        if mailbox is None:
            return 401, {"error": {"code": 401, "message": "Invalid Credentials"}}, {}
        if resource == "profile" and method == "GET":
            return 200, {"emailAddress": mailbox, "messagesTotal": 0}, {}
        if resource == "drafts" and method == "POST":
            message = json.loads(body or b"{}").get("message") or {}
            raw = base64.urlsafe_b64decode(message["raw"].encode())
            thread_id = message.get("threadId")
            with self._state.lock:
                if thread_id and thread_id not in self._state.threads:
                    return 404, {"error": {"code": 404, "message": "Not Found"}}, {}
                draft = self._store(raw, mailbox, thread_id)
            return 200, _draft_json(draft), {}
        if resource == "drafts" and method == "GET":
            q = (query.get("q") or [""])[0]
            wanted = q.removeprefix("rfc822msgid:") if q.startswith("rfc822msgid:") else None
            found = [
                _draft_json(d)
                for d in self.drafts
                if d.mailbox == mailbox
                and (wanted is None or (d.header("Message-ID") or "").strip("<>") == wanted)
            ]
            return (
                200,
                (
                    {"drafts": found, "resultSizeEstimate": len(found)}
                    if found
                    else {"resultSizeEstimate": 0}
                ),
                {},
            )
        return 404, {"error": {"code": 404, "message": "not found"}}, {}


def _draft_json(draft: StoredDraft) -> dict[str, Any]:
    return {
        "id": draft.draft_id,
        "message": {"id": draft.message_id, "threadId": draft.thread_id, "labelIds": ["DRAFT"]},
    }


def _jwt_claims(assertion: str) -> dict[str, Any]:
    payload = assertion.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class _Handler(BaseHTTPRequestHandler):
    gmail: FakeGmail

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, extra = self.gmail.handle(
            method, parts.path, parse_qs(parts.query), self.headers, body
        )
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def follow_redirects(
    url: str, *, limit: int = 5, cookies: dict[str, dict[str, str]] | None = None
) -> Iterator[tuple[int, str, str]]:
    """Yield (status, location, body) for each hop of a browser following `url`'s redirects.

    `cookies` is the browser's jar (by host:port, then name), kept across calls when given;
    without it each call is a fresh browser that keeps cookies only across its own hops.
    """
    import http.client
    from http.cookies import SimpleCookie

    jar: dict[str, dict[str, str]] = {} if cookies is None else cookies
    for _ in range(limit):
        parts = urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        sent = jar.get(parts.netloc, {})
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in sent.items())} if sent else {}
        connection.request(
            "GET", parts.path + ("?" + parts.query if parts.query else ""), headers=headers
        )
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        location = response.getheader("Location") or ""
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                jar.setdefault(parts.netloc, {})[name] = morsel.value
        connection.close()
        yield response.status, location, body
        if response.status not in (301, 302, 303, 307) or not location:
            return
        url = location
