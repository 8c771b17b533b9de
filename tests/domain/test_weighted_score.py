"""The accuracy score weighted by amount, against hand-computed figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from domain.checks import (
    CHECK_IDS,
    ChecksConfig,
    DealFacts,
    FailingDeal,
    ScoreTally,
    parse_checks,
    score_reps,
)
from domain.fx import Rate, RateBook
from domain.money import Money

TODAY = dt.date(2026, 11, 23)
ANA, BEN = "U0ANA", "U0BEN"
ON = ("NO_NEXT_STEP", "SINGLE_THREADED", "NO_AMOUNT")


def three_checks() -> ChecksConfig:
    """Three open-deal checks on, every other off: each open deal counts 3 checks."""
    lines = ["version: 1", "checks:"]
    for check in CHECK_IDS:
        lines.append(f"  {check}: {{}}" if check in ON else f"  {check}: {{enabled: false}}")
    return parse_checks("\n".join(lines))


def deal(
    deal_id: int,
    account: str,
    amount: int | None,
    *,
    owner: str = ANA,
    currency: str = "USD",
    contacts: int = 2,
    dated_steps: int = 1,
    forecast: str = "pipeline",
    cited: frozenset[str] = frozenset(),
    close: dt.date | None = dt.date(2026, 12, 15),
) -> DealFacts:
    return DealFacts(
        deal_id,
        owner,
        account,
        "proposal",  # past SINGLE_THREADED's from_stage (demo)
        "open",
        forecast,
        amount is not None,
        close,
        open_steps=dated_steps,
        open_steps_dated=dated_steps,
        contacts=contacts,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
        cited=cited,
    )


def scored(facts: list[DealFacts], **kwargs: object) -> dict[str, object]:
    return score_reps(facts, lambda _owner: (TODAY, dt.UTC), three_checks(), **kwargs)  # type: ignore[arg-type]


EVIDENCED = frozenset({"eb", "process", "paper"})
INITECH = deal(1, "Initech", 250_000, contacts=1, forecast="commit", cited=EVIDENCED)
GLOBEX = deal(2, "Globex", 25_000, contacts=1, dated_steps=0, forecast="commit")
HOOLI = deal(3, "Hooli", None, forecast="commit", cited=EVIDENCED)


def test_a_250k_deal_counts_ten_times_a_25k_one_and_no_amount_weighs_the_median() -> None:
    score = scored([INITECH, GLOBEX, HOOLI])[ANA]
    # By hand. Initech ($250k) fails SINGLE_THREADED: 2 of 3 passed. Globex ($25k) fails
    # NO_NEXT_STEP and SINGLE_THREADED: 1 of 3. Hooli (no amount) fails NO_AMOUNT: 2 of 3,
    # weighing the median of the rep's open amounts, (250,000 + 25,000) / 2 = 137,500.
    # passed  = 250,000×2 + 25,000×1 + 137,500×2 = 800,000
    # checked = (250,000 + 25,000 + 137,500)×3   = 1,237,500
    assert score.passed == Decimal(800_000)
    assert score.checked == Decimal(1_237_500)
    assert score.score == Decimal("0.65")  # 0.6464…; counted plainly it would be 5/9 = 0.56
    assert score.failures == {"SINGLE_THREADED": 2, "NO_NEXT_STEP": 1, "NO_AMOUNT": 1}
    assert score.failing_weight == {
        "SINGLE_THREADED": Decimal(275_000),
        "NO_NEXT_STEP": Decimal(25_000),
        "NO_AMOUNT": Decimal(137_500),
    }
    # Fixing SINGLE_THREADED wins back 275,000 / 1,237,500 = 0.222 of the score.
    assert score.best_fix() == ("SINGLE_THREADED", 2, Decimal("0.22"))
    # Largest amount first, the deal without an amount last.
    assert score.failing_deals == (
        FailingDeal(1, "Initech", Money(Decimal(250_000), "USD"), ("SINGLE_THREADED",)),
        FailingDeal(
            2, "Globex", Money(Decimal(25_000), "USD"), ("NO_NEXT_STEP", "SINGLE_THREADED")
        ),
        FailingDeal(3, "Hooli", None, ("NO_AMOUNT",)),
    )
    assert score.deals_failing == 3 and score.deals == 3
    # Commit claimed: Initech + Globex = 275,000; evidenced: Initech only. Hooli has no
    # amount: in neither figure, counted apart.
    assert (score.commit_claimed, score.commit_evidenced, score.commit_unpriced) == (
        Decimal(275_000),
        Decimal(250_000),
        1,
    )


def test_the_failing_check_on_the_big_deal_is_the_best_fix_even_on_fewer_deals() -> None:
    big = deal(1, "Initech", 250_000, contacts=1)  # SINGLE_THREADED
    small = [deal(i, f"Small {i}", 25_000, dated_steps=0) for i in (2, 3, 4)]  # NO_NEXT_STEP
    score = scored([big, *small])[ANA]
    # checked = (250,000 + 75,000)×3 = 975,000; SINGLE_THREADED loses 250,000 (0.256),
    # NO_NEXT_STEP 75,000 (0.077), though it fails on three deals.
    assert score.best_fix() == ("SINGLE_THREADED", 1, Decimal("0.26"))
    assert score.score == Decimal("0.67")  # (975,000 − 325,000) / 975,000


def test_amounts_convert_at_the_close_dates_rate_and_a_currency_without_one_weighs_the_median() -> (
    None
):
    rates = RateBook(
        "USD",
        [
            Rate("EUR", dt.date(2026, 1, 1), Decimal("1.10")),
            Rate("EUR", dt.date(2026, 12, 1), Decimal("1.20")),
        ],
    )
    euro = deal(1, "Airbus", 100_000, currency="EUR", contacts=1, close=dt.date(2026, 12, 10))
    dollars = deal(2, "Stark", 60_000)
    yen = deal(3, "Sony", 5_000_000, currency="JPY", dated_steps=0)  # no JPY rate: the median
    score = scored([euro, dollars, yen], currency="USD", rates=rates)[ANA]
    # Airbus: 100,000 EUR at the 1 Dec rate (1.20) = 120,000 USD, fails SINGLE_THREADED.
    # Stark: 60,000 USD, passes all 3. Sony: median(120,000, 60,000) = 90,000, fails
    # NO_NEXT_STEP. passed = 120,000×2 + 60,000×3 + 90,000×2 = 600,000;
    # checked = 270,000×3 = 810,000 → 0.7407…
    assert (score.passed, score.checked) == (Decimal(600_000), Decimal(810_000))
    assert score.score == Decimal("0.74")


def test_a_rep_without_any_amount_weighs_each_deal_as_one() -> None:
    score = scored([deal(1, "A", None), deal(2, "B", None, contacts=1)])[ANA]
    # Both fail NO_AMOUNT, B also SINGLE_THREADED: 3 of 6 passed, each deal weighing 1.
    assert (score.passed, score.checked, score.score) == (Decimal(3), Decimal(6), Decimal("0.50"))


def test_medians_are_each_reps_own() -> None:
    facts = [
        deal(1, "A", 100_000),
        deal(2, "B", None),  # weighs Ana's median, 100,000
        deal(3, "C", 10, owner=BEN),
        deal(4, "D", None, owner=BEN, dated_steps=0),  # weighs Ben's median, 10
    ]
    scores = scored(facts)
    # Ana: 100,000×3 + 100,000×2 over 200,000×3. Ben: 10×3 + 10×1 over 20×3.
    assert scores[ANA].score == Decimal("0.83")
    assert scores[BEN].score == Decimal("0.67")


def test_the_failing_deals_kept_are_the_three_largest_however_they_arrive() -> None:
    amounts = [5_000, 90_000, 1_000, 70_000, 80_000]
    facts = [deal(i, f"D{i}", a, contacts=1) for i, a in enumerate(amounts, start=1)]
    score = scored(facts)[ANA]
    assert [d.name for d in score.failing_deals] == ["D2", "D5", "D4"]
    assert score.deals_failing == 5


def test_facts_not_grouped_by_owner_are_refused_rather_than_scored_wrong() -> None:
    tally = ScoreTally(config=three_checks())
    tally.add(deal(1, "A", 1, owner=ANA), TODAY, dt.UTC)
    tally.add(deal(2, "B", 1, owner=BEN), TODAY, dt.UTC)
    with pytest.raises(ValueError, match="grouped by owner"):
        tally.add(deal(3, "C", 1, owner=ANA), TODAY, dt.UTC)
