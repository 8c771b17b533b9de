"""The weekly accuracy post, weighted by amount, snapshot-tested on a hand-computed fixture."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from domain.changes import ContactRef, DealChanges, DealRef
from domain.checks import CHECK_IDS, ChecksConfig, RepScore, parse_checks
from domain.deals import Actor
from domain.money import Money
from reminders.accuracy import (
    WEIGHTED_SCALE,
    plan_accuracy,
    score_of_stored,
    stored_score,
)
from storage.fx import FxRepository
from storage.models import AccuracyScore, DealEvidence
from tests.e2e.harness import blocks_text
from tests.reminders.world import ANA, BEN, NY_CHANNEL, World

UTC = dt.UTC
CREATED = dt.datetime(2026, 11, 2, 15, tzinfo=UTC)
# Monday 23 Nov 2026, 9:30 in New York: week 2026-W48; last week is 2026-W47.
MONDAY = dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
ON = ("NO_NEXT_STEP", "SINGLE_THREADED", "NO_AMOUNT")


def three_checks() -> ChecksConfig:
    """Three open-deal checks on, every other off: each open deal counts 3 checks."""
    lines = ["version: 1", "checks:"]
    lines += [f"  {c}: {{}}" if c in ON else f"  {c}: {{enabled: false}}" for c in CHECK_IDS]
    return parse_checks("\n".join(lines))


def seed(world: World) -> None:
    step = dt.date(2026, 11, 27)
    world.new_deal(
        ANA, "Initech", at=CREATED, amount=250_000, stage="proposal", forecast="commit",
        close=dt.date(2026, 12, 15), step_due=step, buyer="Dana Scully",
    )  # fmt: skip
    world.new_deal(
        ANA, "Globex", at=CREATED, amount=25_000, stage="proposal", forecast="commit",
        close=dt.date(2026, 12, 18), buyer="Hank Scorpio",
    )  # fmt: skip
    world.new_deal(
        ANA, "Hooli", at=CREATED, amount=None, stage="discovery", forecast="commit",
        close=dt.date(2026, 12, 20), step_due=step,
    )  # fmt: skip
    world.new_deal(
        BEN, "Stark", at=CREATED, amount=40_000, stage="discovery",
        close=dt.date(2026, 12, 1), step_due=step,
    )  # fmt: skip
    # A euro deal on a dollar team: converted at the rate in effect on its close date.
    airbus = world.deals.create_deal(
        Actor(user_id=BEN),
        "Airbus",
        DealChanges(
            amount=Money(Decimal(100_000), "EUR"),
            stage="demo",
            close_date=dt.date(2026, 12, 10),
            economic_buyer=ContactRef(name="Guillaume", email=None, user_id=None),
        ),
    )
    world.deals.add_next_step(
        Actor(user_id=BEN), DealRef(name=None, deal_id=airbus.id), what="Demo",
        due=step, owner_id=BEN,
    )  # fmt: skip
    with world.database.session() as session:
        fx = FxRepository(session)
        for day, rate in ((dt.date(2026, 10, 1), "1.10"), (dt.date(2026, 12, 1), "1.20")):
            fx.set_rate(currency="EUR", rate=Decimal(rate), effective_on=day, by=ANA, at=CREATED)
        # Initech cites every kind Commit needs; Globex only its economic buyer.
        cited = [("Initech", kind) for kind in ("eb", "process", "paper")] + [("Globex", "eb")]
        for account, kind in cited:
            session.add(
                DealEvidence(
                    deal_id=world.deal_ids[account],
                    field=kind,
                    source="slack",
                    reference=f"https://example.slack.com/archives/C1/p{len(kind)}",
                    cited_by=ANA,
                    cited_at=CREATED,
                )
            )
        # Last week: Ana's row from before the weighting (7 of 9 checks), Ben's weighted (70%).
        session.add(AccuracyScore(week="2026-W47", rep_id=ANA, passed=7, checked=9))
        session.add(
            AccuracyScore(week="2026-W47", rep_id=BEN, passed=700_000, checked=-WEIGHTED_SCALE)
        )


# By hand (3 checks per open deal, weights in USD):
# Ana  Initech $250,000 fails SINGLE_THREADED (1 contact)     passed 2 × 250,000 = 500,000
#      Globex  $25,000  fails NO_NEXT_STEP, SINGLE_THREADED   passed 1 × 25,000  =  25,000
#      Hooli   no amount (discovery: before SINGLE_THREADED's demo) fails NO_AMOUNT, weighs
#              the median of (250,000, 25,000) = 137,500      passed 2 × 137,500 = 275,000
#      passed 800,000 / checked 412,500 × 3 = 1,237,500 → 64.6% → 65%
#      best fix SINGLE_THREADED: 275,000 / 1,237,500 = +22 pts
#      commit claimed 250,000 + 25,000 = $275,000; evidenced Initech only, $250,000 (90.9% → 91%);
#      Hooli (commit, no amount) counted apart.
#      last week's row is count-based (checked 9 ≥ 0): no change shown.
# Ben  Stark   $40,000 passes all                             passed 3 × 40,000  = 120,000
#      Airbus  €100,000 at the 1 Dec rate 1.20 = $120,000, fails SINGLE_THREADED
#                                                             passed 2 × 120,000 = 240,000
#      passed 360,000 / checked 160,000 × 3 = 480,000 → 75%; last week 70% → +5 pts
#      best fix SINGLE_THREADED: 120,000 / 480,000 = +25 pts
# Team (1,160,000 / 1,717,500) = 67.5…% → 68%
EXPECTED = """\
Pipeline accuracy · East · 2026-W48
Team score *68%*: the share of accuracy checks our open deals pass, weighted by amount.
Most often failing: single-threaded (3), no dated next step (1), no amount (1)
<@U0ANA> *65%* over 3 open deal(s)
      single-threaded ×2, no dated next step ×1, no amount ×1
      :bulb: add a second contact on 2 deal(s): +22 pts
      • *Initech* $250k: single-threaded → add a second contact
      • *Globex* $25k: no dated next step → log a dated next step; single-threaded → add a second contact
      • *Hooli*: no amount → add an amount
      Commit claimed *$275,000* · evidenced *$250,000* (91%) · 1 more commit deal(s) without an amount or a rate
