"""RateBook: which rate is in force on a day, cross rates through the base, and cents —
every expected figure worked out by hand in the comment beside it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from domain.fx import Conversion, Rate, RateBook
from domain.money import Money

NOV_1 = dt.date(2026, 11, 1)
NOV_25 = dt.date(2026, 11, 25)
DEC_1 = dt.date(2026, 12, 1)

BOOK = RateBook(
    "USD",
    [
        # Given out of order on purpose: the book sorts by day.
        Rate("EUR", DEC_1, Decimal("1.08")),
        Rate("EUR", NOV_1, Decimal("1.07")),
        Rate("GBP", NOV_1, Decimal("1.25")),
        Rate("GBP", DEC_1, Decimal("1.28")),
        Rate("CHF", NOV_25, Decimal("1.13")),
    ],
)


def test_the_rate_in_force_is_the_latest_set_on_or_before_the_day() -> None:
    assert BOOK.to_base("EUR", dt.date(2026, 11, 30)) == (Decimal("1.07"), NOV_1)
    assert BOOK.to_base("EUR", DEC_1) == (Decimal("1.08"), DEC_1)
    assert BOOK.to_base("EUR", dt.date(2027, 6, 1)) == (Decimal("1.08"), DEC_1)


def test_a_day_before_the_first_rate_uses_the_first() -> None:
    assert BOOK.to_base("EUR", dt.date(2026, 10, 15)) == (Decimal("1.07"), NOV_1)


def test_the_base_needs_no_rate_and_an_unknown_currency_has_none() -> None:
    assert BOOK.to_base("USD", DEC_1) == (Decimal(1), None)
    assert BOOK.to_base("JPY", DEC_1) is None
    assert BOOK.currencies() == {"USD", "EUR", "GBP", "CHF"}


def test_a_deal_converts_into_the_base_at_the_rate_of_its_date() -> None:
    # 140,000 × 1.08 = 151,200; on 30 Nov: 140,000 × 1.07 = 149,800.
    assert BOOK.convert(Money(Decimal(140_000), "EUR"), "USD", dt.date(2026, 12, 2)) == (
        Conversion(Money(Decimal("151200.00"), "USD"), Decimal("1.08"), DEC_1)
    )
    on_30_nov = BOOK.convert(Money(Decimal(140_000), "EUR"), "USD", dt.date(2026, 11, 30))
    assert on_30_nov is not None and on_30_nov.money == Money(Decimal("149800.00"), "USD")


def test_a_cross_rate_goes_through_the_base() -> None:
    # EUR→GBP on 2 Dec: 1.08 ÷ 1.28 = 0.84375; 140,000 × 0.84375 = 118,125.
    december = BOOK.convert(Money(Decimal(140_000), "EUR"), "GBP", dt.date(2026, 12, 2))
    assert december == Conversion(Money(Decimal("118125.00"), "GBP"), Decimal("0.84375"), DEC_1)
    # On 20 Nov: 1.07 ÷ 1.25 = 0.856; 100 × 0.856 = 85.60.
    november = BOOK.convert(Money(Decimal(100), "EUR"), "GBP", dt.date(2026, 11, 20))
    assert november == Conversion(Money(Decimal("85.60"), "GBP"), Decimal("0.856"), NOV_1)


def test_a_cross_rate_is_dated_by_the_later_of_its_two_rates() -> None:
    # CHF's rate is from 25 Nov, EUR's in force on 28 Nov from 1 Nov: the pair dates 25 Nov.
    # 1.07 ÷ 1.13 = 0.9469026548…; 1,000 × that = 946.9026… → CHF 946.90.
    converted = BOOK.convert(Money(Decimal(1000), "EUR"), "CHF", dt.date(2026, 11, 28))
    assert converted is not None
    assert converted.money == Money(Decimal("946.90"), "CHF")
    assert converted.rate_date == NOV_25
    assert converted.rate.quantize(Decimal("0.0000001")) == Decimal("0.9469027")


def test_out_of_the_base_the_rate_is_its_inverse() -> None:
    # $100 ÷ 1.08 = 92.5925… → €92.59.
    converted = BOOK.convert(Money(Decimal(100), "USD"), "EUR", dt.date(2026, 12, 2))
    assert converted is not None and converted.money == Money(Decimal("92.59"), "EUR")


def test_without_a_rate_on_either_side_there_is_no_conversion() -> None:
    assert BOOK.convert(Money(Decimal(100), "JPY"), "USD", DEC_1) is None
    assert BOOK.convert(Money(Decimal(100), "USD"), "JPY", DEC_1) is None
    assert BOOK.convert(Money(Decimal(100), "EUR"), "JPY", DEC_1) is None
    assert RateBook("USD", []).convert(Money(Decimal(100), "EUR"), "USD", DEC_1) is None


def test_the_same_currency_converts_to_itself_without_a_rate() -> None:
    assert RateBook("USD", []).convert(Money(Decimal("12.34"), "JPY"), "JPY", DEC_1) == (
        Conversion(Money(Decimal("12.34"), "JPY"), Decimal(1), None)
    )


def test_amounts_round_to_cents_half_up_as_money_does_everywhere() -> None:
    book = RateBook("USD", [Rate("EUR", NOV_1, Decimal("1.01"))])
    # 0.50 × 1.01 = 0.505: half a cent rounds up to 0.51 (banker's rounding would give 0.50).
    half = book.convert(Money(Decimal("0.50"), "EUR"), "USD", DEC_1)
    assert half is not None and half.money == Money(Decimal("0.51"), "USD")
    # 10.01 × 1.01 = 10.1101 → 10.11.
    below = book.convert(Money(Decimal("10.01"), "EUR"), "USD", DEC_1)
    assert below is not None and below.money == Money(Decimal("10.11"), "USD")
