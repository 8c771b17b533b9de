"""Evidence, not hope, over signed requests: cite a message for a deal (the message shortcut
and `/deal <deal> evidence <kind>: <link>`), the card shows it, and Commit needs it — on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.fake_slack import FakeSlackWebAPI
from domain.checks import DEFAULT_CHECKS_FILE, default_checks
from handlers import blocks
from storage.models import Deal, DealEvidence
from tests.databases import BACKENDS, database_url_for
from tests.e2e.harness import (
    NOW,
    RunningApp,
    block_actions,
    blocks_text,
    message_action,
    running_app,
    view_submission,
)

ANA, BEN, ADMIN = "U0ANA", "U0BEN", "U0ADMIN"
PERMALINK = "<https://dealbot-test.slack.com/archives/C0TEAM/p1700000000123457>"
GMAIL_LINK = "<https://mail.google.com/mail/u/0/#inbox/FMfcgzGtwzXYZabcdefgh>"
DANA_SAYS = {"ts": "1700000000.123456", "user": "U0DANA", "text": "I sign off on budget. — Dana"}


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def app(slack_api: FakeSlackWebAPI, database_url: str) -> Iterator[RunningApp]:
    slack_api.set_user(ANA, name="ana")
    slack_api.set_user(BEN, name="ben")
    slack_api.set_user(ADMIN, name="alice", is_admin=True)
    with running_app(slack_api, database_url) as running:
        yield running


def _citations(app: RunningApp) -> list[tuple[str, str, str, str | None, str]]:
    with app.database.session() as session:
        rows = session.scalars(select(DealEvidence).order_by(DealEvidence.id))
        return [(r.field, r.source, r.reference, r.excerpt, r.cited_by) for r in rows]


def _press_shortcut(app: RunningApp, *, user: str) -> dict[str, Any]:
    """Return the form the shortcut opened on Dana's message for `user`."""
    payload = message_action(
        blocks.CITE_EVIDENCE_SHORTCUT,
        DANA_SAYS,
        response_url=app.slack.response_url_for("shortcut"),
        user=user,
    )
    opened = len(app.slack.calls_to("views.open"))
    status, _ = app.interact(payload)
    assert status == 200
    assert len(app.slack.calls_to("views.open")) == opened + 1
    return app.slack.calls_to("views.open")[-1].args["view"]


def _submit(
    app: RunningApp, view: dict[str, Any], *, user: str, deal: str | None, kind: str | None
) -> dict[str, Any] | None:
    values = {
        "deal": {"value": {"type": "static_select", "selected_option": deal and {"value": deal}}},
        "kind": {"value": {"type": "static_select", "selected_option": kind and {"value": kind}}},
    }
    status, body = app.interact(view_submission(view, values, user=user))
    assert status == 200
    return body