<@U0BEN> *75%* (+5 pts since last week) over 2 open deal(s)
      single-threaded ×1
      :bulb: add a second contact on 1 deal(s): +25 pts
      • *Airbus* €100k: single-threaded → add a second contact
      Commit claimed *$0* · evidenced *$0*
Score = checks passed ÷ checks run over open deals, weighted by amount in USD (at each deal's close-date rate); a deal without an amount or a rate weighs as the median of its rep's open deals. `/pipeline` shows yours."""  # noqa: E501


def test_the_weekly_post_weighs_by_amount_and_names_each_reps_failing_deals(
    world: World,
) -> None:
    seed(world)
    messages = plan_accuracy(world.context(MONDAY), three_checks())
    posts = {m.recipient: m for m in messages}
    east = posts[NY_CHANNEL]
    assert blocks_text(list(east.blocks)) == EXPECTED
    assert east.text == "Pipeline accuracy for East, 2026-W48: 68%"
    # Kept as the score itself, in parts per million, marked weighted.
    with world.database.session() as session:
        kept = {
            row.rep_id: (row.passed, row.checked)
            for row in session.query(AccuracyScore).filter_by(week="2026-W48")
        }
    assert kept[ANA] == (646465, -WEIGHTED_SCALE)  # 800,000 / 1,237,500 = 0.6464646…
    assert kept[BEN] == (750000, -WEIGHTED_SCALE)


def test_a_week_later_the_change_compares_weighted_with_weighted(any_world: World) -> None:
    """On both backends: the weighted row is stored and read back as it was written."""
    world = any_world
    seed(world)
    plan_accuracy(world.context(MONDAY), three_checks())
    # Ana adds a second contact to Initech: her biggest deal stops failing.
    world.clock.at = MONDAY + dt.timedelta(days=2)
    world.deals.update_deal(
        Actor(user_id=ANA),
        DealRef(name=None, deal_id=world.deal_ids["Initech"]),
        DealChanges(contacts=(ContactRef(name="Fox Mulder", email=None, user_id=None),)),
    )
    later = plan_accuracy(world.context(MONDAY + dt.timedelta(days=7)), three_checks())
    text = blocks_text(list({m.recipient: m for m in later}[NY_CHANNEL].blocks))
    # Now passed 800,000 + 250,000 = 1,050,000 of 1,237,500 = 84.8% → 85%; stored last week
    # 0.646465: 0.85 − 0.646465 = +0.20 → +20 pts.
    assert "<@U0ANA> *85%* (+20 pts since last week)" in text


@pytest.mark.parametrize(
    ("passed", "checked", "expected"),
    [
        (646465, -WEIGHTED_SCALE, Decimal("0.646465")),
        (7, 9, None),  # counted checks, from before the weighting
        (0, 0, None),  # nothing was checked
        (1_000_000, 1_000_000, None),  # a count that happens to equal the scale
    ],
)
def test_only_weighted_stored_scores_are_compared(
    passed: int, checked: int, expected: Decimal | None
) -> None:
    assert score_of_stored(passed, checked) == expected


def test_a_score_with_nothing_checked_is_stored_as_not_comparable() -> None:
    empty = RepScore(rep_id=ANA, passed=Decimal(0), checked=Decimal(0), failures={}, deals=0)
    assert stored_score(empty) == (0, 0)
    assert score_of_stored(*stored_score(empty)) is None
