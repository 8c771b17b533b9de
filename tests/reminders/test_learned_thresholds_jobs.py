"""`thresholds: learned` reaches the jobs: the weekly post and the chase hold a team's deals
to the stage limits its won deals teach, and agree on them.

East's five won deals spent 5, 6, 7, 8 and 10 days in discovery: the 80th percentile (the
4th of 5) is 8 days, well under the file's 30. Ana's open Initech has been in discovery 9
days (flagged only when learned); Ben's Globex 8 days (the limit itself: never flagged).
Carl is on no team, and Pierre's team (Paris) has won nothing: both keep the file's 30.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from domain.checks import CHECK_IDS, default_checks
from reminders.accuracy import plan_accuracy
from storage.models import Nudge
from tests.e2e.harness import blocks_text
from tests.reminders.world import ANA, BEN, NY_CHANNEL, PIERRE, World
from tests.storage.test_calibration import add_deal

UTC = dt.UTC
# Monday 23 Nov 2026, 9:30 in New York (15:30 in Paris): the chase's morning and the post's.
MONDAY = dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
CARL = "U0CARL"  # owns deals, on no team
WON_DAYS_IN_DISCOVERY = (5, 6, 7, 8, 10)
STALLED = "stalled in its stage"


def checks_file(path: Path, thresholds: str) -> Path:
    """A checks file with only STALLED_IN_STAGE on, chased, and the thresholds' source."""
    lines = ["version: 1", "checks:"]
    lines += [f"  {c}: {{enabled: false}}" for c in CHECK_IDS if c != "STALLED_IN_STAGE"]
    lines += [
        "chase: [STALLED_IN_STAGE]",
        "attention: [STALLED_IN_STAGE]",
        f"thresholds: {thresholds}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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


def seed(world: World) -> None:
    with world.database.session() as session:
        # Won in the last four quarters, each straight from discovery (no other open stage).
        for index, days in enumerate(WON_DAYS_IN_DISCOVERY):
            created = dt.datetime(2026, 6, 1 + index, 15, tzinfo=UTC)
            add_deal(
                session,
                f"Won {index}",
                owner=ANA if index % 2 else BEN,
                created=created,
                closed=created + dt.timedelta(days=days),
            )
        # A Paris win: too few for Paris to learn anything, and not East's.
        created = dt.datetime(2026, 6, 1, 15, tzinfo=UTC)
        add_deal(session, "Won Paris", owner=PIERRE, created=created, closed=created)
    for owner, account, days in (
        (ANA, "Initech", 9),
        (BEN, "Globex", 8),
        (CARL, "Vandelay", 9),
        (PIERRE, "Michelin", 9),
    ):
        world.new_deal(owner, account, at=MONDAY - dt.timedelta(days=days))
    # Ana has more open deals, past no limit: the limits are learned per team, not per deal.
    for index in range(3):
        world.new_deal(ANA, f"Fresh {index}", at=MONDAY - dt.timedelta(days=1))


def east_post(world: World) -> str:
    messages = plan_accuracy(world.context(MONDAY), default_checks())
    return blocks_text(list({m.recipient: m for m in messages}[NY_CHANNEL].blocks))


def chased(world: World) -> dict[str, list[str]]:
    """Run the chase job as the scheduler would; return each rep's chased deals."""
    summary = world.run("chase-next-steps", MONDAY)
    assert summary.failed == 0
    with world.database.session() as session:
        rows = session.query(Nudge).order_by(Nudge.rep_id, Nudge.deal_id).all()
        by_rep: dict[str, list[str]] = {}
        for row in rows:
            by_rep.setdefault(row.rep_id, []).append(
                next(name for name, id_ in world.deal_ids.items() if id_ == row.deal_id)
            )
            assert row.checks == "STALLED_IN_STAGE"
        return by_rep


def test_a_team_on_learned_thresholds_is_flagged_in_the_post_and_chased_alike(
    world: World, use_checks: Callable[[str], None]
) -> None:
    seed(world)
    use_checks("learned")
    post = east_post(world)
    # Ana's Initech, 9 days in discovery, is past East's learned 8; Ben's Globex is not.
    assert f"*Initech* $50k: {STALLED}" in post
    assert "Globex" not in post
    assert "<@U0BEN> *100%*" in post

    selects: list[str] = []

    def count(*args: object) -> None:
        statement = str(args[2])
        # The closed-deals read the learning starts from (storage/calibration.py).
        if "post_mortems" in statement and "deals.closed_at <" in statement:
            selects.append(statement)

    event.listen(world.database.engine, "before_cursor_execute", count)
    try:
        by_rep = chased(world)
    finally:
        event.remove(world.database.engine, "before_cursor_execute", count)
    # The chase agrees with the post: Initech alone. Carl (no team) and Pierre (Paris,
    # nothing learned) keep the file's 30 days, so their 9-day deals are not chased.
    assert by_rep == {ANA: ["Initech"]}
    [dm] = world.dms_to(ANA)
    assert f"*Initech* (#{world.deal_ids['Initech']})\n:warning: {STALLED}" in blocks_text(
        dm["blocks"]
    )
    assert world.dms_to(BEN) == [] and world.dms_to(CARL) == [] and world.dms_to(PIERRE) == []
    # East learned once (Paris once: Pierre is awake too), not once per rep or per deal.
    assert len(selects) == 2


def test_on_fixed_thresholds_the_same_deals_pass_and_no_learning_is_read(
    world: World, use_checks: Callable[[str], None]
) -> None:
    seed(world)
    use_checks("fixed")
    post = east_post(world)
    assert STALLED not in post
    assert "<@U0ANA> *100%*" in post and "<@U0BEN> *100%*" in post

    selects: list[str] = []

    def count(*args: object) -> None:
        if "post_mortems" in str(args[2]) and "deals.closed_at <" in str(args[2]):
            selects.append(str(args[2]))

    event.listen(world.database.engine, "before_cursor_execute", count)
    try:
        assert chased(world) == {}
    finally:
        event.remove(world.database.engine, "before_cursor_execute", count)
    assert world.dms_to(ANA) == [] and world.dms_to(BEN) == []
    assert selects == []
