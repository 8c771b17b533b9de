"""/deal followup and the deal card's button over real HTTP: outbox inline, Gmail by DM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot.fake_slack import FakeSlackWebAPI
from reminders.email.token_cipher import TokenCipher
from storage.follow_ups import FollowUpRepository
from storage.models import FollowUpTrigger
from tests.e2e.harness import NOW, RunningApp, block_actions, blocks_text, running_app
from tests.fakes.gmail_api import FakeGmail, follow_redirects

BUYER = 'buyer:"Bill Lumbergh &lt;<mailto:bill@initech.com|bill@initech.com>&gt;"'


def _people(slack: FakeSlackWebAPI) -> None:
    slack.set_user("U0ANA", name="ana", real_name="Ana Ruiz", email="ana@sales.example")
    slack.set_user("U0BEN", name="ben", real_name="Ben Okafor", email="ben@sales.example")


def _initech(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:discovery close:dec 15")
    app.command("/deal", f"initech stage:demo {BUYER}")


@pytest.fixture
def outbox_app(slack_api: FakeSlackWebAPI, tmp_path: Path) -> Iterator[tuple[RunningApp, Path]]:
    _people(slack_api)
    outbox = tmp_path / "outbox"
    with running_app(
        slack_api, f"sqlite:///{tmp_path / 'e2e.db'}", dealbot_outbox_dir=str(outbox)
    ) as app:
        _initech(app)
        yield app, outbox


def test_deal_followup_writes_the_draft_and_answers_with_it(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, outbox = outbox_app

    reply = app.command("/deal", "followup initech proposal_sent")
    again = app.command("/deal", "followup initech proposal_sent")

    assert reply.status == 200 and reply.is_private
    assert "*proposal sent* draft for *Initech*" in reply.all_text
    assert "*Subject:* Proposal for Initech" in reply.all_text
    assert "Saved as" in reply.all_text
    [draft] = outbox.glob("*.eml")
    text = draft.read_text()
    assert "To: Bill Lumbergh <bill@initech.com>" in text
    assert "From: Ana Ruiz <ana@sales.example>" in text
    # Asking again within the window links to that draft and asks; it makes no second one.
    assert "Make another?" in again.all_text and again.is_private
    assert f"Saved as `{draft}`" in again.all_text
    assert list(outbox.glob("*.eml")) == [draft]


def _click(app: RunningApp, button: dict[str, str], name: str) -> str:
    """Press a button of a private reply; return what replaced the reply."""
    status, _ = app.interact(
        block_actions(
            button["action_id"],
            button["value"],
            block_id="fresh_draft",
            response_url=app.slack.response_url_for(name),
        )
    )
    assert status == 200
    [response] = [r for r in app.slack.responses if r.name == name]
    assert response.body.get("replace_original") is True
    return blocks_text(response.body["blocks"])


def test_a_fresh_draft_is_linked_and_another_made_only_on_make_another(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, outbox = outbox_app
    first = app.command("/deal", "followup initech")
    [draft] = outbox.glob("*.eml")

    asked = app.command("/deal", "followup initech")

    assert "*discovery recap* draft for *Initech*" in first.all_text
    assert "A discovery recap draft for Initech to bill@initech.com was already made" in (
        asked.all_text
    )
    assert f"Saved as `{draft}`" in asked.all_text
    assert list(outbox.glob("*.eml")) == [draft]  # nothing made by asking

    kept = _click(app, asked.button("keep_follow_up"), "keep")
    assert "no new one was made" in kept
    assert list(outbox.glob("*.eml")) == [draft]

    made = _click(app, asked.button("make_another_follow_up"), "again")
    assert "*discovery recap* draft for *Initech* is ready" in made
    assert len(list(outbox.glob("*.eml"))) == 2
    # The same button pressed twice (a double click, a retried request) makes no third.
    twice = _click(app, asked.button("make_another_follow_up"), "again-twice")
    assert twice == made
    assert len(list(outbox.glob("*.eml"))) == 2
    # Asking after that links to the newest draft, and asks again.
    newest = max(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    again = app.command("/deal", "followup initech")
    assert "Make another?" in again.all_text and f"Saved as `{newest}`" in again.all_text
    assert len(list(outbox.glob("*.eml"))) == 2


def test_another_template_or_a_recipient_changed_since_is_not_asked_about(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, outbox = outbox_app
    app.command("/deal", "followup initech")

    other = app.command("/deal", "followup initech proposal_sent")
    app.command("/deal", 'initech champion:"Peter Gibbons <peter@initech.com>"')
    moved = app.command("/deal", "followup initech")

    assert "*proposal sent* draft for *Initech* is ready" in other.all_text
    assert "*discovery recap* draft for *Initech* is ready" in moved.all_text
    assert len(list(outbox.glob("*.eml"))) == 3


def test_make_another_on_someone_else_s_deal_is_refused_and_makes_nothing(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, outbox = outbox_app
    app.command("/deal", "followup initech")
    asked = app.command("/deal", "followup initech")
    button = asked.button("make_another_follow_up")

    status, _ = app.interact(
        block_actions(
            button["action_id"],
            button["value"],
            block_id="fresh_draft",
            response_url=app.slack.response_url_for("ben"),
            user="U0BEN",
        )
    )

    assert status == 200
    [response] = [r for r in app.slack.responses if r.name == "ben"]
    assert "only they, their manager or an admin can draft its follow-ups" in blocks_text(
        response.body["blocks"]
    )
    assert len(list(outbox.glob("*.eml"))) == 1


def test_a_forged_make_another_value_is_an_expired_button(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, outbox = outbox_app
    app.command("/deal", "followup initech")
    forged = {
        "action_id": "make_another_follow_up",
        "value": '{"command":"/deal","intent":"DeleteDeal","deal_id":1,"args":{"confirmed":true}}',
    }

    text = _click(app, forged, "forged")

    assert "expired" in text
    assert len(list(outbox.glob("*.eml"))) == 1
    assert "Initech" in app.command("/pipeline").all_text


def test_without_a_template_the_deal_s_stage_picks_one(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, _ = outbox_app

    reply = app.command("/deal", "followup initech")

    assert "*discovery recap* draft for *Initech*" in reply.all_text  # Initech is at demo


def test_an_unknown_template_is_refused_with_the_list(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, outbox = outbox_app

    reply = app.command("/deal", "followup initech thank_you")

    assert reply.is_private
    assert "no email template called “thank_you”" in reply.all_text
    assert "proposal_sent" in reply.all_text and "re_engage" in reply.all_text
    assert not outbox.exists() or list(outbox.glob("*.eml")) == []


def test_a_deal_with_nobody_to_write_to_says_how_to_add_someone(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, _ = outbox_app
    app.command("/deal", "new Globex 20k")

    reply = app.command("/deal", "followup globex")

    assert "no contact with an email address" in reply.all_text
    assert 'contact:"' in reply.all_text
    with app.database.session() as session:
        assert session.scalar(select(func.count()).select_from(FollowUpTrigger)) == 0


def test_the_deal_card_button_drafts_the_follow_up(outbox_app: tuple[RunningApp, Path]) -> None:
    app, outbox = outbox_app
    card = app.command("/deal", "show initech")
    button = card.button("draft_follow_up")

    status, _ = app.interact(
        block_actions(
            "draft_follow_up",
            button["value"],
            block_id="deal_actions",
            response_url=app.slack.response_url_for("draft"),
        )
    )

    assert status == 200
    [response] = [r for r in app.slack.responses if r.name == "draft"]
    assert "draft for *Initech* is ready" in blocks_text(response.body["blocks"])
    assert len(list(outbox.glob("*.eml"))) == 1


SECRET = Fernet.generate_key().decode()


@pytest.fixture
def gmail_app(
    slack_api: FakeSlackWebAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningApp, FakeGmail]]:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake Google is plain http
    _people(slack_api)
    with FakeGmail() as gmail:
        # The redirect URI names the public origin (https://… behind a proxy in production);
        # the test's browser swaps it for the app's local port.
        client_file = tmp_path / "client.json"
        client_file.write_text(
            json.dumps(gmail.oauth_client_config("http://x/oauth/google/callback"))
        )
        with running_app(
            slack_api,
            f"sqlite:///{tmp_path / 'e2e.db'}",
            dealbot_email_backend="gmail",
            google_oauth_client_file=str(client_file),
            dealbot_secret_key=SECRET,
            gmail_api_url=gmail.base_url,
        ) as app:
            _initech(app)
            yield app, gmail


def _wait_for_dm(app: RunningApp, user_id: str, *, containing: str) -> str:
    """Return the first DM to `user_id` containing `containing`, once the background is done.

    The draft is made on Bolt's listener pool, the one every end-to-end test waits on.
    """
    app.listeners.wait_until_idle()
    for call in app.slack.calls_to("chat.postMessage"):
        text = blocks_text(call.args.get("blocks") or [])
        if call.args["channel"] == user_id and containing in text:
            return text
    raise AssertionError(f"no DM to {user_id} containing {containing!r}")


def _connect_ana(app: RunningApp, gmail: FakeGmail) -> None:
    """Store Ana's Gmail grant as if she had connected."""
    token = gmail.issue_refresh_token("ana@sales.example")
    with app.database.session() as session:
        FollowUpRepository(session).put_grant(
            user_id="U0ANA",
            email="ana@sales.example",
            refresh_token_encrypted=TokenCipher.from_setting(SECRET).encrypt(token),
            scopes="https://www.googleapis.com/auth/gmail.compose",
            at=NOW,
        )


