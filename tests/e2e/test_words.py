"""Issue 12 over signed requests: what changed, dates people type, did-you-mean, stray commands."""

from __future__ import annotations

import json
import logging

import pytest

from tests.e2e.harness import RunningApp, block_actions


def _team_with_ana_and_ben(app: RunningApp) -> None:
    admin = "U0ADMIN"  # a workspace admin according to users.info
    app.command("/dealbot", "team create Enterprise <#C0SALES|sales>", user=admin)
    app.command("/dealbot", "team add Enterprise rep <@U0ANA|ana> <@U0BEN|ben>", user=admin)
    app.command("/dealbot", "team add Enterprise manager <@U0MARIA|maria>", user=admin)


def test_changing_evidence_says_what_changed_old_to_new(app: RunningApp) -> None:
    app.command(
        "/deal",
        'new Initech 50k criteria:"SSO" buyer:"Bill Lumbergh <mailto:bill@initech.com|'
        'bill@initech.com>"',
    )
    reply = app.command(
        "/deal",
        'initech buyer:"Peter Gibbons" champion:<@U0BEN|ben> criteria:"SSO and audit log" '
        'process:"Legal, then CFO"',
    )
    assert reply.status == 200 and reply.is_private
    text = reply.all_text
    assert "economic buyer Bill Lumbergh → Peter Gibbons" in text
    assert "champion — → <@U0BEN>" in text
    assert "criteria “SSO” → “SSO and audit log”" in text
    assert "process — → “Legal, then CFO”" in text
    assert "Saved." not in text
    # Evidence is said in the reply, and history stays the four forecast fields.
    deal = app.deal_named("Initech")
    assert all(change[0] != "buying_criteria" for change in app.changes_of(deal.id))


def test_an_update_that_changes_nothing_says_so(app: RunningApp) -> None:
    app.command("/deal", 'new Initech 50k criteria:"SSO"')
    reply = app.command("/deal", 'initech criteria:"SSO"')
    assert "nothing changed" in reply.all_text


def test_the_team_pipeline_names_each_deals_owner(app: RunningApp) -> None:
    _team_with_ana_and_ben(app)
    app.command("/deal", "new Initech 50k", user="U0ANA")
    app.command("/deal", "new Hooli 80k", user="U0BEN")
    team = app.command("/pipeline", "team", user="U0MARIA")
    lines = [line for line in team.all_text.splitlines() if "`#" in line]
    assert any("Initech" in line and "<@U0ANA>" in line for line in lines), lines
    assert any("Hooli" in line and "<@U0BEN>" in line for line in lines), lines
    # A rep's own pipeline is all theirs: no owner on each line.
    mine = app.command("/pipeline", user="U0ANA")
    assert "<@U0ANA>" not in " ".join(x for x in mine.all_text.splitlines() if "`#" in x)


def test_due_yesterday_creates_an_overdue_step_and_says_so(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    # NOW is Monday 23 Nov 2026 in New York.
    reply = app.command("/nextstep", "initech Send the contract due:yesterday")
    assert "Sun 22 Nov" in reply.all_text and "overdue" in reply.all_text
    assert app.row_counts()["next_steps"] == 1


def test_a_due_date_a_month_back_is_refused_and_nothing_is_written(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    before = app.row_counts()
    reply = app.command("/nextstep", "initech Send the contract due:2026-10-01")
    assert "in the past" in reply.all_text
    assert app.row_counts() == before


def test_close_q1_and_end_of_january_reply_with_the_day_they_became(app: RunningApp) -> None:
    created = app.command("/deal", "new Initech 50k close:Q1")
    assert "Wed 31 Mar 2027" in created.all_text
    assert str(app.deal_named("Initech").close_date) == "2027-03-31"
    moved = app.command("/deal", "initech close:end of january")
    assert "close date Wed 31 Mar 2027 → Sun 31 Jan 2027" in moved.all_text
    numeric = app.command("/deal", "initech close:12/15")
    assert "→ Tue 15 Dec" in numeric.all_text


def test_a_date_read_two_ways_is_asked_about_and_nothing_is_written(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k close:dec 15")
    before = app.row_counts()
    reply = app.command("/deal", "initech close:3/4")
    assert "could be Thu 4 Mar 2027 or Sat 3 Apr 2027" in reply.all_text
    assert str(app.deal_named("Initech").close_date) == "2026-12-15"
    assert app.row_counts() == before


def test_a_quota_for_q1_in_november_is_next_years(app: RunningApp) -> None:
    _team_with_ana_and_ben(app)
    reply = app.command(
        "/dealbot", "team quota Enterprise <@U0ANA|ana> 250k period:Q1", user="U0ADMIN"
    )
    assert "Quota for 2027-Q1 saved." in reply.all_text


def test_a_near_miss_gets_the_closest_command_and_nothing_is_written(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    before = app.row_counts()
    reply = app.command("/deal", "shwo initech")
    assert "Did you mean `/deal show initech`?" in reply.all_text
    assert "/deal show Initech" in reply.all_text  # the usage line
    reply = app.command("/deal", "initech stgae:demo")
    assert "did you mean `stage:`?" in reply.all_text
    reply = app.command("/nextstep", "initech Call Bill dew:fri")
    assert "did you mean `due:`?" in reply.all_text
    reply = app.command("/dealbot", "tem list")
    assert "Did you mean `team`?" in reply.all_text
    assert app.row_counts() == before


def test_an_unknown_slash_command_gets_a_friendly_private_answer(app: RunningApp) -> None:
    reply = app.command("/pipline", "team")
    assert reply.status == 200 and reply.is_private
    assert "Did you mean `/pipeline`?" in reply.all_text
    for command in ("/deal", "/nextstep", "/pipeline", "/dealbot"):
        assert command in reply.all_text
    # Bolt's developer hint is a Python snippet with a decorator; none of it reaches the user.
    assert "@app" not in reply.all_text and "def " not in reply.all_text


def test_the_help_explains_the_date_words(app: RunningApp) -> None:
    reply = app.command("/dealbot", "help")
    assert "`next fri`: Friday of next week" in reply.all_text
    assert "`3/4` asks which" in reply.all_text


def test_an_unknown_button_is_logged_in_one_line_not_answered_with_a_snippet(
    app: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    before = app.row_counts()
    with caplog.at_level(logging.INFO):
        status, body = app.interact(
            block_actions(
                "no_such_button",
                "1",
                block_id="b",
                response_url=app.slack.response_url_for("click"),
            )
        )
    assert status == 404 and "def " not in json.dumps(body)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "No listener for a block_actions request" in logged
    assert "@app.action" not in logged  # Bolt's developer hint
    assert app.row_counts() == before
