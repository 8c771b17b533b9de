"""Figures from history: closed figures, forecast accuracy and the week's flow.

Each entry point takes the team's reps, its timezone (whose "today" and ISO weeks count) and,
for money, the team's reporting currency and the rate book; each returns a value type of
`domain.forecast`. The digest calls them; the SQL is in `storage.history`.

A deal whose currency has no rate at all cannot be converted: it is still counted and named
in its line (its `converted` is None) but adds no money, and it is listed in `excluded` with
the reason, so a total never silently leaves it out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from domain.dates import quarter_bounds, quarter_of
from domain.forecast import (
    ClosedFigures,
    ExcludedDeal,
    Flow,
    FlowLine,
    ForecastAccuracy,
    ForecastDeal,
)
from domain.fx import RateBook
from domain.money import Money, format_money
from domain.stages import FORECAST_CATEGORIES
from reminders.jobs import week_period
from storage.history import FieldChange, HistoryDeal, HistoryRepository, SnapshotStand

# The flow's lines, in the order a forecast call walks through them.
FLOW_KINDS = (
    "created",
    "pulled_in",
    "pushed_out",
    "amount_up",
    "amount_down",
    "moved",
    "won",
    "lost",
)
# A quarter's accuracy is final, and reported, for the first week of the next quarter: the
# Monday digest after a quarter ends says how its commit turned out.
FINAL_REPORT_DAYS = 7
_RATIO = Decimal("0.0001")
_CATEGORY_WORDS = {
    "pipeline": "pipeline",
    "best_case": "best case",
    "commit": "commit",
    "omitted": "omitted",
}


def _start_of(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def _ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part / whole).quantize(_RATIO, ROUND_HALF_UP)


def _name(account: str, title: str | None) -> str:
    return f"{account} — {title}" if title else account


# --- closed figures -------------------------------------------------------------------------


def closed_figures(
    session: Session, *, reps: Sequence[str], zone: ZoneInfo, today: dt.date
) -> ClosedFigures:
    """Return the quarter so far's win rate, average days to close and slip rate.

    - Win rate: won ÷ (won + lost), by count, of the deals closed (close date, which is the
      day they closed) from the quarter's first day to `today`.
    - Average days to close: won deals of those, from the day created (in `zone`) to the
      day closed, rounded half up to whole days.
    - Slip rate: the deals whose close date was moved later at least once since the quarter
      began (the move written as a deal closed is the day it closed, not a push) ÷ the deals
      open at any time this quarter or closed in it.
    """
    first_day, _ = quarter_bounds(today)
    history = HistoryRepository(session)
    closed = history.closed_between(owner_ids=reps, first_day=first_day, last_day=today)
    won = [deal for deal in closed if deal.status == "won"]
    days = [
        (deal.close_date - deal.created_at.astimezone(zone).date()).days
        for deal in won
        if deal.close_date is not None
    ]
    average = (
        int((Decimal(sum(days)) / len(days)).quantize(Decimal(1), ROUND_HALF_UP)) if days else None
    )
    counted, slipped = history.slip_counts(
        owner_ids=reps,
        first_day=first_day,
        created_before=_start_of(today + dt.timedelta(days=1), zone),
        pushed_since=_start_of(first_day, zone),
    )
    return ClosedFigures(
        win_rate=_ratio(Decimal(len(won)), Decimal(len(closed))),
        average_days_to_close=average,
        slip_rate=_ratio(Decimal(slipped), Decimal(counted)),
    )


# --- money ----------------------------------------------------------------------------------


@dataclass
class _Converter:
    """Converts deals into the reporting currency, keeping the deals it could not convert."""

    currency: str
    rates: RateBook
    excluded: dict[int, ExcludedDeal]

    def convert(self, deal_id: int, name: str, amount: Money | None, on: dt.date) -> Money | None:
        """Return `amount` in the reporting currency; None without an amount or a rate."""
        if amount is None:
            return None
        if amount.currency == self.currency:
            return amount  # what `RateBook.convert` would give, without its Conversion
        conversion = self.rates.convert(amount, to=self.currency, on=on)
        if conversion is None:
            missing = amount.currency if self.rates.to_base(amount.currency, on) is None else None
            missing = missing or self.currency
            self.excluded.setdefault(
                deal_id,
                ExcludedDeal(
                    deal_id=deal_id,
                    name=name,
                    amount=amount,
                    reason=f"no {missing} rate (dealbot fx set {missing} …)",
                ),
            )
            return None
        return conversion.money

    def amount_of(
        self, deal_id: int, name: str, amount: Decimal | None, currency: str, on: dt.date
    ) -> Decimal | None:
        """Return `convert`'s amount for an amount and its currency as read: no Money is built
        for one already in the reporting currency."""
        if amount is None:
            return None
        if currency == self.currency:
            return amount
        converted = self.convert(deal_id, name, Money(amount, currency), on)
        return None if converted is None else converted.amount

    def total(self, amounts: Iterable[Money | None]) -> Money:
        return self.total_of(m.amount if m is not None else None for m in amounts)

    def total_of(self, amounts: Iterable[Decimal | None]) -> Money:
        return Money(sum((a for a in amounts if a is not None), Decimal(0)), self.currency)


def _money(amount: Decimal | None, currency: str) -> Money | None:
    return None if amount is None else Money(amount, currency)


# --- forecast accuracy ----------------------------------------------------------------------


def forecast_accuracy(
    session: Session,
    *,
    reps: Sequence[str],
    zone: ZoneInfo,
    today: dt.date,
    currency: str,
    rates: RateBook,
) -> ForecastAccuracy:
    """Return won ÷ the commit called at the quarter's start, final once the quarter is over.

    The quarter is today's, except in a quarter's first `FINAL_REPORT_DAYS` days, when it is
    the quarter just ended (then `final`: named "forecast accuracy"; before its end the same
    figure is "commit closed so far"). The commit called is the commit-category deals,
    closing in the quarter, of the earliest weekly snapshot taken in the quarter, each
    converted at its close date as called; `won_of_commit` is those deals won in the
    quarter, at the amount won, converted at the day they closed. A deal with no rate is
    left out of both (so the ratio compares like with like) and listed in `excluded`.
    """
    first_day, last_day = quarter_bounds(today)
    if (today - first_day).days < FINAL_REPORT_DAYS:
        first_day, last_day = quarter_bounds(first_day - dt.timedelta(days=1))
    final = today > last_day
    history = HistoryRepository(session)
    converter = _Converter(currency, rates, {})
    week = history.earliest_snapshot_week(
        owner_ids=reps,
        first_week=week_period(_start_of(first_day, zone), zone),
        last_week=week_period(_start_of(last_day, zone), zone),
    )
    quarter = quarter_of(first_day)
    if week is None:
        return ForecastAccuracy(
            quarter=quarter,
            final=final,
            commit_called=None,
            won_of_commit=Money(Decimal(0), currency),
            ratio=None,
        )
    # The snapshot's commit deals closing in the quarter (filtered in SQL), each beside what
    # it became.
    called = history.commit_called(week=week, owner_ids=reps, closing=(first_day, last_day))
    called_amounts: list[Decimal | None] = []
    won_amounts: list[Decimal | None] = []
    for row in called:
        name = _name(row.account, row.title)
        on = row.close_date or row.taken_at.astimezone(zone).date()
        at_call = converter.amount_of(row.deal_id, name, row.amount, row.currency, on)
        if at_call is None and row.amount is not None:
            continue  # no rate: excluded from both sides
        called_amounts.append(at_call)
        if (
            row.status == "won"
            and row.closed_on is not None
            and first_day <= row.closed_on <= last_day
        ):
            won_amounts.append(
                converter.amount_of(
                    row.deal_id, name, row.amount_now, row.currency_now, row.closed_on
                )
            )
    commit_called = converter.total_of(called_amounts)
    won_of_commit = converter.total_of(won_amounts)
    return ForecastAccuracy(
        quarter=quarter,
        final=final,
        commit_called=commit_called,
        won_of_commit=won_of_commit,
        ratio=_ratio(won_of_commit.amount, commit_called.amount),
        excluded=tuple(converter.excluded.values()),
    )


# --- the week's flow ------------------------------------------------------------------------


class _FlowLines:
    """The flow's lines as they fill: each deal named and converted once, however many lines
    it sits on (pushed and moved to best case), at its close date (else the snapshot's day)."""

    def __init__(self, converter: _Converter, since_day: dt.date) -> None:
        self.converter = converter
        self.since_day = since_day
        self.lines: dict[str, list[tuple[ForecastDeal, Money | None]]] = {
            kind: [] for kind in FLOW_KINDS
        }
        self._named: dict[int, tuple[str, Money | None, Money | None]] = {}

    def named(self, deal: HistoryDeal) -> tuple[str, Money | None, Money | None]:
        """Return the deal's (name, amount, amount in the reporting currency)."""
        found = self._named.get(deal.id)
        if found is None:
            name = _name(deal.account, deal.title)
            amount = _money(deal.amount, deal.currency)
            converted = self.converter.convert(
                deal.id, name, amount, deal.close_date or self.since_day
            )
            found = self._named[deal.id] = (name, amount, converted)
        return found

    def add(self, kind: str, deal: HistoryDeal, money: Money | None, note: str) -> None:
        """Put the deal on the `kind` line; `money` is an amount line's difference."""
        name, amount, converted = self.named(deal)
        line = ForecastDeal(
            deal_id=deal.id,
            name=name,
            owner_id=deal.owner_id,
            amount=amount,
            converted=converted,
            note=note,
        )
        # An amount line carries the difference; every other line the deal's converted amount.
        self.lines[kind].append((line, money if money is not None else converted))


def week_flow(
    session: Session,
    *,
    reps: Sequence[str],
    zone: ZoneInfo,
    now: dt.datetime,
    currency: str,
    rates: RateBook,
) -> Flow:
    """Return what moved since last week's snapshot, line by line, as Clari's flow shows it.

    Last week's snapshot (the previous ISO week in `zone`) is compared with the deals now:
    created since it was taken, pulled in (close date earlier), pushed out (later: "pushed
    out 14 days", and "out of 2026-Q4" when it left the quarter it was in), amount up and
    down (the difference), moved between categories ("best case → commit"), won and lost.
    A deal can sit on several lines (pushed and moved to best case). Money is the deal's
    amount in the reporting currency at its close date (else the snapshot's day); for amount
    lines, the difference.

    With no snapshot last week (`since_week` None), the start of the week is rebuilt from
    the deals' history of the last 7 days instead: each field's value before its first
    change in the window, for the deals that existed and were open 7 days ago.
    """
    history = HistoryRepository(session)
    last_week = week_period(now - dt.timedelta(days=7), zone)
    taken = history.snapshot_taken(week=last_week, owner_ids=reps)
    since_week: str | None
    if taken is not None:
        since = taken
        since_week = last_week
        # Only the deals that moved (the database compares each with its snapshot row): a
        # team's unchanged deals are most of them and add no line.
        moved = history.moved_since_snapshot(week=last_week, owner_ids=reps, since=since)
        deals = {row.deal.id: row.deal for row in moved}
        then = {row.deal.id: row.then for row in moved if row.then is not None}
    else:
        since = now - dt.timedelta(days=7)
        since_week = None
        deals = {deal.id: deal for deal in history.live_since(owner_ids=reps, since=since)}
        then = _rebuilt(deals.values(), history.changes_since(owner_ids=reps, since=since), since)
    since_day = since.astimezone(zone).date()
    converter = _Converter(currency, rates, {})
    flow = _FlowLines(converter, since_day)
    for deal in deals.values():
        before = then.get(deal.id)
        if before is None:
            if deal.created_at >= since:
                flow.add("created", deal, None, "")
            if deal.status != "open" and deal.closed_at is not None and deal.closed_at >= since:
                flow.add(deal.status, deal, None, "")  # created and closed within the week
            continue
        if deal.status != "open":
            if deal.closed_at is not None and deal.closed_at >= since:
                flow.add(deal.status, deal, None, "")
            continue
        _compare(deal, before, flow)

    return Flow(
        since_week=since_week,
        week=week_period(now, zone),
        lines=tuple(
            FlowLine(
                kind=kind,
                count=len(entries),
                money=converter.total(money for _, money in entries),
                deals=tuple(named for named, _ in entries),
            )
            for kind, entries in flow.lines.items()
        ),
        excluded=tuple(converter.excluded.values()),
    )


def _rebuilt(
    deals: Iterable[HistoryDeal], changes: Sequence[FieldChange], since: dt.datetime
) -> dict[int, SnapshotStand]:
    """Return how the deals that existed at `since`, and were open then, stood then."""
    first_old: dict[tuple[int, str], str | None] = {}
    for change in changes:
        first_old.setdefault((change.deal_id, change.field), change.old_value)
    rebuilt: dict[int, SnapshotStand] = {}
    for deal in deals:
        if deal.created_at >= since:
            continue

        def then(field: str, now_value: str | None, deal_id: int = deal.id) -> str | None:
            return first_old.get((deal_id, field), now_value)

        status = then("status", deal.status)
        if status != "open":
            continue
        amount_text = then(
            "amount", None if deal.amount is None else f"{deal.amount:.2f} {deal.currency}"
        )
        close_text = then("close_date", deal.close_date.isoformat() if deal.close_date else None)
        category = then("forecast_category", deal.forecast_category) or deal.forecast_category
        amount = _parsed_amount(amount_text)
        rebuilt[deal.id] = SnapshotStand(
            amount=None if amount is None else amount.amount,
            currency=deal.currency if amount is None else amount.currency,
            forecast_category=category,
            close_date=dt.date.fromisoformat(close_text) if close_text else None,
        )
    return rebuilt


def _parsed_amount(text: str | None) -> Money | None:
    """Return the money of a history row's amount ("50000.00 USD")."""
    if not text:
        return None
    value, _, code = text.partition(" ")
    return Money(Decimal(value), code)


def _compare(deal: HistoryDeal, before: SnapshotStand, flow: _FlowLines) -> None:
    """Add the lines of an open deal that was open at the start of the week too."""
    old, new = before.close_date, deal.close_date
    if old is not None and new is not None and new != old:
        days = abs((new - old).days)
        if new < old:
            flow.add("pulled_in", deal, None, f"pulled in {days} days")
        else:
            note = f"pushed out {days} days"
            quarter_end = quarter_bounds(old)[1]
            if old <= quarter_end < new:
                note += f", out of {quarter_of(old)}"
            flow.add("pushed_out", deal, None, note)
    # Decimals and codes compared first: Money is built only for an amount that changed.
    if (
        deal.amount is not None
        and before.amount is not None
        and (deal.amount != before.amount or deal.currency != before.currency)
    ):
        name = _name(deal.account, deal.title)
        on = deal.close_date or flow.since_day
        # The old amount converted before the deal's own (named once for all its lines): when
        # neither has a rate, the deal's exclusion reports the one converted first.
        was = flow.converter.convert(deal.id, name, Money(before.amount, before.currency), on)
        _, _, now = flow.named(deal)
        if was is not None and now is not None and was.amount != now.amount:
            difference = Money(abs(now.amount - was.amount), flow.converter.currency)
            kind = "amount_up" if now.amount > was.amount else "amount_down"
            sign = "+" if kind == "amount_up" else "−"
            flow.add(kind, deal, difference, f"{sign}{format_money(difference)}")
        elif was is None or now is None:
            kind = "amount_up" if deal.amount > before.amount else "amount_down"
            flow.add(kind, deal, None, "")
    if (
        before.forecast_category != deal.forecast_category
        and before.forecast_category in FORECAST_CATEGORIES
    ):
        words = (
            f"{_CATEGORY_WORDS.get(before.forecast_category, before.forecast_category)} → "
            f"{_CATEGORY_WORDS.get(deal.forecast_category, deal.forecast_category)}"
        )
        flow.add("moved", deal, None, words)
