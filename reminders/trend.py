"""The team's weekly trend for the forecast chart: commit called and won so far, per week."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from domain.fx import RateBook
from domain.money import Money
from reminders.chart import ChartWeek
from storage.trend import TrendRepository


def weekly_trend(
    session: Session,
    *,
    reps: Iterable[str],
    zone: ZoneInfo,
    quarter: tuple[dt.date, dt.date],
    currency: str,
    rates: RateBook,
    now: dt.datetime,
) -> list[ChartWeek]:
    """Return one point per snapshot week of `quarter` (first and last day, inclusive) so far.

    A week's commit is the commit called that week: its snapshot's commit deals closing in
    the quarter, each converted into `currency` at the rate of its snapshot close date. Its
    won is what the reps had won in the quarter by the week's end (Sunday midnight in
    `zone`), each deal converted at the rate of the day it closed in `zone`. A deal whose
    currency has no rate is counted in the week's `excluded`, not in its money.
    """
    owners = list(reps)
    repository = TrendRepository(session)
    first_week = _week_of(quarter[0])
    last_week = min(_week_of(quarter[1]), _week_of(now.astimezone(zone).date()))
    weeks = repository.snapshot_weeks(owner_ids=owners, first_week=first_week, last_week=last_week)
    if not weeks:
        return []
    commit: dict[str, Decimal] = dict.fromkeys(weeks, Decimal(0))
    excluded: dict[str, int] = dict.fromkeys(weeks, 0)
    # The commit already in `currency` (most of it) is summed by the database; the rest is
    # converted deal by deal, each at its own close date's rate.
    for week, total in repository.commit_totals(
        owner_ids=owners,
        first_week=first_week,
        last_week=last_week,
        closing=quarter,
        currency=currency,
    ).items():
        commit[week] += total
    for row in repository.commit_snapshots(
        owner_ids=owners,
        first_week=first_week,
        last_week=last_week,
        closing=quarter,
        other_than=currency,
    ):
        if row.amount is None:
            continue
        converted = rates.convert(Money(row.amount, row.currency), currency, row.close_date)
        if converted is None:
            excluded[row.week] += 1
        else:
            commit[row.week] += converted.money.amount
    start = _midnight(quarter[0], zone)
    won = repository.won_between(
        owner_ids=owners, start=start, end=_midnight(quarter[1] + dt.timedelta(days=1), zone)
    )
    # Each won deal converted once (at the day it closed), not once per week it counts in.
    converted_won: list[tuple[dt.datetime, Decimal | None]] = []
    for deal in won:
        if deal.amount is None:
            continue
        closed_on = deal.closed_at.astimezone(zone).date()
        converted = rates.convert(Money(deal.amount, deal.currency), currency, closed_on)
        converted_won.append(
            (deal.closed_at, None if converted is None else converted.money.amount)
        )
    points = []
    for week in weeks:
        week_end = _midnight(_monday(week) + dt.timedelta(days=7), zone)
        won_so_far, unconverted = Decimal(0), 0
        for closed_at, amount in converted_won:
            if closed_at >= week_end:
                break  # in the order they closed: the rest closed later
            if amount is None:
                unconverted += 1
            else:
                won_so_far += amount
        points.append(
            ChartWeek(
                week=week,
                commit=commit[week],
                won=won_so_far,
                excluded=excluded[week] + unconverted,
            )
        )
    return points


def _week_of(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _monday(week: str) -> dt.date:
    year, number = week.split("-W")
    return dt.date.fromisocalendar(int(year), int(number), 1)


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone)
