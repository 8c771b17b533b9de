from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import (
    MAX_AMOUNT,
    InvalidAmount,
    Money,
    format_money,
    format_money_short,
    parse_amount,
)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50000", usd("50000")),
        ("50k", usd("50000")),
        ("50K", usd("50000")),
        ("$1.2M", usd("1200000")),
        ("1.2m", usd("1200000")),
        ("$2.5b", usd("2500000000")),
        ("€40,000", Money(Decimal("40000"), "EUR")),
        ("£12,500.50", Money(Decimal("12500.50"), "GBP")),
        ("40000 EUR", Money(Decimal("40000"), "EUR")),
        ("EUR 40000", Money(Decimal("40000"), "EUR")),
        ("40k eur", Money(Decimal("40000"), "EUR")),
        ("40keur", Money(Decimal("40000"), "EUR")),
        ("CHF 1.5m", Money(Decimal("1500000"), "CHF")),
        ("$50 usd", usd("50")),
        ("  75k  ", usd("75000")),
        (".5k", usd("500")),
        ("12.345", usd("12.35")),
        ("12.344", usd("12.34")),
        ("1,234,567.891", usd("1234567.89")),
        ("1000000000000", usd("1000000000000")),
    ],
)
def test_parse_amount_reads_what_reps_type(text: str, expected: Money) -> None:
    assert parse_amount(text) == expected


def test_parse_amount_uses_the_default_currency_only_when_none_is_named() -> None:
    assert parse_amount("50k", default_currency="eur") == Money(Decimal("50000"), "EUR")
    assert parse_amount("$50k", default_currency="EUR").currency == "USD"


def test_parse_amount_returns_cents_exactly() -> None:
    amount = parse_amount("1.1k").amount
    assert isinstance(amount, Decimal)
    assert amount == Decimal("1100.00")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", "No amount"),
        ("   ", "No amount"),
        ("-5", "negative"),
        ("−5k", "negative"),
        ("(500)", "negative"),
        ("0", "zero"),
        ("$0.00", "zero"),
        ("0.004", "zero"),
        ("abc", "`abc`"),
        ("nan", "`nan`"),
        ("inf", "`inf`"),
        ("1e5", "`1e5`"),
        ("$40 EUR", "two currencies"),
        ("4,00", "commas"),
        ("40.000,50", "`40.000,50`"),
        ("2T", "`2T`"),
        ("1,000,000,000,001", "1 trillion"),
        ("1001b", "1 trillion"),
        ("40 abc", "`abc`"),
        ("٣٠٠", "`٣٠٠`"),
        ("9" * 60, "too long"),
        ("1.2.3", "`1.2.3`"),
    ],
)
def test_parse_amount_rejects_with_a_message_naming_the_problem(text: str, names: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(text)
    assert names in str(caught.value)


def test_invalid_amount_is_a_value_error() -> None:
    assert issubclass(InvalidAmount, ValueError)


@pytest.mark.parametrize(
    ("money", "shown"),
    [
        (usd("50000"), "$50,000"),
        (usd("50000.00"), "$50,000"),
        (Money(Decimal("40000"), "EUR"), "€40,000"),
        (Money(Decimal("12500.5"), "GBP"), "£12,500.50"),
        (Money(Decimal("50000"), "CHF"), "50,000 CHF"),
        (Money(Decimal("0.07"), "JPY"), "0.07 JPY"),
        (usd("999.999"), "$1,000"),
        (usd("-1200"), "-$1,200"),
        (usd("1234567.8"), "$1,234,567.80"),
    ],
)
def test_format_money(money: Money, shown: str) -> None:
    assert format_money(money) == shown


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("950", "$950"),
        ("999.6", "$1k"),
        ("50000", "$50k"),
        ("12500", "$12.5k"),
        ("125000", "$125k"),
        ("999999", "$1M"),
        ("1200000", "$1.2M"),
        ("1250000", "$1.3M"),
        ("2500000000", "$2.5B"),
        ("-50000", "-$50k"),
    ],
)
def test_format_money_short(amount: str, shown: str) -> None:
    assert format_money_short(usd(amount)) == shown


def test_format_money_short_puts_unknown_currencies_after() -> None:
    assert format_money_short(Money(Decimal("40000"), "CHF")) == "40k CHF"


def test_short_form_parses_back_to_the_same_rounded_amount() -> None:
    assert parse_amount(format_money_short(usd("1200000"))) == usd("1200000")


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        (Decimal("NaN"), "USD"),
        (Decimal("Infinity"), "USD"),
        (Decimal(1), "usd"),
        (Decimal(1), "ABC"),
    ],
)
def test_money_refuses_values_that_are_not_money(amount: Decimal, currency: str) -> None:
    with pytest.raises((TypeError, ValueError)):
        Money(amount, currency)


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "USD")  # type: ignore[arg-type]


cents = st.decimals(
    min_value=Decimal("0.01"), max_value=MAX_AMOUNT, places=2, allow_nan=False, allow_infinity=False
)


@given(amount=cents, currency=st.sampled_from(["USD", "EUR", "GBP", "CHF", "JPY"]))
def test_format_money_round_trips_through_parse_amount(amount: Decimal, currency: str) -> None:
    money = Money(amount, currency)
    assert parse_amount(format_money(money)) == money


@given(st.text(max_size=30))
def test_parse_amount_raises_only_invalid_amount(text: str) -> None:
    try:
        money = parse_amount(text)
    except InvalidAmount as error:
        assert str(error)
    else:
        assert Decimal(0) < money.amount <= MAX_AMOUNT
        assert money.amount == money.amount.quantize(Decimal("0.01"))
