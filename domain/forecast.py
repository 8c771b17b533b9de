"""The forecast a sales leader runs the Monday call from, as plain values.

The jobs in `reminders/` fill these (the roll-up, the week's flow, forecast accuracy, rep
calibration, learned thresholds); the Block Kit in `handlers/` renders them. Every amount is
in the team's reporting currency, converted at the rate of the deal's date
(`domain.fx.RateBook`); a deal that could not be converted is in `excluded`, never dropped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from domain.money import Money

# The forecast categories of the roll-up, in the order a forecast call reads them.
ROLL_UP_CATEGORIES = ("won", "commit", "best_case", "pipeline")


@dataclass(frozen=True, kw_only=True)
class ForecastDeal:
    """A deal named in a figure: what it is worth in the reporting currency and why named."""

    deal_id: int
    name: str
    owner_id: str
    amount: Money | None  # in the deal's own currency
    converted: Money | None  # in the reporting currency; None: no amount or no rate
    checks: tuple[str, ...] = ()  # the checks it fails (check ids)
    note: str = ""  # "pushed out 14 days", "commit → best case", ...


@dataclass(frozen=True, kw_only=True)
class ExcludedDeal:
    deal_id: int  # 0: not a deal but `quota_of`'s quota
    name: str
    amount: Money | None
    reason: str  # said to the reader: "no EUR rate (dealbot fx set EUR …)", "no amount"
    quota_of: str | None = None  # the rep whose quota could not be converted


@dataclass(frozen=True, kw_only=True)
class RepForecast:
    """One rep's quarter (or the team's, with `rep_id` None)."""

    rep_id: str | None
    won: Money
    commit: Money
    best_case: Money
    pipeline: Money
    quota: Money | None  # None: no quota set for the period
    attainment: Decimal | None  # won ÷ quota
    coverage: Decimal | None  # open (commit + best case + pipeline) ÷ (quota − won)
    at_risk: Money  # commit and best-case money on deals failing a check
    at_risk_deals: tuple[ForecastDeal, ...]


@dataclass(frozen=True, kw_only=True)
class RollUp:
    team_name: str
    period: str  # "2026-Q4"
    currency: str
    reps: tuple[RepForecast, ...]
    team: RepForecast
    excluded: tuple[ExcludedDeal, ...]
    # (currency, rate into the reporting currency, the rate's date) for each rate used.
    rates_used: tuple[tuple[str, Decimal, dt.date | None], ...]


@dataclass(frozen=True, kw_only=True)
class FlowLine:
    """One kind of movement since last week's snapshot, as Clari's "flow" shows it."""

    kind: str  # created, pulled_in, pushed_out, amount_up, amount_down, moved, won, lost
    count: int
    money: Money  # the amount that moved (for amount_up/down, the difference)
    deals: tuple[ForecastDeal, ...]


@dataclass(frozen=True, kw_only=True)
class Flow:
    since_week: str | None  # the snapshot compared against; None: no snapshot yet
    week: str
    lines: tuple[FlowLine, ...]
    # Deals on a line whose currency has no rate: counted and named there (converted None),
    # adding no money; listed here with the reason.
    excluded: tuple[ExcludedDeal, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ForecastAccuracy:
    """At a quarter's end, won ÷ the commit called at its start; before it, "so far".

    `final` False: the quarter is not over, and the figure is named "commit closed so far".
    """

    quarter: str
    final: bool
    commit_called: Money | None  # None: no snapshot from the quarter's first week
    won_of_commit: Money
    ratio: Decimal | None
    # Commit deals whose currency has no rate: left out of both sides of the ratio.
    excluded: tuple[ExcludedDeal, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ClosedFigures:
    """From closed deals and their history, over the quarter so far."""

    win_rate: Decimal | None  # won ÷ (won + lost), by count
    average_days_to_close: int | None  # created → closed, won deals
    slip_rate: Decimal | None  # deals whose close date was pushed ÷ deals counted


@dataclass(frozen=True, kw_only=True)
class RepCalibration:
    """How a rep's calls turned out over the last four quarters."""

    rep_id: str
    closed_deals: int
    close_date_hit_rate: Decimal | None  # closed within the close date called at commit
    mean_slip_days: Decimal | None
    commit_to_won: Decimal | None
    # The same three figures for the four quarters before, for the trend; None: no data.
    previous: RepCalibration | None = None
    # The hit rate's own counts, so it can be said as "7 of 10": the deals that closed by
    # the date called, of the closed deals that had a date called at all.
    on_time: int = 0
    called: int = 0


@dataclass(frozen=True, kw_only=True)
class LearnedThresholds:
    """What closed deals say the thresholds should be, when a team opts in."""

    deals_counted: int
    win_rate: Decimal | None
    required_coverage: Decimal | None  # 1 ÷ win rate
    # stage key -> days in stage before STALLED_IN_STAGE fires, learned from won deals
    stalled_days: tuple[tuple[str, int], ...]
    # segment label -> (win rate, average days to close)
    by_segment: tuple[tuple[str, Decimal | None, int | None], ...] = ()
    # open stage -> (win rate of the deals that reached it, average days won deals spent in it)
    by_stage: tuple[tuple[str, Decimal | None, int | None], ...] = ()
    # How many of the deals counted have their post-mortem in (how much the figures rest on).
    post_mortems: int = 0
    # stage key -> how many won deals each of `stalled_days`' limits was learned from.
    stalled_won: tuple[tuple[str, int], ...] = ()
