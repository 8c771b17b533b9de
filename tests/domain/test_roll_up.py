"""The roll-up against figures computed by hand (each in a comment next to its check)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from domain.fx import Rate, RateBook
from domain.money import Money
from domain.roll_up import RollUpDeal, roll_up

D = dt.date
Q4 = (D(2026, 10, 1), D(2026, 12, 31))
TODAY = D(2026, 11, 16)
# EUR was worth 1.10 USD from 1 Oct, 1.20 USD from 15 Nov; GBP has no rate at all.
RATES = RateBook(
    "USD",
    [Rate("EUR", D(2026, 10, 1), Decimal("1.10")), Rate("EUR", D(2026, 11, 15), Decimal("1.20"))],
)
ANA, BEN, CAL = "U0ANA", "U0BEN", "U0CAL"


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def deal(
    deal_id: int,
    owner: str,
    amount: str | None,
    currency: str,
    category: str,
    close: dt.date,
    *,
    status: str = "open",
    checks: tuple[str, ...] = (),
) -> RollUpDeal:
    return RollUpDeal(
        deal_id=deal_id,
        name=f"Deal {deal_id}",
        owner_id=owner,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
        forecast_category=category,
        status=status,
        close_date=close,
        closed_on=close if status != "open" else None,
        checks=checks,
    )


DEALS = [
    # Ana
    deal(1, ANA, "50000", "USD", "commit", D(2026, 10, 20), status="won"),
    deal(2, ANA, "80000", "USD", "commit", D(2026, 12, 10), checks=("SINGLE_THREADED",)),
    deal(3, ANA, "20000", "EUR", "best_case", D(2026, 11, 1)),  # at 1.10
    deal(4, ANA, "10000", "EUR", "pipeline", D(2026, 12, 1)),  # at 1.20
    # Pushed out of the quarter: in no figure of Q4.
    deal(5, ANA, "40000", "USD", "commit", D(2027, 1, 15), checks=("CLOSE_DATE_PUSHED",)),
    deal(12, ANA, "11000", "USD", "commit", D(2026, 9, 28), status="won"),  # last quarter
    deal(13, ANA, "6000", "USD", "best_case", D(2026, 12, 31), checks=("NO_ECONOMIC_BUYER",)),
    # Ben
    deal(6, BEN, "30000", "EUR", "commit", D(2026, 11, 20), checks=("NO_NEXT_STEP",)),  # 1.20
    deal(7, BEN, "15000", "GBP", "best_case", D(2026, 12, 5)),  # no GBP rate
    deal(8, BEN, "25000", "EUR", "commit", D(2026, 10, 10), status="won"),  # at 1.10
    # Cal, no quota
    deal(9, CAL, "5000", "USD", "pipeline", D(2026, 12, 20), checks=("NO_NEXT_STEP",)),
    deal(10, CAL, "9000", "USD", "omitted", D(2026, 12, 20)),
    deal(11, CAL, "7000", "USD", "commit", D(2026, 11, 2), status="lost"),
]
QUOTAS = {ANA: usd("200000"), BEN: Money(Decimal("100000"), "EUR")}


def build(deals: list[RollUpDeal] = DEALS, quotas: dict[str, Money] = QUOTAS):  # type: ignore[no-untyped-def]
    return roll_up(
        team_name="West",
        period="2026-Q4",
        reps=(ANA, BEN, CAL),
        deals=deals,
        quotas=quotas,
        rates=RATES,
        currency="USD",
        quarter=Q4,
        today=TODAY,
    )


def test_each_rep_by_hand() -> None:
    result = build()
    ana, ben, cal = result.reps
    assert [r.rep_id for r in result.reps] == [ANA, BEN, CAL]
    # Ana: won #1 50,000 (#12 closed last quarter). Commit #2 80,000 (#5 pushed to Jan).
    # Best case #3 €20,000 × 1.10 = 22,000 + #13 6,000 = 28,000. Pipeline #4 €10,000 × 1.20.
    assert ana.won == usd("50000")
    assert ana.commit == usd("80000")
    assert ana.best_case == usd("28000.00")
    assert ana.pipeline == usd("12000.00")
    assert ana.quota == usd("200000")
    # 50,000 ÷ 200,000 = 0.25; (80,000 + 28,000 + 12,000) ÷ (200,000 − 50,000) = 0.80
    assert ana.attainment == Decimal("0.25")
    assert ana.coverage == Decimal("0.80")
    # At risk: #2 (commit, single-threaded) 80,000 + #13 (best case) 6,000 = 86,000.
    assert ana.at_risk == usd("86000")
    assert [(d.deal_id, d.checks) for d in ana.at_risk_deals] == [
        (2, ("SINGLE_THREADED",)),
        (13, ("NO_ECONOMIC_BUYER",)),
    ]
    assert ana.at_risk_deals[0].converted == usd("80000")

    # Ben: won #8 €25,000 × 1.10 (10 Oct) = 27,500; commit #6 €30,000 × 1.20 (20 Nov) =
    # 36,000; #7 is in GBP, which has no rate: excluded, in no figure.
    assert ben.won == usd("27500.00")
    assert ben.commit == usd("36000.00")
    assert ben.best_case == usd("0")
    assert ben.pipeline == usd("0")
    # Quota €100,000 at today's rate 1.20 = 120,000.
    assert ben.quota == usd("120000.00")
    # 27,500 ÷ 120,000 = 0.2291… → 0.23; 36,000 ÷ (120,000 − 27,500 = 92,500) = 0.389… → 0.39
    assert ben.attainment == Decimal("0.23")
    assert ben.coverage == Decimal("0.39")
    assert ben.at_risk == usd("36000.00")
    assert ben.at_risk_deals[0].amount == Money(Decimal("30000"), "EUR")

    # Cal: pipeline #9 5,000 (failing a check, but pipeline money is not "at risk");
    # #10 omitted; #11 lost. No quota: no attainment, no coverage.
    assert (cal.won, cal.commit, cal.best_case, cal.pipeline) == (
        usd("0"),
        usd("0"),
        usd("0"),
        usd("5000"),
    )
    assert cal.quota is None and cal.attainment is None and cal.coverage is None
    assert cal.at_risk == usd("0") and cal.at_risk_deals == ()


def test_team_is_the_sum_of_reps() -> None:
    team = build().team
    assert team.rep_id is None
    # won 50,000 + 27,500; commit 80,000 + 36,000; best case 28,000; pipeline 12,000 + 5,000
    assert team.won == usd("77500.00")
    assert team.commit == usd("116000.00")
    assert team.best_case == usd("28000.00")
    assert team.pipeline == usd("17000.00")
    # quota 200,000 + 120,000 (Cal has none)
    assert team.quota == usd("320000.00")
    # 77,500 ÷ 320,000 = 0.2421… → 0.24; 161,000 ÷ 242,500 = 0.6639… → 0.66
    assert team.attainment == Decimal("0.24")
    assert team.coverage == Decimal("0.66")
    # 86,000 + 36,000, largest first
    assert team.at_risk == usd("122000.00")
    assert [d.deal_id for d in team.at_risk_deals] == [2, 6, 13]


def test_unconvertible_deal_is_excluded_with_the_fix_and_rates_are_listed() -> None:
    result = build()
    assert [(e.deal_id, e.reason) for e in result.excluded] == [
        (7, "no GBP rate — dealbot fx set GBP <rate>")
    ]
    assert result.excluded[0].amount == Money(Decimal("15000"), "GBP")
    # #3 and #8 at 1.10 (from 1 Oct); #4, #6 and Ben's quota at 1.20 (from 15 Nov).
    assert result.rates_used == (
        ("EUR", Decimal("1.10"), D(2026, 10, 1)),
        ("EUR", Decimal("1.20"), D(2026, 11, 15)),
    )
    assert result.currency == "USD" and result.period == "2026-Q4"


def test_reporting_in_euros_converts_dollars_through_the_base() -> None:
    # Ana alone, reported in EUR: her won 50,000 USD on 20 Oct at 1 ÷ 1.10 = 45,454.55 EUR.
    result = roll_up(
        team_name="EU",
        period="2026-Q4",
        reps=(ANA,),
        deals=[DEALS[0]],
        quotas={},
        rates=RATES,
        currency="EUR",
        quarter=Q4,
        today=TODAY,
    )
    assert result.team.won == Money(Decimal("45454.55"), "EUR")
    assert result.team.quota is None and result.team.coverage is None


def test_met_quota_has_no_coverage_and_no_quota_has_no_team_quota() -> None:
    met = build(quotas={ANA: usd("40000")})
    ana = met.reps[0]
    # 50,000 won of 40,000: 1.25 attained, nothing left to cover.
    assert ana.attainment == Decimal("1.25")
    assert ana.coverage is None
    assert build(quotas={}).team.quota is None


def test_deal_without_amount_is_excluded_and_quota_without_rate_too() -> None:
    result = build(
        deals=[deal(20, CAL, None, "USD", "commit", D(2026, 12, 1))],
        quotas={CAL: Money(Decimal("1000"), "GBP")},
    )
    assert [(e.deal_id, e.reason) for e in result.excluded] == [
        (20, "no amount"),
        (0, "no GBP rate — dealbot fx set GBP <rate>"),
    ]
    assert result.team.commit == usd("0") and result.team.quota is None


def test_won_after_today_and_reps_off_the_team() -> None:
    # A deal dated won after today is not yet won; a former rep's deal still gets a line.
    result = build(
        deals=[
            deal(30, ANA, "1000", "USD", "commit", D(2026, 11, 30), status="won"),
            deal(31, "U0OLD", "2000", "USD", "pipeline", D(2026, 11, 30)),
        ]
    )
    assert result.reps[0].won == usd("0")
    assert result.reps[-1].rep_id == "U0OLD"
    assert result.team.pipeline == usd("2000")
