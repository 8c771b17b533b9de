"""Exchange rates as an admin set them (`dealbot fx`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
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
    ) -> None:
        """Set (or replace) `currency`'s rate from `effective_on` on."""
        row = self.session.scalar(
            select(FxRate).where(FxRate.currency == currency, FxRate.effective_on == effective_on)
        )
        if row is None:
            self.session.add(
                FxRate(
                    currency=currency, effective_on=effective_on, rate=rate, set_by=by, set_at=at
                )
            )
        else:
            row.rate, row.set_by, row.set_at = rate, by, at
        self.session.flush()
