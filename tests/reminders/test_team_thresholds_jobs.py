"""A team opts in to `thresholds: learned` alone (`teams:` in the checks file): the weekly
post and the chase hold that team's deals to its learned limits, and every other team, and
reps on no team, to the file's.

The world and its hand-computed figures are those of test_learned_thresholds_jobs.py: East
learns 8 days in discovery from its five wins; Ana's Initech has been there 9 days, Ben's
Globex 8; Carl (no team) and Pierre (Paris) have 9-day deals under the file's 30.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from domain.checks import default_checks
from reminders.accuracy import plan_accuracy
from reminders.digest import plan_digest
from tests.e2e.harness import blocks_text
from tests.reminders.test_learned_thresholds_jobs import (
    MONDAY,
    STALLED,
    chased,
    checks_file,
    east_post,
    seed,
)
from tests.reminders.world import ANA, BEN, MARIA, PARIS_CHANNEL, PIERRE, World


@pytest.fixture
def team_learns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Point the process at a file on `thresholds: fixed` where one team says `learned`."""

    def use(team: str) -> None:
        path = checks_file(tmp_path / "checks.yml", "fixed")
        with path.open("a", encoding="utf-8") as file:
            file.write(f"teams:\n  {team}: {{thresholds: learned}}\n")
        monkeypatch.setenv("DEALBOT_CHECKS_FILE", str(path))
        default_checks.cache_clear()
        assert default_checks().thresholds == "fixed"

    yield use
    default_checks.cache_clear()


def test_a_team_on_learned_alone_is_flagged_in_its_post_and_chased(
    world: World, team_learns: Callable[[str], None]
) -> None:
    seed(world)
    team_learns("EAST")  # the name as typed; the file keys teams case-insensitively
    post = east_post(world)
    assert f"*Initech* $50k: {STALLED}" in post
    assert "Globex" not in post
    assert "<@U0BEN> *100%*" in post
    # Paris stays on the file's fixed 30 days: Pierre's 9-day Michelin passes.
    messages = plan_accuracy(world.context(MONDAY), default_checks())
    paris = blocks_text(list({m.recipient: m for m in messages}[PARIS_CHANNEL].blocks))
    assert STALLED not in paris and "Michelin" not in paris
    # The chase agrees: East's Initech alone; Carl (no team) keeps the file's limit.
    assert chased(world) == {ANA: ["Initech"]}
    assert world.dms_to(BEN) == [] and world.dms_to(PIERRE) == []


def test_another_teams_learned_setting_leaves_east_on_the_files_limits(
    world: World, team_learns: Callable[[str], None]
) -> None:
    seed(world)
    team_learns("paris")  # Paris learns nothing from one win: its limits stay 30 days too
    post = east_post(world)
    assert STALLED not in post
    assert "<@U0ANA> *100%*" in post and "<@U0BEN> *100%*" in post
    assert chased(world) == {}


def east_digest(world: World) -> str:
    messages = plan_digest(world.context(MONDAY), default_checks())
    return blocks_text(list({m.recipient: m for m in messages}[MARIA].blocks))


@pytest.mark.parametrize(("team", "shown"), [("east", True), ("paris", False)])
def test_the_digest_shows_learned_figures_to_the_team_that_learns_alone(
    world: World, team_learns: Callable[[str], None], team: str, shown: bool
) -> None:
    seed(world)
    team_learns(team)
    digest = east_digest(world)
    # East's five wins, as the fixture made them (test_learned_thresholds_jobs.py).
    assert ("*Learned thresholds*" in digest) is shown
    assert ("From 5 deals closed in the last 4 quarters" in digest) is shown
