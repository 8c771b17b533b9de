"""`dealbot jobs …` exit codes and summaries, start-up refusals, and the demo's :run."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from bot.demo import run_demo
from bot.fake_slack import FakeSlackWebAPI
from domain.checks import DEFAULT_CHECKS_FILE, default_checks
from domain.clock import FixedClock
from tests.reminders.test_jobs import MONDAY, seed
from tests.reminders.world import World


@pytest.fixture
def environment(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-cli")
    monkeypatch.setenv("SLACK_API_URL", world.slack.base_url)
    monkeypatch.setenv("DATABASE_URL", world.settings.database_url)
    monkeypatch.delenv("DEALBOT_CHECKS_FILE", raising=False)
    default_checks.cache_clear()
    yield world
    default_checks.cache_clear()


def test_jobs_run_prints_the_summary_and_exits_0(
    environment: World, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(environment)
    code = main(["jobs", "run", "chase-next-steps", "--now", MONDAY.isoformat()])
    assert (code, capsys.readouterr().out) == (0, "sent 2, pending 0, failed 0\n")
    # Again as of the same time: recorded already, nothing sent twice.
    code = main(["jobs", "run", "chase-next-steps", "--now", MONDAY.isoformat()])
    assert (code, capsys.readouterr().out) == (0, "sent 0, pending 0, failed 0\n")


def test_jobs_run_exits_1_when_messages_are_left_undelivered(
    environment: World, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(environment)
    environment.slack.set_response("chat.postMessage", {"ok": False, "error": "account_inactive"})
    code = main(["jobs", "run", "chase-next-steps", "--now", MONDAY.isoformat()])
    assert (code, capsys.readouterr().out) == (1, "sent 0, pending 0, failed 2\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "run", "chase-everyone"],
        ["jobs", "run", "chase-next-steps", "--now", "monday morning"],
        ["jobs", "frobnicate"],
    ],
)
def test_jobs_usage_errors_exit_2(environment: World, argv: list[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse reports usage errors by exiting
        code = int(exit_.code or 0)
    assert code == 2


def test_jobs_list_shows_each_job_with_its_schedule_and_next_run(
    environment: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "list"]) == 0
    listing = capsys.readouterr().out
    for name in ("chase-next-steps", "pipeline-accuracy", "manager-digest"):
        assert name in listing
    assert "day_of_week=mon-fri hour=9 minute=0 (each rep's timezone)" in listing
    assert "next 20" in listing


def test_a_bad_checks_file_stops_start_up_naming_the_line(
    environment: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "checks.yml"
    bad.write_text(
        DEFAULT_CHECKS_FILE.read_text().replace("max_pushes: 2", "max_pushes: -2"),
        encoding="utf-8",
    )
    monkeypatch.setenv("DEALBOT_CHECKS_FILE", str(bad))
    default_checks.cache_clear()
    assert main(["jobs", "list"]) == 2
    error = capsys.readouterr().err
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "max_pushes" in text)
    assert f"checks.yml:{line}: CLOSE_DATE_SLIPPED.max_pushes must not be negative" in error


def test_the_demo_runs_each_job_and_shows_what_it_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack_api: FakeSlackWebAPI
) -> None:
    """Regression: the demo seeded with the real clock while the test ran jobs on a fixed
    date, so this failed on any day after 2026-11-23. Both now read the injected clock."""
    monkeypatch.chdir(tmp_path)  # the demo saves the digest's chart under the working directory
    out = io.StringIO()
    script = io.StringIO(
        ":jobs\n:run chase-next-steps 2026-11-23T10:00-05:00\n"
        ":run pipeline-accuracy 2026-11-23T10:00-05:00\n"
        ":run manager-digest\n"
    )
    monday_early = FixedClock(
        at=dt.datetime(2026, 11, 23, 7, 0, tzinfo=ZoneInfo("America/New_York"))
    )
    database_url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert run_demo(database_url=database_url, clock=monday_early, stdin=script, out=out) == 0
    shown = out.getvalue()
    assert "need your attention" in shown  # the chase DM
    assert "Pipeline accuracy · Enterprise" in shown and "(posted in #sales)" in shown
    assert "Accuracy per rep" in shown and "(file attached: Enterprise forecast" in shown
    # The digest compares with last week's seeded snapshot and names the deal left out.
    assert "Week over week (since 2026-W47)" in shown
    assert "Brightwell Ltd £40,000: no GBP rate — dealbot fx set GBP <rate>" in shown
    # The intro says how to cite evidence and set a rate, and where the chart goes.
    intro = shown[: shown.index("ana> ")]
    assert "/deal globex evidence eb: https://" in intro
    assert "dealbot fx set GBP" in intro and ".png in dealbot-demo-outbox/" in intro
    chart = tmp_path / "dealbot-demo-outbox" / "forecast-2026-W48.png"
    assert chart.read_bytes().startswith(b"\x89PNG")
