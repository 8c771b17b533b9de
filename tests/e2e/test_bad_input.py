"""Bad input gets a short private message naming the problem, and writes nothing."""

from __future__ import annotations

import time

import pytest

from tests.e2e.harness import SIGNING_SECRET, RunningApp
from tests.fakes.slack_signing import post_signed, slash_command_body

# (command, text, a word the message must contain): every one must be refused politely.
MALFORMED = [
    ("/deal", "new", "account"),
    ("/deal", "new Initech amount:lots", "lots"),
    ("/deal", "new Initech 50k stage:won", "won"),
    ("/deal", "new Initech stage:nosuchstage", "nosuchstage"),
    ("/deal", "new Initech close:someday", "someday"),
    ("/deal", "new Initech close:2026-02-30", "2026-02-30"),
    ("/deal", "new Initech close:12/15", "12/15"),
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
    ("/nextstep", "initech Call Bill due:2026-11-01", "past"),
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
