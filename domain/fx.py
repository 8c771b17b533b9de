"""Exchange rates, as data an admin sets: what a total in one currency is made of.

A rate is how much of the base currency (`DEALBOT_CURRENCY`) one unit of another currency is
worth from a date on. A team reporting in another currency converts through the base. A
deal converts at the rate of its date (`RateBook.convert`); a currency with no rate at all
converts to nothing, and the caller lists the deal as excluded rather than guess.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from domain.money import Money

__all__ = ["Conversion", "Rate", "RateBook"]

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Rate:
    currency: str
    effective_on: dt.date
    rate: Decimal  # units of the base currency per unit of `currency`


@dataclass(frozen=True)
class Conversion:
    """A converted amount and the rate it used, so a total can say how it was made."""

    money: Money
    rate: Decimal  # units of the target currency per unit of the original
    rate_date: dt.date | None  # None: same currency, or the base (no rate needed)


class RateBook:
    """Every rate known, by currency and date. Built once per job or request."""

    def __init__(self, base: str, rates: Iterable[Rate]) -> None:
        self.base = base
        by_currency: dict[str, list[tuple[dt.date, Decimal]]] = {}
        for rate in rates:
            by_currency.setdefault(rate.currency, []).append((rate.effective_on, rate.rate))
        self._days: dict[str, list[dt.date]] = {}
        self._rates: dict[str, list[Decimal]] = {}
        for currency, rows in by_currency.items():
            rows.sort()
            self._days[currency] = [day for day, _ in rows]
            self._rates[currency] = [value for _, value in rows]

    def currencies(self) -> frozenset[str]:
        return frozenset(self._days) | {self.base}

    def to_base(self, currency: str, on: dt.date) -> tuple[Decimal, dt.date | None] | None:
        """Return (rate into the base, the day it took effect) for `currency` on `on`.

        The rate in effect on `on` is the latest set on or before it; a date before the
        first rate uses the first (a deal dated before rates were entered still counts,
        at the oldest rate known). None: no rate was ever set for `currency`.
        """
        if currency == self.base:
            return Decimal(1), None
        days = self._days.get(currency)
        if not days:
            return None
        index = max(bisect.bisect_right(days, on) - 1, 0)
        return self._rates[currency][index], days[index]

    def convert(self, money: Money, to: str, on: dt.date) -> Conversion | None:
        """Return `money` in `to` at the rates in effect on `on`; None without a rate."""
        if money.currency == to:
            return Conversion(money, Decimal(1), None)
        source = self.to_base(money.currency, on)
        target = self.to_base(to, on)
        if source is None or target is None:
            return None
        rate = source[0] / target[0]
        # Half up, as every amount typed is rounded (domain/money.py), not Decimal's default
        # half-even: a converted €0.505 must not show a cent less than a typed one.
        amount = (money.amount * rate).quantize(_CENT, rounding=ROUND_HALF_UP)
        dates = [day for _, day in (source, target) if day is not None]
        return Conversion(Money(amount, to), rate, max(dates) if dates else None)
