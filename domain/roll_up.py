"""The quarter's forecast roll-up: won, commit, best case and pipeline against quota.

One pure function over plain rows, so the digest, `/pipeline team` and `/pipeline` show the
same figures from the same arithmetic. Every amount is converted into the reporting currency
at the rate of the deal's date (`RateBook.convert`); a deal that cannot be converted is
listed in `excluded` with the reason and counts in no figure, never silently dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from domain.forecast import ExcludedDeal, ForecastDeal, RepForecast, RollUp
from domain.fx import RateBook
from domain.money import Money

__all__ = ["AT_RISK_CATEGORIES", "RollUpDeal", "missing_rate_reason", "roll_up"]

_RATIO = Decimal("0.01")
# The categories whose money a forecast call leans on: a failing check there is money at risk.
AT_RISK_CATEGORIES = ("commit", "best_case")
_OPEN_CATEGORIES = ("commit", "best_case", "pipeline")


@dataclass(frozen=True, slots=True)
class RollUpDeal:
    """One deal as the roll-up reads it."""

    deal_id: int
    name: str
    owner_id: str
    amount: Decimal | None
    currency: str | None
    forecast_category: str
    status: str
    close_date: dt.date | None
    closed_on: dt.date | None = None  # the day a won or lost deal closed (team's timezone)
    checks: tuple[str, ...] = ()  # the checks it fails


def missing_rate_reason(currency: str) -> str:
    """Say why an amount in `currency` is left out, and the command that would include it."""
    return f"no {currency} rate — dealbot fx set {currency} <rate>"


class _Tally:
    """One rep's sums in the reporting currency while the deals are read."""

    def __init__(self) -> None:
        zero = Decimal(0)
        self.sums = {"won": zero, "commit": zero, "best_case": zero, "pipeline": zero}
        self.at_risk = zero
        self.at_risk_deals: list[ForecastDeal] = []


def _ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    if whole <= 0:
        return None
    return (part / whole).quantize(_RATIO)


def _forecast(
    rep_id: str | None,
    currency: str,
    sums: Mapping[str, Decimal],
    quota: Decimal | None,
    at_risk: Decimal,
    at_risk_deals: Sequence[ForecastDeal],
) -> RepForecast:
    won = sums["won"]
    open_money = sums["commit"] + sums["best_case"] + sums["pipeline"]
    return RepForecast(
        rep_id=rep_id,
        won=Money(won, currency),
        commit=Money(sums["commit"], currency),
        best_case=Money(sums["best_case"], currency),
        pipeline=Money(sums["pipeline"], currency),
        quota=None if quota is None else Money(quota, currency),
        attainment=None if quota is None else _ratio(won, quota),
        # Coverage of what is left to win; none once the quota is met (nothing is left).
        coverage=None if quota is None else _ratio(open_money, quota - won),
        at_risk=Money(at_risk, currency),
        at_risk_deals=tuple(sorted(at_risk_deals, key=_by_money)),
    )


def _by_money(deal: ForecastDeal) -> tuple[Decimal, int]:
    return (-(deal.converted.amount if deal.converted else Decimal(0)), deal.deal_id)


def roll_up(
    *,
    team_name: str,
    period: str,
    reps: Sequence[str],
    deals: Iterable[RollUpDeal],
    quotas: Mapping[str, Money],
    rates: RateBook,
    currency: str,
    quarter: tuple[dt.date, dt.date],
    today: dt.date,
) -> RollUp:
    """Return the quarter's roll-up of `deals` per rep in `reps` and for the team.

    Won: deals won in the quarter up to `today`. Commit, best case, pipeline: open deals
    whose close date is in the quarter, by forecast category (omitted is left out). A
    quota set in another currency is converted at today's rate. A rep with deals but not in
    `reps` (they left the team) still gets a line, after the team's reps, so the team total
    is the sum of the lines shown.
    """
    start, end = quarter
    tallies: dict[str, _Tally] = {rep: _Tally() for rep in reps}
    excluded: list[ExcludedDeal] = []
    used: set[tuple[str, Decimal, dt.date | None]] = set()

    def convert(money: Money, on: dt.date) -> Money | None:
        if money.currency == currency:
            return money
        conversion = rates.convert(money, currency, on)
        if conversion is None:
            return None
        used.add((money.currency, conversion.rate, conversion.rate_date))
        return conversion.money

    for deal in deals:
        if deal.status == "won":
            day = deal.closed_on or deal.close_date
            if day is None or not start <= day <= min(end, today):
                continue
            category = "won"
        elif deal.status == "open":
            day = deal.close_date
            if day is None or not start <= day <= end:
                continue
            if deal.forecast_category not in _OPEN_CATEGORIES:
                continue
            category = deal.forecast_category
        else:
            continue
        if deal.amount is None:
            excluded.append(
                ExcludedDeal(deal_id=deal.deal_id, name=deal.name, amount=None, reason="no amount")
            )
            continue
        own_currency = deal.currency or rates.base
        own: Money | None = None
        converted: Money | None = None
        if own_currency == currency:
            # Most deals: summed as read; Money is built below only for a deal at risk.
            amount = deal.amount
        else:
            own = Money(deal.amount, own_currency)
            converted = convert(own, day)
            if converted is None:
                excluded.append(
                    ExcludedDeal(
                        deal_id=deal.deal_id,
                        name=deal.name,
                        amount=own,
                        reason=missing_rate_reason(own.currency),
                    )
                )
                continue
            amount = converted.amount
        tally = tallies.get(deal.owner_id)
        if tally is None:
            tally = tallies[deal.owner_id] = _Tally()
        tally.sums[category] += amount
        if category in AT_RISK_CATEGORIES and deal.checks:
            if own is None:
                own = converted = Money(deal.amount, own_currency)
            tally.at_risk += amount
            tally.at_risk_deals.append(
                ForecastDeal(
                    deal_id=deal.deal_id,
                    name=deal.name,
                    owner_id=deal.owner_id,
                    amount=own,
                    converted=converted,
                    checks=deal.checks,
                )
            )

    rep_quotas: dict[str, Decimal] = {}
    for rep, quota in quotas.items():
        if rep not in tallies:
            continue
        converted_quota = convert(quota, today)
        if converted_quota is None:
            excluded.append(
                ExcludedDeal(
                    deal_id=0,
                    name="quota",
                    quota_of=rep,
                    amount=quota,
                    reason=missing_rate_reason(quota.currency),
                )
            )
            continue
        rep_quotas[rep] = converted_quota.amount

    lines = tuple(
        _forecast(
            rep,
            currency,
            tally.sums,
            rep_quotas.get(rep),
            tally.at_risk,
            tally.at_risk_deals,
        )
        for rep, tally in tallies.items()
    )
    team_sums = {
        key: sum((t.sums[key] for t in tallies.values()), Decimal(0))
        for key in ("won", "commit", "best_case", "pipeline")
    }
    team = _forecast(
        None,
        currency,
        team_sums,
        sum(rep_quotas.values(), Decimal(0)) if rep_quotas else None,
        sum((t.at_risk for t in tallies.values()), Decimal(0)),
        [deal for t in tallies.values() for deal in t.at_risk_deals],
    )
    return RollUp(
        team_name=team_name,
        period=period,
        currency=currency,
        reps=lines,
        team=team,
        excluded=tuple(excluded),
        rates_used=tuple(sorted(used, key=lambda r: (r[0], r[2] or dt.date.min, r[1]))),
    )
