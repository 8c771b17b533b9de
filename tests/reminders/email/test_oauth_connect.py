"""Connecting Gmail per rep: the start and callback pages over HTTP, against a fake Google."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.google_oauth import google_oauth_wsgi
from bot.server import BackgroundServer
from domain.changes import DealRef
from domain.deals import Actor
from reminders.email.google_auth import OAuthMailboxes
from reminders.email.token_cipher import InvalidToken, TokenCipher
from storage.follow_ups import FollowUpRepository
from storage.models import GmailGrant, GoogleOAuthState
from tests.fakes.gmail_api import FakeGmail, follow_redirects
from tests.reminders.email.conftest import REDIRECT_URI, Drafting, on_both_backends


@pytest.fixture
def connect(
    drafting: Drafting, gmail: FakeGmail, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OAuthMailboxes]:
    """Yield the OAuth mailboxes whose start and callback pages run on a local server."""
    # oauthlib refuses plain-http token endpoints; the fake Google is on http://127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    pages: dict[str, Callable[..., Any]] = {}
    server = BackgroundServer(lambda environ, start: pages["wsgi"](environ, start)).start()
    oauth = drafting.oauth(
        gmail, redirect_uri=f"http://127.0.0.1:{server.port}/oauth/google/callback"
    )
    pages["wsgi"] = google_oauth_wsgi(oauth)
    try:
        yield oauth
    finally:
        server.stop()


def _grant(drafting: Drafting, user_id: str) -> GmailGrant | None:
    with drafting.database.session() as session:
        grant = FollowUpRepository(session).grant_for(user_id)
        if grant is not None:
            session.expunge(grant)
        return grant


@on_both_backends
def test_connecting_stores_the_refresh_token_encrypted_and_drafts_with_it(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    gmail.consent_as("ana.ruiz@gmail-workspace.example")
    link = connect.connect_link("U0ANA")

    hops = list(follow_redirects(link))

    assert [status for status, _, _ in hops] == [302, 302, 200]
    assert hops[0][1].startswith(gmail.origin + "/o/oauth2/auth?")
    assert "Gmail connected" in hops[-1][2]
    assert "ana.ruiz@gmail-workspace.example" in hops[-1][2]
    grant = _grant(drafting, "U0ANA")
    assert grant is not None and grant.email == "ana.ruiz@gmail-workspace.example"
    [issued] = gmail.refresh_tokens
    # At rest the column holds a Fernet token, never the refresh token itself.
    assert issued not in grant.refresh_token_encrypted
    assert drafting.cipher.decrypt(grant.refresh_token_encrypted) == issued
    with pytest.raises(InvalidToken):
        TokenCipher(secrets=[Fernet.generate_key().decode()]).decrypt(grant.refresh_token_encrypted)
    with drafting.database.session() as session:
        assert session.scalars(select(GoogleOAuthState)).all() == []  # consumed
    # The stored grant refreshes into an access token and the draft lands in that mailbox.
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, connect), connect=connect)
    outcome = follow_ups.draft(follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None))
    assert outcome.status == "drafted"
    assert gmail.token_grants == ["authorization_code", "refresh_token"]
    [draft] = gmail.drafts
    assert draft.mailbox == "ana.ruiz@gmail-workspace.example"
    assert draft.header("From") == "Ana Ruiz <ana.ruiz@gmail-workspace.example>"


@on_both_backends
def test_a_callback_is_honoured_once(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    browser: dict[str, dict[str, str]] = {}
    start = list(follow_redirects(connect.connect_link("U0ANA"), limit=2, cookies=browser))
    callback_url = start[1][1]  # where Google sends the browser back
    assert "/oauth/google/callback?" in callback_url

    first = list(follow_redirects(callback_url, cookies=browser))
    replay = list(follow_redirects(callback_url, cookies=browser))

    assert first[-1][0] == 200
    assert replay[-1][0] == 400 and "already used" in replay[-1][2]
    assert gmail.token_grants == ["authorization_code"]  # the replay never reached Google


@pytest.mark.parametrize(
    "query",
    [
        "state=forged-state&code=4/anything",  # a state we never issued
        "code=4/anything",  # no state at all
    ],
)
def test_a_callback_with_a_state_we_did_not_issue_is_refused(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes, query: str
) -> None:
    base = connect.client.redirect_uri

    [(status, _, body)] = list(follow_redirects(f"{base}?{query}"))

    assert status == 400 and "Gmail not connected" in body
    assert gmail.token_grants == []
    assert _grant(drafting, "U0ANA") is None


@on_both_backends
def test_a_state_with_a_nul_byte_is_refused_not_a_server_error(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    # PostgreSQL refuses a NUL in a text parameter: looking the state up raised, and a
    # forged link got a 500 page and a logged traceback where SQLite said 400.
    for page in (connect.client.start_url, connect.client.redirect_uri):
        [(status, _, body)] = list(follow_redirects(f"{page}?state=forged%00&code=4/x"))

        assert status == 400 and "Gmail not connected" in body
    assert gmail.token_grants == []


def test_a_callback_for_a_link_that_was_never_opened_is_refused(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    # The state exists (a DM'd link) but no PKCE verifier was ever made for it.
    link = connect.connect_link("U0ANA")
    state = link.split("state=")[1]

    [(status, _, _)] = list(
        follow_redirects(f"{connect.client.redirect_uri}?state={state}&code=4/x")
    )

    assert status == 400
    assert gmail.token_grants == []


@on_both_backends
def test_an_expired_connect_link_is_refused(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    link = connect.connect_link("U0ANA")
    drafting.clock.at += dt.timedelta(hours=25)

    [(status, _, body)] = list(follow_redirects(link))

    assert status == 400 and "expired" in body


def test_a_consent_without_the_compose_scope_stores_nothing(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    gmail.consent_as("ana@sales.example", scope="openid")

    hops = list(follow_redirects(connect.connect_link("U0ANA")))

    assert hops[-1][0] == 400 and "create drafts" in hops[-1][2]
    assert _grant(drafting, "U0ANA") is None


def test_the_user_declining_on_google_s_page_is_explained(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    browser: dict[str, dict[str, str]] = {}
    start = list(follow_redirects(connect.connect_link("U0ANA"), limit=1, cookies=browser))
    state = start[0][1].split("state=")[1].split("&")[0]

    [(status, _, body)] = list(
        follow_redirects(
            f"{connect.client.redirect_uri}?state={state}&error=access_denied", cookies=browser
        )
    )

    assert status == 400 and "access_denied" in body
    assert _grant(drafting, "U0ANA") is None


def test_the_callback_page_escapes_what_google_s_error_says(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    # `error` comes from the query string: anyone can put markup there and send the link.
    browser: dict[str, dict[str, str]] = {}
    start = list(follow_redirects(connect.connect_link("U0ANA"), limit=1, cookies=browser))
    state = start[0][1].split("state=")[1].split("&")[0]
    markup = quote("<script>alert(1)</script>")

    [(status, _, body)] = list(
        follow_redirects(
            f"{connect.client.redirect_uri}?state={state}&error={markup}", cookies=browser
        )
    )

    assert status == 400
    assert "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


@on_both_backends
def test_rotating_the_secret_key_keeps_every_grant_readable(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    drafting.cipher = TokenCipher(secrets=[old_key])
    token = drafting.connect_rep(gmail, "U0ANA")
    drafting.cipher = TokenCipher(secrets=[new_key, old_key])

    assert drafting.oauth(gmail).rotate_key() == 1

    grant = _grant(drafting, "U0ANA")
    assert grant is not None
    assert TokenCipher(secrets=[new_key]).decrypt(grant.refresh_token_encrypted) == token


def test_a_passphrase_too_short_for_a_key_is_refused() -> None:
    from reminders.email.token_cipher import SecretKeyError

    with pytest.raises(SecretKeyError):
        TokenCipher.from_setting("hunter2")
    assert (
        TokenCipher.from_setting("x" * 40).decrypt(TokenCipher.from_setting("x" * 40).encrypt("t"))
        == "t"
    )


def test_the_callback_page_never_shows_the_code(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    hops = list(follow_redirects(connect.connect_link("U0ANA")))
    code = hops[1][1].split("code=")[1]

    assert code not in hops[-1][2]
    with drafting.database.session() as session:
        stored = " ".join(
            str(value) for row in session.execute(select(GmailGrant)).all() for value in row
        )
    assert code not in stored


def test_dealbot_gmail_rotate_key_re_encrypts_the_stored_grants(
    drafting: Drafting,
    gmail: FakeGmail,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.cli import main

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    drafting.cipher = TokenCipher(secrets=[old_key])
    token = drafting.connect_rep(gmail, "U0ANA")
    client_file = tmp_path / "client.json"
    client_file.write_text(json.dumps(gmail.oauth_client_config(REDIRECT_URI)))
    monkeypatch.setenv("DATABASE_URL", str(drafting.database.engine.url))
    monkeypatch.setenv("DEALBOT_EMAIL_BACKEND", "gmail")
    monkeypatch.setenv("GOOGLE_OAUTH_CLIENT_FILE", str(client_file))
    monkeypatch.setenv("DEALBOT_SECRET_KEY", f"{new_key},{old_key}")

    assert main(["gmail", "rotate-key"]) == 0

    assert "re-encrypted 1 Gmail grant(s)" in capsys.readouterr().out
    grant = _grant(drafting, "U0ANA")
    assert grant is not None
    assert TokenCipher(secrets=[new_key]).decrypt(grant.refresh_token_encrypted) == token


@on_both_backends
def test_a_connect_link_opens_once_so_a_leaked_copy_cannot_replace_the_verifier(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    # Bug: every open of the start link made a new PKCE verifier, so whoever opened a leaked
    # link last took over the sign-in and the rep's own callback failed.
    gmail.consent_as("ana.ruiz@gmail-workspace.example")
    link = connect.connect_link("U0ANA")
    ana: dict[str, dict[str, str]] = {}
    [(status, to_google, _)] = list(follow_redirects(link, limit=1, cookies=ana))
    assert status == 302
    with drafting.database.session() as session:
        [row] = session.scalars(select(GoogleOAuthState)).all()
        verifier = row.code_verifier_encrypted

    [(again, location, page)] = list(follow_redirects(link, limit=1))

    assert again == 400 and not location
    assert "This connect link was already used" in page
    assert "ask for a new one with /deal followup &lt;deal&gt;" in page.lower()
    with drafting.database.session() as session:
        [row] = session.scalars(select(GoogleOAuthState)).all()
        assert row.code_verifier_encrypted == verifier
    # The rep's sign-in, started first, still completes.
    hops = list(follow_redirects(to_google, cookies=ana))
    assert hops[-1][0] == 200 and "Gmail connected" in hops[-1][2]
    grant = _grant(drafting, "U0ANA")
    assert grant is not None and grant.email == "ana.ruiz@gmail-workspace.example"


@on_both_backends
def test_a_callback_from_another_browser_stores_no_grant_for_the_rep(
    drafting: Drafting, gmail: FakeGmail, connect: OAuthMailboxes
) -> None:
    # Bug: the callback stored a grant for the link's rep from whatever browser finished the
    # sign-in, so a copy of the link let someone put their own mailbox behind the rep.
    gmail.consent_as("someone.else@gmail-workspace.example")
    opener: dict[str, dict[str, str]] = {}
    start = list(follow_redirects(connect.connect_link("U0ANA"), limit=2, cookies=opener))
    callback_url = start[1][1]

    elsewhere = list(follow_redirects(callback_url))  # a browser without the start's cookie

    assert elsewhere[-1][0] == 400 and "started in another browser" in elsewhere[-1][2]
    assert gmail.token_grants == []  # the code was never exchanged
    assert _grant(drafting, "U0ANA") is None
