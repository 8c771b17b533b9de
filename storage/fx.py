"""Exchange rates as an admin set them (`dealbot fx`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.fx import Rate, RateBook
from storage.models import FxRate


class FxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def rates(self) -> list[Rate]:
        rows = self.session.execute(
            select(FxRate.currency, FxRate.effective_on, FxRate.rate).order_by(
                FxRate.currency, FxRate.effective_on
            )
        )
        return [Rate(currency, day, Decimal(rate)) for currency, day, rate in rows]

    def rate_book(self, base: str) -> RateBook:
        """Return every rate known, for converting into and out of `base` (DEALBOT_CURRENCY)."""
        return RateBook(base, self.rates())

    def set_rate(
        self, *, currency: str, rate: Decimal, effective_on: dt.date, by: str, at: dt.datetime
    ) -> Decimal | None:
        """Set (or replace) `currency`'s rate from `effective_on` on; return the rate replaced."""
        row = self.session.scalar(
            select(FxRate).where(FxRate.currency == currency, FxRate.effective_on == effective_on)
        )
        replaced: Decimal | None = None
        if row is None:
            self.session.add(
                FxRate(
                    currency=currency, effective_on=effective_on, rate=rate, set_by=by, set_at=at
                )
            )
        else:
            replaced = Decimal(row.rate)
            row.rate, row.set_by, row.set_at = rate, by, at
        self.session.flush()
        return replaced

    def import_rates(self, rates: Iterable[Rate], *, by: str, at: dt.datetime) -> tuple[int, int]:
        """Store `rates`, each replacing any rate of its currency and day; return (new, replaced).

        The caller has checked every rate first: this writes all of them in its session, so
        a failure part way rolls the whole import back.
        """
        wanted = {(rate.currency, rate.effective_on): rate.rate for rate in rates}
        if not wanted:
            return 0, 0
        currencies = sorted({currency for currency, _ in wanted})
        days = sorted({day for _, day in wanted})
        # One query for the rows already there, not one per line of the file.
        existing = {
            (row.currency, row.effective_on): row
            for row in self.session.scalars(
                select(FxRate).where(
                    FxRate.currency.in_(currencies),
                    FxRate.effective_on >= days[0],
                    FxRate.effective_on <= days[-1],
                )
            )
        }
        added = replaced = 0
        for (currency, day), value in wanted.items():
            row = existing.get((currency, day))
            if row is None:
                self.session.add(
                    FxRate(currency=currency, effective_on=day, rate=value, set_by=by, set_at=at)
                )
                added += 1
            else:
                row.rate, row.set_by, row.set_at = value, by, at
                replaced += 1
        self.session.flush()
        return added, replaced

    def count(self) -> int:
        """Return how many rates are stored, every currency and day."""
        return self.session.scalar(select(func.count()).select_from(FxRate)) or 0
