"""Attainment adds up won deals in the quota's currency and lists every deal it leaves out."""

from __future__ import annotations

from decimal import Decimal

from domain.money import Money
from domain.teams import ExcludedDeal, attainment_of
from storage.teams import WonDeal


def _won(deal_id: int, amount: str | None, currency: str = "USD") -> WonDeal:
    return WonDeal(
        id=deal_id,
        owner_id="U0ANA",
        account=f"Account {deal_id}",
        title=None,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
    )


def test_deals_in_another_currency_or_without_amount_are_listed_not_added() -> None:
    quota = Money(Decimal("80000"), "EUR")
    got = attainment_of("U0ANA", quota, [_won(1, "20000", "EUR"), _won(2, "50000"), _won(3, None)])
    assert got.won == (Money(Decimal("20000"), "EUR"),)
    assert got.ratio == Decimal("0.25") and got.deal_count == 1
    assert got.excluded == (
        ExcludedDeal(
            deal_id=2, name="Account 2", amount=Money(Decimal("50000"), "USD"), reason="currency"
        ),
        ExcludedDeal(deal_id=3, name="Account 3", amount=None, reason="no_amount"),
    )


def test_without_a_quota_each_currency_is_totalled_apart() -> None:
    got = attainment_of(
        "U0ANA", None, [_won(1, "10000"), _won(2, "5000", "EUR"), _won(3, "2500.50")]
    )
    assert got.quota is None and got.ratio is None and got.excluded == ()
    assert got.won == (Money(Decimal("5000"), "EUR"), Money(Decimal("12500.50"), "USD"))
    assert got.deal_count == 3


def test_nothing_won_against_a_quota_is_zero_percent() -> None:
    got = attainment_of("U0ANA", Money(Decimal("1000"), "USD"), [])
    assert got.won == (Money(Decimal(0), "USD"),) and got.ratio == 0
