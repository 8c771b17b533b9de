"""On `thresholds: learned`, the deal card, /pipeline and App Home flag STALLED_IN_STAGE where
the weekly post does: by the limits the post's run learned and kept for the team.

East's five won deals spent 5, 6, 7, 8 and 10 days in discovery: the 80th percentile (the
4th of 5) is 8 days, under the file's 30. Ana's Initech has been in discovery 9 days (past
the learned 8); Ben's Globex 8 days (the limit itself: never flagged). Until the jobs have
learned East's limits, every surface keeps the file's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from domain.checks import default_checks
from storage.models import TeamStageLimit
from tests.e2e.harness import NOW, RunningApp, blocks_text
from tests.e2e.test_checks_agree import _run_accuracy_job
from tests.reminders.test_learned_thresholds_jobs import (
    WON_DAYS_IN_DISCOVERY,
    checks_file,
)
from tests.storage.test_calibration import add_deal

ADMIN = "U0ROOT"
CHANNEL = "C0EAST"
STALLED = ":warning: stalled in its stage"
UTC = dt.UTC


@pytest.fixture
def use_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Point the process at a checks file of the given thresholds, as an operator would."""

    def use(thresholds: str) -> None:
        monkeypatch.setenv(
            "DEALBOT_CHECKS_FILE", str(checks_file(tmp_path / "checks.yml", thresholds))
        )
        default_checks.cache_clear()

    yield use
    default_checks.cache_clear()


def _seed(app: RunningApp) -> None:
    app.command("/dealbot", f"team create East <#{CHANNEL}|east> tz:America/New_York", user=ADMIN)
    app.command("/dealbot", "team add East rep <@U0ANA|ana>", user=ADMIN)
    app.command("/dealbot", "team add East rep <@U0BEN|ben>", user=ADMIN)
    app.command("/dealbot", "team add East manager <@U0MARIA|maria>", user=ADMIN)
    with app.database.session() as session:
        # Won this year, each straight from discovery (no other open stage).
        for index, days in enumerate(WON_DAYS_IN_DISCOVERY):
            created = dt.datetime(2026, 6, 1 + index, 15, tzinfo=UTC)
            add_deal(
                session,
                f"Won {index}",
                owner="U0ANA" if index % 2 else "U0BEN",
                created=created,
                closed=created + dt.timedelta(days=days),
            )
    for user, account, days in (("U0ANA", "Initech", 9), ("U0BEN", "Globex", 8)):
        app.clock.at = NOW - dt.timedelta(days=days)
        app.command("/deal", f"new {account} 50k stage:discovery close:dec 30", user=user)
    app.clock.at = NOW


def _card(app: RunningApp, account: str, user: str) -> str:
    return app.command("/deal", f"show {account.lower()}", user=user).all_text


def _line(text: str, account: str) -> str:
    [line] = [line for line in text.split("\n*") if line.startswith(account)]
    return line


def _home(app: RunningApp, user: str) -> str:
    assert app.event({"type": "app_home_opened", "user": user, "tab": "home"}) == 200
    return blocks_text(app.slack.calls_to("views.publish")[-1].args["view"]["blocks"])


def _limit_reads(app: RunningApp) -> tuple[list[str], Callable[[], None]]:
    reads: list[str] = []

    def count(*args: object) -> None:
        if "team_stage_limits" in str(args[2]):
            reads.append(str(args[2]))

    event.listen(app.database.engine, "before_cursor_execute", count)
    return reads, lambda: event.remove(app.database.engine, "before_cursor_execute", count)


def test_card_pipeline_and_home_flag_stalled_where_the_post_did(
    use_checks: Callable[[str], None], app: RunningApp
) -> None:
    use_checks("learned")
    _seed(app)
    # Nothing learned yet: the file's 30 days stand everywhere, Initech included.
    assert STALLED not in _card(app, "Initech", "U0ANA")
    assert STALLED not in app.command("/pipeline", "team", user="U0MARIA").all_text

    post = _run_accuracy_job(app)
    assert "*Initech* $50k: stalled in its stage" in post
    assert "Globex" not in post
    with app.database.session() as session:
        kept = session.execute(
            select(TeamStageLimit.stage, TeamStageLimit.days, TeamStageLimit.won_deals)
        ).all()
    assert [tuple(row) for row in kept] == [("discovery", 8, 5)]

    reads, stop = _limit_reads(app)
    try:
        initech = _card(app, "Initech", "U0ANA")
        # One read of the kept limits for the card, whatever else it reads.
        assert len(reads) == 1
        globex = _card(app, "Globex", "U0BEN")
        team = app.command("/pipeline", "team", user="U0MARIA").all_text
        own = app.command("/pipeline", user="U0ANA").all_text
        home = _home(app, "U0ANA")
        ben_home = _home(app, "U0BEN")
    finally:
        stop()
    # Card, /pipeline (the team's and Ana's own) and App Home: Initech stalled, Globex not,
    # exactly as the post has them.
    assert STALLED in initech
    assert STALLED not in globex
    assert STALLED in _line(team, "Initech") and STALLED not in _line(team, "Globex")
    assert STALLED in _line(own, "Initech")
    assert STALLED in home
    assert STALLED not in ben_home
    # Each request read the kept limits once: 2 cards, 2 pipelines, 2 homes.
    assert len(reads) == 6
    # App Home's score is the post's: Ana fails her one check, Ben passes his.
    assert "Accuracy score: *0%*" in home and "<@U0ANA> *0%*" in post
    assert "Accuracy score: *100%*" in ben_home and "<@U0BEN> *100%*" in post


def test_on_fixed_thresholds_nothing_is_kept_or_read(
    use_checks: Callable[[str], None], app: RunningApp
) -> None:
    use_checks("fixed")
    _seed(app)
    post = _run_accuracy_job(app)
    assert "stalled in its stage" not in post
    with app.database.session() as session:
        assert session.scalar(select(func.count()).select_from(TeamStageLimit)) == 0
    reads, stop = _limit_reads(app)
    try:
        card = _card(app, "Initech", "U0ANA")
        team = app.command("/pipeline", "team", user="U0MARIA").all_text
        home = _home(app, "U0ANA")
    finally:
        stop()
    assert STALLED not in card and STALLED not in team and STALLED not in home
    assert reads == []
