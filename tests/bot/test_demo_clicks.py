"""Issue 12: the demo you can click. Buttons and inputs are numbered; `:click` and `:fill`
go through Bolt's dispatch as Slack's block_actions and view_submission requests would."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.console import ConsoleRenderer, Surface
from bot.demo import run_demo
from bot.demo_jobs import schedule_in_words
from domain.clock import FixedClock
from reminders.jobs import Schedule
from storage.database import Database
from storage.models import Deal, NextStep, PostMortem

# Monday 23 Nov 2026, early in New York: the demo seeds its pipeline around this.
MONDAY_EARLY = dt.datetime(2026, 11, 23, 7, 0, tzinfo=ZoneInfo("America/New_York"))

Demo = Callable[[str], tuple[str, Database]]


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Demo:
    """Return a function running the demo on a piped script: its output and its database."""
    monkeypatch.chdir(tmp_path)  # the demo writes its outbox and chart in the working directory
    url = f"sqlite:///{tmp_path / 'demo.db'}"

    def run(script: str) -> tuple[str, Database]:
        out = io.StringIO()
        clock = FixedClock(at=MONDAY_EARLY)
        assert run_demo(database_url=url, clock=clock, stdin=io.StringIO(script), out=out) == 0
        return out.getvalue(), Database.from_url(url)

    return run


def test_the_post_mortem_form_is_filled_from_piped_lines(demo: Demo) -> None:
    shown, database = demo(
        ":as ben\n"
        "/deal won hooli\n"
        # Enter keeps the (empty) reason: the form refuses it and stays open.
        ":fill\n\nGlobex Cloud\n\n"
        ":fill\nROI case landed with the CFO\nGlobex Cloud\nGet to the CFO early\n"
    )
    assert "[1] Primary reason: ____" in shown and "type :fill" in shown
    assert "✘ Primary reason: Say in a few words what decided it." in shown
    assert "The form is still open" in shown
    assert "(form submitted)" in shown
    with database.session() as session:
        hooli = session.scalars(select(Deal).where(Deal.account == "Hooli")).one()
        post_mortem = session.scalars(
            select(PostMortem).where(PostMortem.deal_id == hooli.id)
        ).one()
        assert (post_mortem.primary_reason, post_mortem.competitor, post_mortem.lessons) == (
            "ROI case landed with the CFO",
            "Globex Cloud",
            "Get to the CFO early",
        )
    database.dispose()


def test_a_button_on_a_reply_is_clicked_by_its_number(demo: Demo) -> None:
    shown, database = demo("/deal show initech\n:click 2\n:click 9\n")
    assert "[1 Draft follow-up email]" in shown and "[2 Share in channel]" in shown
    assert "(you click [Share in channel])" in shown
    shared = shown.split("(you click [Share in channel])", 1)[1]
    assert "(posted in #sales)" in shared and "Initech" in shared
    assert "Say which button by its number" in shown  # there is no button 9
    database.dispose()


def test_a_job_dm_says_whose_it_is_and_its_buttons_open_a_form_to_fill(demo: Demo) -> None:
    shown, database = demo(
        ":jobs\n"
        ":run chase-next-steps 2026-11-23T10:00-05:00\n"
        # Ana's DM lists Umbrella (buttons 1-3), then Globex: 4 is its Log next step.
        ":click 4\n"
        ":fill\nCall Hank about the questionnaire\nfri\n"
    )
    assert "chase-next-steps     weekdays at 9:00 in each rep's timezone" in shown
    assert "(DM to @ana)" in shown and "(DM to @ben)" in shown and "(DM to @chloe)" in shown
    assert "(you click [Log next step])" in shown
    assert "┌ Modal: Next step" in shown and "What happens next on Globex" in shown
    assert "Due [2026-11-23]: fri" in shown
    with database.session() as session:
        step = session.scalars(
            select(NextStep).where(NextStep.what == "Call Hank about the questionnaire")
        ).one()
        assert step.due_date == dt.date(2026, 11, 27)
    database.dispose()


def test_the_new_deal_form_takes_choices_by_number_and_dates_as_typed(demo: Demo) -> None:
    shown, database = demo(
        "/deal\n:fill\nVandelay Industries\n40k\n2\nsoon\nend of january\nbest case\n"
    )
    assert "Stage (optional): 1) Prospecting, 2) Discovery" in shown
    assert "`soon` is not a date dealbot knows" in shown  # asked again, not submitted
    assert "(form submitted)" in shown
    assert "Vandelay Industries" in shown.split("(form submitted)", 1)[1]  # the confirmation
    with database.session() as session:
        deal = session.scalars(select(Deal).where(Deal.account == "Vandelay Industries")).one()
        assert (deal.stage, str(deal.close_date), deal.forecast_category, deal.amount) == (
            "discovery",
            "2027-01-31",
            "best_case",
            40000,
        )
    database.dispose()


def test_fill_without_a_form_and_a_stray_command_are_answered(demo: Demo) -> None:
    shown, database = demo(":fill\n:click 1\n/pipline\n")
    assert "No form is open" in shown
    assert "Say which button by its number" in shown
    assert "/pipline is not a dealbot command. Did you mean /pipeline?" in shown
    assert "No listener" not in shown and "@app." not in shown
    database.dispose()


def test_numbers_restart_with_each_turn_that_draws_controls() -> None:
    renderer = ConsoleRenderer(names={}, channels={}, bold=False)
    buttons = [
        {
            "type": "actions",
            "block_id": "b",
            "elements": [
                {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "A"}},
                {"type": "button", "action_id": "b", "text": {"type": "plain_text", "text": "B"}},
            ],
        }
    ]
    assert renderer.blocks(buttons) == "  [1 A]  [2 B]"
    assert renderer.blocks(buttons, surface=Surface("message")) == "  [3 A]  [4 B]"
    renderer.new_turn()
    assert renderer.controls[4].label == "B"  # still clickable until something new is drawn
    assert renderer.blocks(buttons) == "  [1 A]  [2 B]"
    assert sorted(renderer.controls) == [1, 2]


REP_MORNINGS = {"day_of_week": "mon-fri", "hour": "9", "minute": "0"}
TEAM_MONDAYS = {"day_of_week": "mon", "hour": "8", "minute": "30"}
TWICE_A_WEEK = {"day_of_week": "mon,thu", "hour": "17", "minute": "5"}


@pytest.mark.parametrize(
    ("cron", "zone", "words"),
    [
        (REP_MORNINGS, "rep", "weekdays at 9:00 in each rep's timezone"),
        (TEAM_MONDAYS, "team", "Mondays at 8:30 in each team's timezone"),
        (TWICE_A_WEEK, "Europe/Paris", "Mondays and Thursdays at 17:05 in Europe/Paris"),
        ({"hour": "6", "minute": "0"}, "UTC", "every day at 6:00 in UTC"),
        ({"minute": "*/15"}, "UTC", "every 15 minutes"),
        ({"minute": "*"}, "UTC", "every minute"),
        ({"day": "1", "hour": "9", "minute": "0"}, "UTC", "day=1 hour=9 minute=0 (UTC)"),
        (
            {"day": "1-7", "day_of_week": "mon", "hour": "9", "minute": "0"},
            "rep",
            "the first Monday of each month at 9:00 in each rep's timezone",
        ),
    ],
)
def test_schedules_in_words(cron: dict[str, str], zone: str, words: str) -> None:
    assert schedule_in_words(Schedule(cron=cron, timezone=zone)) == words