def test_commit_is_refused_until_eb_process_and_paper_are_cited(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:proposal", user=ANA)
    deal_id = app.deal_named("Initech").id

    refused = app.command("/deal", "initech forecast:commit", user=ANA)
    assert refused.is_private
    assert (
        "Commit needs cited evidence for: economic buyer, decision process, paper process."
        in refused.all_text
    )
    assert "/deal Initech evidence eb: &lt;link&gt;" in refused.all_text
    assert "the message shortcut *Cite as deal evidence*" in refused.all_text
    assert app.deal_named("Initech").forecast_category == "pipeline"
    assert not [c for c in app.changes_of(deal_id) if c[0] == "forecast_category" and c[1]]

    # The message shortcut on Dana's message: pick the deal and "economic buyer".
    view = _press_shortcut(app, user=ANA)
    [permalink_call] = app.slack.calls_to("chat.getPermalink")
    assert permalink_call.args["channel"] == "C0TEAM"
    assert permalink_call.args["message_ts"] == DANA_SAYS["ts"]
    [deal_block] = [b for b in view["blocks"] if b.get("block_id") == "deal"]
    assert [(o["text"]["text"], o["value"]) for o in deal_block["element"]["options"]] == [
        ("Initech", str(deal_id))
    ]
    assert _submit(app, view, user=ANA, deal=str(deal_id), kind="eb") is None
    assert _citations(app) == [
        (
            "eb",
            "slack",
            "https://dealbot-test.slack.com/archives/C0TEAM/p1700000000123456",
            DANA_SAYS["text"],
            ANA,
        )
    ]
    [confirmation] = app.slack.calls_to("chat.postEphemeral")
    assert confirmation.args["user"] == ANA and confirmation.args["channel"] == "C0TEAM"
    assert "Cited for Initech: economic buyer ← " in confirmation.args["text"]
    assert (
        "|a Slack message> by <@U0DANA>, cited by <@U0ANA> on Mon 23 Nov"
        in (confirmation.args["text"])
    )

    still = app.command("/deal", "initech forecast:commit", user=ANA)
    assert "Commit needs cited evidence for: decision process, paper process." in still.all_text
    assert "/deal Initech evidence process: &lt;link&gt;" in still.all_text

    # The command form, with a Slack permalink and with a Gmail link.
    process = app.command("/deal", f"initech evidence process: {PERMALINK}", user=ANA)
    assert process.is_private
    assert "Cited for Initech: decision process ← " in process.all_text
    paper = app.command("/deal", f"Initech evidence paper:{GMAIL_LINK}", user=ANA)
    assert "Cited for Initech: paper process ← " in paper.all_text
    assert "an email" in paper.all_text
    assert [(c[0], c[1], c[2]) for c in _citations(app)[1:]] == [
        ("process", "slack", PERMALINK.strip("<>")),
        ("paper", "gmail", GMAIL_LINK.strip("<>")),
    ]

    allowed = app.command("/deal", "initech forecast:commit", user=ANA)
    assert "forecast pipeline → commit" in allowed.all_text
    assert "Commit without" not in allowed.all_text
    assert app.deal_named("Initech").forecast_category == "commit"

    # The card shows each cited kind with the field's value where the deal has one.
    app.command("/deal", 'initech buyer:"Dana Scully" process:"legal, then CFO"', user=ANA)
    card = app.command("/deal", "show initech", user=ANA).all_text
    assert "*EB:* Dana Scully — cited Mon 23 Nov from <https://dealbot-test.slack.com/" in card
    assert "|a Slack message>" in card
    assert "*Decision process:* legal, then CFO — cited Mon 23 Nov from" in card
    assert "*Paper process:* — cited Mon 23 Nov from <https://mail.google.com/" in card
    assert "|an email>" in card


def test_a_bare_gmail_message_id_is_cited(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k", user=ANA)
    for kind, reference in (
        ("metrics", "18c2f9a0b1d2e3f4"),
        ("champion", "msg-f:1780000000000000001"),
    ):
        reply = app.command("/deal", f"initech evidence {kind}: {reference}", user=ANA)
        assert f"Cited for Initech: {kind} ← an email" in reply.all_text
    assert [(c[0], c[1], c[2]) for c in _citations(app)] == [
        ("metrics", "gmail", "18c2f9a0b1d2e3f4"),
        ("champion", "gmail", "msg-f:1780000000000000001"),
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (f"initech evidence ebb: {PERMALINK}", "Did you mean `eb`?"),
        (f"initech evidence pain: {PERMALINK}", "is not a kind of evidence"),
        ("initech evidence eb: <https://example.com/notes>", "is not a Slack message link"),
        ("initech evidence eb: <https://acme.slack.com/archives/C0TEAM>", "Slack message link"),
        ("initech evidence eb: 12345", "is not a Slack message link or a Gmail message"),
        ("initech evidence eb:", "Paste the link"),
        (f"initech evidence eb: {PERMALINK} {GMAIL_LINK}", "cite one link at a time"),
        ("initech evidence", "Say what to cite"),
    ],
)
def test_a_bad_kind_or_link_is_refused_privately_and_nothing_is_written(
    app: RunningApp, text: str, said: str
) -> None:
    app.command("/deal", "new Initech 50k", user=ANA)
    reply = app.command("/deal", text, user=ANA)
    assert reply.is_private
    assert said in reply.all_text
    assert "/deal Initech evidence eb: https://acme.slack.com/archives/" in reply.all_text
    assert _citations(app) == []


def test_another_reps_deal_is_refused_by_command_and_by_form(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k", user=ANA)
    app.command("/deal", "new Globex 20k", user=BEN)
    deal_id = app.deal_named("Initech").id

    reply = app.command("/deal", f"initech evidence eb: {PERMALINK}", user=BEN)
    assert reply.is_private
    assert "Initech belongs to <@U0ANA>" in reply.all_text

    # Ben's form offers his deals only; a forged pick of Ana's deal is refused in the form.
    view = _press_shortcut(app, user=BEN)
    [deal_block] = [b for b in view["blocks"] if b.get("block_id") == "deal"]
    assert [o["text"]["text"] for o in deal_block["element"]["options"]] == ["Globex"]
    answer = _submit(app, view, user=BEN, deal=str(deal_id), kind="eb")
    assert answer is not None and answer["response_action"] == "errors"
    assert "belongs to" in answer["errors"]["deal"]
    assert _citations(app) == []


def test_the_form_names_what_is_missing_and_writes_nothing(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k", user=ANA)
    view = _press_shortcut(app, user=ANA)
    answer = _submit(app, view, user=ANA, deal=None, kind=None)
    assert answer == {
        "response_action": "errors",
        "errors": {
            "deal": "Pick one of your open deals.",
            "kind": "Pick what this message is evidence of.",
        },
    }
    assert _citations(app) == []


def test_the_shortcut_with_no_open_deal_says_so_privately(app: RunningApp) -> None:
    payload = message_action(
        blocks.CITE_EVIDENCE_SHORTCUT,
        DANA_SAYS,
        response_url=app.slack.response_url_for("shortcut"),
        user=ANA,
    )
    status, _ = app.interact(payload)
    assert status == 200
    assert app.slack.calls_to("views.open") == []
    [answer] = app.slack.responses
    assert answer.body["response_type"] == "ephemeral"
    assert "no open deals" in answer.body["text"]


def test_a_closed_deal_takes_no_new_evidence(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k", user=ANA)
    app.command("/deal", "won initech", user=ANA)
    reply = app.command("/deal", f"initech evidence eb: {PERMALINK}", user=ANA)
    assert reply.is_private
    assert "already won" in reply.all_text
    assert _citations(app) == []


def test_a_new_deal_at_commit_is_refused_with_nothing_written(app: RunningApp) -> None:
    reply = app.command("/deal", "new Globex $1.2M forecast:commit close:eoq", user=ANA)
    assert reply.is_private
    assert "Commit needs cited evidence for: economic buyer" in reply.all_text
    with app.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Deal)) == 0


@pytest.fixture
def warn_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    checks = tmp_path / "checks.yml"
    checks.write_text(
        DEFAULT_CHECKS_FILE.read_text(encoding="utf-8").replace(
            "commit_evidence: require", "commit_evidence: warn"
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("DEALBOT_CHECKS_FILE", str(checks))
    default_checks.cache_clear()
    yield
    monkeypatch.delenv("DEALBOT_CHECKS_FILE")
    default_checks.cache_clear()


def test_the_warn_setting_saves_commit_and_says_what_is_missing(
    warn_only: None, app: RunningApp
) -> None:
    assert default_checks().commit_evidence == "warn"
    app.command("/deal", "new Initech 50k stage:proposal", user=ANA)
    app.command("/deal", f"initech evidence paper: {GMAIL_LINK}", user=ANA)
    reply = app.command("/deal", "initech forecast:commit", user=ANA)
    assert "forecast pipeline → commit" in reply.all_text
    assert "Commit without cited evidence for: economic buyer, decision process." in reply.all_text
    assert app.deal_named("Initech").forecast_category == "commit"
    card = app.command("/deal", "show initech", user=ANA).all_text
    assert "Commit without cited evidence for: economic buyer, decision process." in card


def test_the_clock_is_the_injected_one(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k", user=ANA)
    app.command("/deal", f"initech evidence eb: {PERMALINK}", user=ANA)
    with app.database.session() as session:
        assert session.scalars(select(DealEvidence.cited_at)).one() == NOW


def test_the_new_deal_form_at_commit_shows_the_refusal_under_forecast(app: RunningApp) -> None:
    assert app.command("/deal", "", user=ANA).status == 200
    view = app.slack.calls_to("views.open")[-1].args["view"]
    values = {
        "account": {"value": {"type": "plain_text_input", "value": "Initech"}},
        "amount": {"value": {"type": "plain_text_input", "value": "50k"}},
        "stage": {"value": {"type": "static_select", "selected_option": {"value": "proposal"}}},
        "close_date": {"value": {"type": "datepicker", "selected_date": None}},
        "forecast": {"value": {"type": "static_select", "selected_option": {"value": "commit"}}},
    }
    status, answer = app.interact(view_submission(view, values, user=ANA))
    assert status == 200
    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["forecast"]
    assert answer["errors"]["forecast"].startswith("Commit needs cited evidence for:")
    with app.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Deal)) == 0


def test_an_admin_cites_for_any_deal(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k", user=ANA)
    reply = app.command("/deal", f"initech evidence criteria: {PERMALINK}", user=ADMIN)
    assert "Cited for Initech: decision criteria ← " in reply.all_text
    assert [(c[0], c[4]) for c in _citations(app)] == [("criteria", ADMIN)]


def test_an_ambiguous_deal_is_picked_and_the_citation_made_as_typed(app: RunningApp) -> None:
    app.command("/deal", "new Initech East 10k", user=ANA)
    app.command("/deal", "new Initech West 20k", user=ANA)
    reply = app.command("/deal", f"initech evidence paper: {GMAIL_LINK}", user=ANA)
    assert "More than one deal matches" in reply.all_text
    assert _citations(app) == []
    [west] = [
        element
        for block in reply.blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if "West" in element["text"]["text"]
    ]
    status, _ = app.interact(
        block_actions(
            west["action_id"],
            west["value"],
            block_id="pick_deal",
            response_url=app.slack.response_url_for("pick"),
            user=ANA,
        )
    )
    assert status == 200
    [picked] = [r for r in app.slack.responses if r.name == "pick"]
    assert "Cited for Initech West: paper process ← " in blocks_text(picked.body["blocks"])
    west_id = app.deal_named("Initech West").id
    with app.database.session() as session:
        cited = session.execute(select(DealEvidence.deal_id, DealEvidence.reference)).all()
    assert [tuple(row) for row in cited] == [(west_id, GMAIL_LINK.strip("<>"))]


def test_a_form_whose_link_is_not_a_slack_message_is_refused_as_expired(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k", user=ANA)
    view = _press_shortcut(app, user=ANA)
    forged = {**view, "private_metadata": '{"permalink": "https://evil.example/p1"}'}
    deal_id = str(app.deal_named("Initech").id)
    answer = _submit(app, forged, user=ANA, deal=deal_id, kind="eb")
    assert answer is not None and answer["response_action"] == "errors"
    assert "expired" in answer["errors"]["deal"]
    assert _citations(app) == []
