"""Attainment adds up won deals in the quota's currency, converting each at the rate of its
close date, and lists every deal it leaves out with the reason."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.fx import Rate, RateBook
from domain.money import Money
from domain.teams import ConvertedAmount, ExcludedDeal, attainment_of
from storage.teams import WonDeal

PARIS = ZoneInfo("Europe/Paris")
NOV_1 = dt.date(2026, 11, 1)
DEC_1 = dt.date(2026, 12, 1)
RATES = RateBook(
    "USD",
    [
        Rate("EUR", NOV_1, Decimal("1.07")),
        Rate("EUR", DEC_1, Decimal("1.08")),
        Rate("GBP", NOV_1, Decimal("1.25")),
    ],
)
NO_RATES = RateBook("USD", [])


def _won(deal_id: int, amount: str | None, currency: str = "USD", on: dt.date = DEC_1) -> WonDeal:
    return WonDeal(
        id=deal_id,
        owner_id="U0ANA",
        account=f"Account {deal_id}",
        title=None,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
        close_date=on,
    )


def test_a_deal_in_another_currency_counts_at_the_rate_of_its_close_date() -> None:
    quota = Money(Decimal("400000"), "USD")
    won = [
        _won(1, "100000"),
        _won(2, "140000", "EUR", on=dt.date(2026, 12, 2)),  # 140,000 × 1.08 = 151,200
        _won(3, "10000", "EUR", on=dt.date(2026, 11, 20)),  # 10,000 × 1.07 = 10,700
        _won(4, "10000", "EUR", on=dt.date(2026, 12, 5)),  # 10,000 × 1.08 = 10,800
    ]
    got = attainment_of("U0ANA", quota, won, currency="USD", rates=RATES, zone=PARIS)
    # 100,000 + 151,200 + 10,700 + 10,800 = 272,700; ÷ 400,000 = 0.68175.
    assert got.won == (Money(Decimal("272700.00"), "USD"),)
    assert got.ratio == Decimal("0.68175") and got.deal_count == 4 and got.excluded == ()
    # Deals at the same rate are said once, added up.
    assert got.converted == (
        ConvertedAmount(
            original=Money(Decimal("10000"), "EUR"),
            converted=Money(Decimal("10700.00"), "USD"),
            rate=Decimal("1.07"),
            rate_date=NOV_1,
        ),
        ConvertedAmount(
            original=Money(Decimal("150000"), "EUR"),
            converted=Money(Decimal("162000.00"), "USD"),
            rate=Decimal("1.08"),
            rate_date=DEC_1,
        ),
    )


def test_a_quota_in_another_currency_than_the_base_converts_through_it() -> None:
    # USD → EUR on 2 Dec: 1 ÷ 1.08; 54,000 ÷ 1.08 = 50,000. GBP → EUR: 1.25 ÷ 1.08 =
    # 1.157407…; 8,640 × that = 10,000.00. Total 60,000 of 100,000.
    quota = Money(Decimal("100000"), "EUR")
    won = [_won(1, "54000", on=dt.date(2026, 12, 2)), _won(2, "8640", "GBP")]
    got = attainment_of("U0ANA", quota, won, currency="USD", rates=RATES, zone=PARIS)
    assert got.won == (Money(Decimal("60000.00"), "EUR"),)
    assert got.ratio == Decimal("0.6")


def test_deals_without_a_rate_or_an_amount_are_listed_with_what_is_missing() -> None:
    quota = Money(Decimal("80000"), "USD")
    won = [_won(1, "20000"), _won(2, "50000", "JPY"), _won(3, None)]
    got = attainment_of("U0ANA", quota, won, currency="USD", rates=RATES, zone=PARIS)
    assert got.won == (Money(Decimal("20000"), "USD"),)
    assert got.ratio == Decimal("0.25") and got.deal_count == 1
    assert got.excluded == (
        ExcludedDeal(
            deal_id=2,
            name="Account 2",
            amount=Money(Decimal("50000"), "JPY"),
            reason="no_rate",
            missing_rate="JPY",
        ),
        ExcludedDeal(deal_id=3, name="Account 3", amount=None, reason="no_amount"),
    )


def test_a_quota_in_a_currency_without_a_rate_names_that_currency() -> None:
    # A USD deal against a CHF quota: USD needs no rate, CHF has none.
    got = attainment_of(
        "U0ANA",
        Money(Decimal("1000"), "CHF"),
        [_won(1, "500")],
        currency="USD",
        rates=RATES,
        zone=PARIS,
    )
    assert got.won == (Money(Decimal(0), "CHF"),) and got.deal_count == 0
    assert [deal.missing_rate for deal in got.excluded] == ["CHF"]


def test_without_a_quota_deals_add_up_in_the_teams_currency() -> None:
    # Team in EUR: 10,800 USD ÷ 1.08 = 10,000; 5,000 EUR; 2,500.50 EUR. Total 17,500.50.
    got = attainment_of(
        "U0ANA",
        None,
        [_won(1, "10800"), _won(2, "5000", "EUR"), _won(3, "2500.50", "EUR")],
        currency="EUR",
        rates=RATES,
        zone=PARIS,
    )
    assert got.quota is None and got.ratio is None and got.excluded == ()
    assert got.won == (Money(Decimal("17500.50"), "EUR"),)
    assert got.deal_count == 3


def test_nothing_won_against_a_quota_is_zero_percent() -> None:
    got = attainment_of(
        "U0ANA", Money(Decimal("1000"), "USD"), [], currency="USD", rates=NO_RATES, zone=PARIS
    )
    assert got.won == (Money(Decimal(0), "USD"),) and got.ratio == 0


def test_a_deal_without_a_close_date_converts_at_the_day_it_closed_in_the_teams_zone() -> None:
    # 23:30 UTC on 30 Nov is 1 Dec in Paris: the 1 Dec rate, 1.08, not 1.07.
    deal = WonDeal(
        id=1,
        owner_id="U0ANA",
        account="Initech",
        title=None,
        amount=Decimal(1000),
        currency="EUR",
        closed_at=dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC),
    )
    got = attainment_of("U0ANA", None, [deal], currency="USD", rates=RATES, zone=PARIS)
    assert got.won == (Money(Decimal("1080.00"), "USD"),)