def test_a_gmail_draft_is_made_in_the_background_and_its_link_dmed(
    gmail_app: tuple[RunningApp, FakeGmail],
) -> None:
    app, gmail = gmail_app
    _connect_ana(app, gmail)

    reply = app.command("/deal", "followup initech proposal_sent")

    assert reply.is_private and "Drafting the *proposal sent* email" in reply.all_text
    dm = _wait_for_dm(app, "U0ANA", containing="Open the draft in Gmail")
    [draft] = gmail.drafts
    assert f"https://mail.google.com/mail/u/0/#drafts?compose={draft.message_id}" in json.dumps(
        app.slack.calls_to("chat.postMessage")[-1].args
    )
    assert "Proposal for Initech" in dm
    assert draft.header("To") == "Bill Lumbergh <bill@initech.com>"
    assert draft.header("From") == "Ana Ruiz <ana@sales.example>"
    assert draft.header("Subject") == "Proposal for Initech"


def test_over_a_fresh_gmail_draft_make_another_drafts_in_the_background(
    gmail_app: tuple[RunningApp, FakeGmail],
) -> None:
    app, gmail = gmail_app
    _connect_ana(app, gmail)
    app.command("/deal", "followup initech proposal_sent")
    _wait_for_dm(app, "U0ANA", containing="Open the draft in Gmail")
    [first] = gmail.drafts

    asked = app.command("/deal", "followup initech proposal_sent")

    assert "Make another?" in asked.all_text
    link = f"https://mail.google.com/mail/u/0/#drafts?compose={first.message_id}"
    assert link in json.dumps(asked.blocks)
    assert len(gmail.drafts) == 1

    made = _click(app, asked.button("make_another_follow_up"), "again")

    assert "Drafting the *proposal sent* email for *Initech*" in made
    _wait_for_dm(app, "U0ANA", containing=gmail.drafts[-1].message_id)
    one, two = gmail.drafts
    assert two.header("In-Reply-To") == one.header("Message-ID")
    assert two.header("Subject") == "Proposal for Initech"


def test_a_rep_without_gmail_is_offered_a_connect_link_served_by_the_app(
    gmail_app: tuple[RunningApp, FakeGmail],
) -> None:
    app, gmail = gmail_app
    gmail.consent_as("ana.ruiz@workspace.example")

    reply = app.command("/deal", "followup initech")

    assert "Connect Gmail" in reply.all_text
    link = reply.all_text.split("<", 1)[1].split("|", 1)[0]
    assert link.startswith("http://x/oauth/google/start?state=")
    # Open it on the app's own server: Google's consent, back to the callback, connected.
    origin = app.url.removesuffix("/slack/events")
    browser: dict[str, dict[str, str]] = {}
    hops = list(follow_redirects(origin + link.removeprefix("http://x"), limit=2, cookies=browser))
    assert hops[0][0] == 302 and hops[1][0] == 302
    callback = origin + hops[1][1].removeprefix("http://x")
    [(status, _, page)] = list(follow_redirects(callback, cookies=browser))
    assert status == 200 and "Gmail connected" in page
    with app.database.session() as session:
        grant = FollowUpRepository(session).grant_for("U0ANA")
        assert grant is not None and grant.email == "ana.ruiz@workspace.example"
