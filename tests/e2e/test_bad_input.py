"""Bad input gets a short private message naming the problem, and writes nothing."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from storage.models import Contact
from tests.e2e.harness import SIGNING_SECRET, RunningApp, blocks_text
from tests.e2e.test_deal_flow import _new_deal_submission
from tests.e2e.test_sharing import _click, _share_button
from tests.fakes.slack_signing import post_signed, slash_command_body

# (command, text, a word the message must contain): every one must be refused politely.
MALFORMED = [
    ("/deal", "new", "account"),
    ("/deal", "new Initech amount:lots", "lots"),
    ("/deal", "new Initech 50k stage:won", "won"),
    ("/deal", "new Initech stage:nosuchstage", "nosuchstage"),
    ("/deal", "new Initech close:someday", "someday"),
    ("/deal", "new Initech close:2026-02-30", "2026-02-30"),
    ("/deal", "new Initech close:3/4", "3/4"),
    ("/deal", "new Initech forecast:maybe", "maybe"),
    ("/deal", "new Initech -50k", "50"),
    ("/deal", "new Initech 0", "0"),
    ("/deal", "new Initech 50k 60k", "60k"),
    ("/deal", "new Initech stage:demo stage:proposal", "stage"),
    ("/deal", "new Initech colour:blue", "colour"),
    ("/deal", 'new "Initech', "quote"),
    ("/deal", "new " + "A" * 250, "200"),
    ("/deal", "new Initech criteria:" + '"' + "x" * 2100 + '"', "2000"),
    ("/deal", "new Initech amount:$1e5", "1e5"),
    ("/deal", "new Initech amount:99999999999999", "99999999999999"),
    ("/deal", "show", "deal"),
    ("/deal", "show nosuchdeal", "nosuchdeal"),
    ("/deal", "show #999", "#999"),
    ("/deal", "initech", "initech"),
    ("/deal", "lost initech", "lost"),
    ("/deal", "won", "deal"),
    ("/deal", "nosuchdeal stage:demo", "nosuchdeal"),
    ("/deal", "initech stage:closed_won", "won"),
    ("/deal", "initech buyer:", "buyer"),
    ("/nextstep", "initech Call Bill owner:<@U0BEN|ben> owner:<@U0ANA|ana>", "owner"),
    ("/nextstep", "initech", "what"),
    ("/nextstep", "initech Call Bill due:2026-10-01", "past"),
    ("/nextstep", "initech Call Bill due:whenever", "whenever"),
    ("/nextstep", "initech Call Bill owner:bill", "bill"),
    ("/nextstep", "done", "deal"),
    ("/nextstep", "done nosuchdeal", "nosuchdeal"),
    ("/nextstep", "initech " + "x" * 600, "500"),
    ("/pipeline", "everyone", "everyone"),
    ("/pipeline", "team nosuchteam", "nosuchteam"),
    ("/dealbot", "frobnicate", "frobnicate"),
    ("/dealbot", "team create", "name"),
    ("/dealbot", "team create Enterprise sales", "channel"),
    ("/dealbot", "team create Enterprise <#C1|sales> tz:Mars/Olympus", "Mars/Olympus"),
    ("/dealbot", "team add Enterprise boss <@U0BEN|ben>", "boss"),
    ("/dealbot", "team add Enterprise rep ben", "ben"),
    ("/dealbot", "team quota Enterprise <@U0BEN|ben> lots", "lots"),
    ("/dealbot", "team quota Enterprise <@U0BEN|ben> 100k period:2026-Q5", "2026-Q5"),
    ("/dealbot", "team add nosuchteam rep <@U0BEN|ben>", "nosuchteam"),
    ("/deal", "new Initech\u0000 50k", "control"),
    ("/deal", "new Acme\u200b 50k", "U+200B"),
    ("/deal", 'initech title:"Renewal\u202e"', "U+202E"),
    ("/deal", 'initech contact:"Peter\u2060 Gibbons peter@initech.com"', "U+2060"),
    ("/dealbot", 'team create "East\ufeff" <#C1|sales>', "U+FEFF"),
]


@pytest.fixture
def app_with_a_deal(app: RunningApp) -> RunningApp:
    app.command("/deal", "new Initech 50k stage:demo close:dec 15")
    app.command("/dealbot", "team create Enterprise <#C0SALES|sales>", user="U0ROOT")
    return app


@pytest.mark.parametrize(
    ("command", "text", "named"), MALFORMED, ids=[f"{c} {t[:30]}" for c, t, _ in MALFORMED]
)
def test_malformed_input_is_answered_privately_and_changes_nothing(
    app_with_a_deal: RunningApp, command: str, text: str, named: str
) -> None:
    app = app_with_a_deal
    before = app.row_counts()
    reply = app.command(command, text)
    assert reply.status == 200
    assert reply.is_private
    assert reply.all_text.startswith(":warning:"), reply.all_text
    assert named.lower() in reply.text.lower(), reply.text
    assert "Traceback" not in reply.text and "Error" not in reply.text
    assert len(reply.text) < 600
    assert app.row_counts() == before


def test_unexpected_failure_says_nothing_was_saved(
    app_with_a_deal: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domain.deals import DealService

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(DealService, "pipeline", explode)
    reply = app_with_a_deal.command("/pipeline")
    assert reply.is_private
    assert "nothing was saved" in reply.text
    assert "fire" not in reply.text


def test_bad_signature_is_refused_with_401_and_changes_nothing(app: RunningApp) -> None:
    body = slash_command_body(
        "/deal", "new Initech 50k", user_id="U0ANA", response_url=app.slack.response_url_for("x")
    )
    status, _, _ = post_signed(app.url, body, "not-the-secret")
    assert status == 401
    assert app.row_counts()["deals"] == 0


def test_old_timestamp_is_refused_with_401_and_changes_nothing(app: RunningApp) -> None:
    body = slash_command_body(
        "/deal", "new Initech 50k", user_id="U0ANA", response_url=app.slack.response_url_for("x")
    )
    status, _, _ = post_signed(app.url, body, SIGNING_SECRET, timestamp=int(time.time()) - 600)
    assert status == 401
    assert app.row_counts()["deals"] == 0


def test_at_least_thirty_kinds_of_malformed_input_are_covered() -> None:
    assert len({(command, text) for command, text, _ in MALFORMED}) >= 30


# --- Text that travels ---------------------------------------------------------------------

# What Slack sends when a rep types `<!channel>` and `<@U0BEN>` as text: entity-escaped.
TYPED_CHANNEL = "&lt;!channel&gt;"
TYPED_MENTION = "&lt;@U0BEN&gt;"


def _every_text(body: dict) -> str:
    """Return the message's fallback text and all its blocks' text, as Slack would parse."""
    return body.get("text", "") + "\n" + blocks_text(body.get("blocks", []))


def test_the_shared_card_of_a_deal_named_channel_pings_nobody(app: RunningApp) -> None:
    created = app.command("/deal", f"new {TYPED_CHANNEL} 50k stage:demo")
    app.command("/deal", f'#1 title:"for {TYPED_MENTION}" criteria:"SSO {TYPED_CHANNEL}"')
    assert app.deal_named("<!channel>").title == "for <@U0BEN>"  # stored as typed
    shown = app.command("/deal", "show #1")
    _click(app, _share_button(shown.blocks))
    posted = app.slack.responses[-1].body
    assert posted["response_type"] == "in_channel"

    for body in (created.body or {}, shown.body or {}, posted):
        said = _every_text(body)
        assert "<!channel>" not in said and "<@U0BEN>" not in said, said
        assert "&lt;!channel&gt;" in said
    assert "&lt;@U0BEN&gt;" in _every_text(posted)
    assert "<!channel>" not in json.dumps(posted) and "<@U0BEN>" not in json.dumps(posted)


def test_the_pipeline_and_next_step_replies_escape_a_typed_channel_mention(
    app: RunningApp,
) -> None:
    app.command("/deal", f"new {TYPED_CHANNEL} 50k stage:demo")
    added = app.command("/nextstep", f"#1 call {TYPED_CHANNEL} due:fri")
    done = app.command("/nextstep", "done #1")
    pipeline = app.command("/pipeline")
    for reply in (added, done, pipeline):
        assert not reply.all_text.startswith(":warning:"), reply.all_text
        said = _every_text(reply.body or {})
        assert "<!channel>" not in said and "&lt;!channel&gt;" in said, said


def test_an_error_quoting_a_typed_mention_does_not_ping(app: RunningApp) -> None:
    reply = app.command("/deal", f"show {TYPED_CHANNEL}")
    assert reply.is_private and reply.all_text.startswith(":warning:")
    said = _every_text(reply.body or {})
    assert "<!channel>" not in said and "&lt;!channel&gt;" in said, said


def test_acme_with_a_zero_width_space_is_refused_not_a_second_acme(app: RunningApp) -> None:
    app.command("/deal", "new Acme 50k")
    before = app.row_counts()

    reply = app.command("/deal", "new Acme\u200b 20k")

    assert reply.is_private and reply.all_text.startswith(":warning:")
    assert "invisible character (U+200B ZERO WIDTH SPACE)" in reply.text
    assert app.row_counts() == before


def test_the_new_deal_form_refuses_an_account_with_a_bidi_override(app: RunningApp) -> None:
    app.command("/deal")
    view = app.slack.calls_to("views.open")[-1].args["view"]

    status, body = app.interact(_new_deal_submission(view, account="Acme\u202e", amount="10k"))

    assert status == 200 and body is not None and body["response_action"] == "errors"
    assert "U+202E" in body["errors"]["account"]
    assert app.row_counts()["deals"] == 0


@pytest.mark.parametrize("marked", ["*Acme*", "_Acme_", "~Acme~", "`Acme`"])
def test_a_deal_named_with_mrkdwn_marks_does_not_restyle_the_card(
    app: RunningApp, marked: str
) -> None:
    created = app.command("/deal", f"new {marked} 50k")
    assert app.deal_named(marked).account == marked  # stored exactly as typed
    shown = app.command("/deal", "show #1")
    pipeline = app.command("/pipeline")
    for reply in (created, shown, pipeline):
        # Slack formats the fallback text and every mrkdwn object; plain_text (the card's
        # header) shows its characters as they are.
        formatted = [reply.text, *_mrkdwn_texts(reply.blocks)]
        assert not any(marked in text for text in formatted), formatted
        assert any("Acme" in text for text in formatted[1:]), formatted


def _mrkdwn_texts(node: object) -> list[str]:
    """Return the text of every mrkdwn object under `node`."""
    if isinstance(node, list):
        return [text for item in node for text in _mrkdwn_texts(item)]
    if not isinstance(node, dict):
        return []
    own = [node["text"]] if node.get("type") == "mrkdwn" else []
    return own + [text for value in node.values() for text in _mrkdwn_texts(value)]


def test_a_buyer_typed_as_name_space_address_is_saved_as_name_and_email(
    app: RunningApp,
) -> None:
    app.command("/deal", "new Initech 50k")
    # What Slack sends for buyer:"Peter Gibbons peter@initech.com": the address linked.
    reply = app.command(
        "/deal",
        'initech buyer:"Peter Gibbons <mailto:peter@initech.com|peter@initech.com>" '
        'contact:"Samir Nagheenanajar samir@initech.com"',
    )

    assert not reply.all_text.startswith(":warning:"), reply.all_text
    with app.database.session() as session:
        people = {(c.name, c.email, c.role) for c in session.scalars(select(Contact))}
    assert people == {
        ("Peter Gibbons", "peter@initech.com", "economic_buyer"),
        ("Samir Nagheenanajar", "samir@initech.com", "other"),
    }
    card = app.command("/deal", "show initech").all_text
    assert "Peter Gibbons <mailto:peter@initech.com|peter@initech.com>" in card
