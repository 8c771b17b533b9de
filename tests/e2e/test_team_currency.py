"""A team's reporting currency (`/dealbot team create … currency:`, `/dealbot team currency`)
and `/dealbot team show` converting won deals at the rates set with `dealbot fx`, over signed
requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.fake_slack import FakeSlackWebAPI
from tests.databases import BACKENDS, postgres_database, sqlite_url
from tests.e2e.harness import NOW, RunningApp, running_app

ADMIN = "U0ADMIN"
# NOW is Mon 23 Nov 2026, 15:00 UTC.
ON_19_NOV = dt.datetime(2026, 11, 19, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    # `dealbot fx` below reads its database from the environment, as an admin runs it.
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        monkeypatch.setenv("DATABASE_URL", url)
        yield url
    else:
        with postgres_database() as url:
            monkeypatch.setenv("DATABASE_URL", url)
            yield url


@pytest.fixture
def app(slack_api: FakeSlackWebAPI, database_url: str) -> Iterator[RunningApp]:
    slack_api.set_user(ADMIN, name="alice", is_admin=True)
    for user, name in (("U0ANA", "ana"), ("U0MARIA", "maria"), ("U0CARL", "carl")):
        slack_api.set_user(user, name=name)
    with running_app(slack_api, database_url) as running:
        yield running


def _team(app: RunningApp, name: str, options: str = "") -> str:
    """Create a Paris team with ana as its rep and maria as its manager; return the reply."""
    created = app.command(
        "/dealbot", f"team create {name} <#C0SALES|sales> tz:Europe/Paris {options}", user=ADMIN
    ).all_text
    app.command("/dealbot", f"team add {name} rep <@U0ANA|ana>", user=ADMIN)
    app.command("/dealbot", f"team add {name} manager <@U0MARIA|maria>", user=ADMIN)
    return created


def _won(app: RunningApp, text: str, *, at: dt.datetime = NOW) -> None:
    """Ana logs a deal and wins it at `at` (UTC)."""
    app.clock.at = at
    account = text.split()[0]
    assert "New deal:" in app.command("/deal", f"new {text}", user="U0ANA").all_text
    assert "won" in app.command("/deal", f"won {account}", user="U0ANA").all_text.lower()
    app.clock.at = NOW


def _fx(*arguments: str) -> None:
    assert main(["fx", *arguments]) == 0


def test_team_show_converts_each_won_deal_at_its_rate_and_lists_one_without_a_rate(
    app: RunningApp, capsys: pytest.CaptureFixture[str]
) -> None:
    _team(app, "Enterprise")
    app.command("/dealbot", "team quota Enterprise <@U0ANA|ana> 300k", user="U0MARIA")
    _fx("set", "EUR", "1.05", "--date", "2026-11-01")
    _fx("set", "EUR", "1.08", "--date", "2026-11-20")
    _won(app, "Initech 100k")
    _won(app, "Globex €100k", at=ON_19_NOV)  # 100,000 × 1.05 = 105,000
    _won(app, "Hooli €40k")  # 40,000 × 1.08 = 43,200
    _won(app, "Umbrella £10k")  # no GBP rate
    umbrella = app.deal_named("Umbrella").id

    shown = app.command("/dealbot", "team show Enterprise", user="U0MARIA").all_text

    assert "Reporting currency: USD (the default, DEALBOT_CURRENCY)" in shown
    # 100,000 + 105,000 + 43,200 = 248,200 of 300,000 = 82.7%.
    assert (
        "<@U0ANA>: $248,200 of $300,000 (83%) from 3 won deals, "
        "incl. €100,000 at 1.05 on Sun 1 Nov and €40,000 at 1.08 on Fri 20 Nov"
    ) in shown
    assert (
        f"left out: Umbrella (#{umbrella}, £10,000): there is no GBP exchange rate; "
        "an admin sets one with `dealbot fx set GBP <rate>`"
    ) in shown

    # Once the admin sets the missing rate, the deal counts: 10,000 × 1.27 = 12,700.
    _fx("set", "GBP", "1.27", "--date", "2026-11-01")
    shown = app.command("/dealbot", "team show Enterprise", user="U0MARIA").all_text
    assert "<@U0ANA>: $260,900 of $300,000 (87%) from 4 won deals" in shown
    assert "£10,000 at 1.27 on Sun 1 Nov" in shown and "left out" not in shown
    capsys.readouterr()


def test_a_team_created_in_euros_reports_in_euros(
    app: RunningApp, capsys: pytest.CaptureFixture[str]
) -> None:
    created = _team(app, "EMEA", "currency:eur")
    assert "EMEA* · <#C0SALES> · Europe/Paris · EUR" in created
    _fx("set", "EUR", "1.25", "--date", "2026-11-01")
    # No quota: the won deals add up in the team's currency. $50,000 ÷ 1.25 = €40,000.
    _won(app, "Initech 50k")
    _won(app, "Globex €10k")

    shown = app.command("/dealbot", "team show EMEA", user="U0ANA").all_text

    assert "Reporting currency: EUR" in shown and "the default" not in shown
    assert (
        "<@U0ANA>: no quota for 2026-Q4 (won €50,000 from 2 deals, "
        "incl. $50,000 at 0.8 on Sun 1 Nov)"
    ) in shown

    # A quota typed without a currency is in the team's: €100,000, not $100,000.
    app.command("/dealbot", "team quota EMEA <@U0ANA|ana> 100k", user="U0MARIA")
    shown = app.command("/dealbot", "team show EMEA", user="U0ANA").all_text
    assert "<@U0ANA>: €50,000 of €100,000 (50%) from 2 won deals" in shown
    # One that names its currency keeps it, and attainment converts into it: €10,000 × 1.25.
    app.command("/dealbot", "team quota EMEA <@U0ANA|ana> $125k", user="U0MARIA")
    shown = app.command("/dealbot", "team show EMEA", user="U0ANA").all_text
    assert (
        "<@U0ANA>: $62,500 of $125,000 (50%) from 2 won deals, incl. €10,000 at 1.25 on Sun 1 Nov"
    ) in shown
    capsys.readouterr()


def test_team_currency_changes_it_for_a_manager_or_an_admin_only(app: RunningApp) -> None:
    _team(app, "Enterprise")

    before = app.row_counts()
    refused = app.command("/dealbot", "team currency Enterprise EUR", user="U0ANA")
    assert refused.is_private
    assert "Only Enterprise's managers or a workspace admin can change it" in refused.all_text
    assert app.row_counts() == before
    shown = app.command("/dealbot", "team show Enterprise", user="U0ANA").all_text
    assert "Reporting currency: USD (the default, DEALBOT_CURRENCY)" in shown

    changed = app.command("/dealbot", "team currency Enterprise gbp", user="U0MARIA").all_text
    assert "Enterprise reports in GBP from now on." in changed
    shown = app.command("/dealbot", "team show Enterprise", user="U0ANA").all_text
    assert "Reporting currency: GBP" in shown

    app.command("/dealbot", "team currency Enterprise CHF", user=ADMIN)
    listed = app.command("/dealbot", "team list", user=ADMIN).all_text
    assert "Europe/Paris · CHF" in listed


@pytest.mark.parametrize(
    ("text", "said", "form"),
    [
        (
            "team create EMEA <#C0EMEA|emea> currency:EURO",
            "`EURO` is not a currency code",
            "/dealbot team create EMEA #sales-emea tz:Europe/Paris currency:EUR",
        ),
        ("team currency Enterprise $", "`$` is not a currency code", "/dealbot team currency"),
        ("team currency Enterprise", "Give the team name and a currency code", "team currency"),
        ("team currency Nowhere EUR", "There is no team called “Nowhere”", "team create"),
    ],
)
def test_bad_currency_input_is_answered_privately_with_the_form_and_writes_nothing(
    app: RunningApp, text: str, said: str, form: str
) -> None:
    _team(app, "Enterprise")
    before = app.row_counts()

    reply = app.command("/dealbot", text, user=ADMIN)

    assert reply.is_private
    assert said in reply.all_text and form in reply.all_text
    assert app.row_counts() == before
