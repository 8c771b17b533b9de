"""`rep-calibration`: how each rep's calls turned out, and what closed deals teach the checks.

Rep calibration (`rep_calibration`), over the deals a rep closed in the last four quarters
(quarters of the team's zone, today's included) and, for the trend, the four before:
- **close-date hit rate**: the share of closed deals that closed on or before the date the
  rep called. The date called is the close date in force when the deal was first forecast
  as commit; for a deal never committed, the one in force 30 days before it closed. Both
  are read from the deal's history (a won or lost deal's close date is the day it closed,
  and the date planned until then is the old value of that closing change).
- **mean slip**: closed day − date called, in days, averaged (early closes count negative).
- **commit → won**: of the closed deals ever forecast as commit, the share won.
The monthly job DMs each rep their own figures, privately; a rep with nothing closed in the
window gets nothing.

Learned thresholds (`learned_thresholds`), over a team's deals closed in the last four
quarters: win rate overall, per deal-size segment and per stage reached, average days to
close per segment and days spent per stage, how many have their post-mortem in,
the coverage that win rate needs (1 ÷ win rate), and per open stage the days won deals spent
there (80th percentile, from at least `MIN_WON_FOR_STAGE` won deals), which replaces
STALLED_IN_STAGE's limit for a team whose checks file says `thresholds: learned`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from domain.checks import ChecksConfig
from domain.dates import quarter_bounds
from domain.forecast import LearnedThresholds, RepCalibration
from domain.fx import RateBook
from domain.money import Money
from domain.stages import DEFAULT_STAGES
from reminders.jobs import REP_TIMEZONE, Job, JobContext, OutgoingMessage, Schedule, message_of
from storage.calibration import CalibrationRepository, ClosedDeal
from storage.facts import ReminderRepository

NAME = "rep-calibration"
QUARTERS = 4
# A deal never forecast as commit is judged on the date it was expected a month out.
UNCOMMITTED_LOOKBACK = dt.timedelta(days=30)
# Fewer won deals than this through a stage say too little to move its limit.
MIN_WON_FOR_STAGE = 5
STALLED_PERCENTILE = 80
# Deal size, in the reporting currency: (label, lower bound inclusive, upper bound exclusive).
SEGMENTS: tuple[tuple[str, Decimal, Decimal | None], ...] = (
    ("< 25k", Decimal(0), Decimal(25_000)),
    ("25k–100k", Decimal(25_000), Decimal(100_000)),
    ("≥ 100k", Decimal(100_000), None),
)
_PERCENT = Decimal("0.01")
_TENTH = Decimal("0.1")
# The stages a learned limit can be set for: STALLED_IN_STAGE's, the open default stages.
_OPEN_STAGE_ORDER = {s.key: s.order for s in DEFAULT_STAGES if not s.is_closed}


# --- windows ---------------------------------------------------------------------------------


def _quarters_back(day: dt.date, count: int) -> dt.date:
    """Return the first day of the quarter `count` quarters before the one holding `day`."""
    start = quarter_bounds(day)[0]
    months = start.year * 12 + start.month - 1 - 3 * count
    return dt.date(months // 12, months % 12 + 1, 1)


def calibration_windows(today: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """Return (previous window's first day, this window's first day, today).

    This window is the last four quarters counting today's; the previous is the four before.
    """
    current = _quarters_back(today, QUARTERS - 1)
    return _quarters_back(current, QUARTERS), current, today


def _local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone)


def _closed_deals(
    session: Session, *, rep_ids: Iterable[str], zone: ZoneInfo, since: dt.date, today: dt.date
) -> list[ClosedDeal]:
    return CalibrationRepository(session).closed_deals(
        owner_ids=rep_ids,
        closed_from=_local_midnight(since, zone),
        closed_before=_local_midnight(today + dt.timedelta(days=1), zone),
    )


# --- what the rep called ---------------------------------------------------------------------


def _first_commit(deal: ClosedDeal) -> dt.datetime | None:
    """Return when the deal was first forecast as commit; None if it never was."""
    forecasts = [h for h in deal.history if h.field == "forecast_category"]
    for entry in forecasts:
        if entry.new_value == "commit":
            return entry.changed_at
    # No forecast history at all (a deal imported before history was kept): its category
    # now is the one it always had.
    if not forecasts and deal.forecast_category == "commit":
        return deal.created_at
    return None


def _close_date_in_force(deal: ClosedDeal, at: dt.datetime) -> dt.date | None:
    """Return the close date the deal had at `at` (before it closed), from its history.

    Changes made at `at` count (a rep who sets `forecast:commit close:dec 15` in one command
    called Dec 15). Before its first recorded change, a deal had that change's old value;
    with no change at all, the date it has now.
    """
    changes = [h for h in deal.history if h.field == "close_date" and h.changed_at < deal.closed_at]
    closing = [
        h for h in deal.history if h.field == "close_date" and h.changed_at >= deal.closed_at
    ]
    value: str | None
    earlier = [h for h in changes if h.changed_at <= at]
    if earlier:
        value = earlier[-1].new_value
    elif changes:
        value = changes[0].old_value
    elif closing:
        value = closing[0].old_value
    else:
        return deal.close_date
    if value is None:
        # No date yet at that moment: the first one the rep gave before the close is the call.
        value = next((h.new_value for h in changes if h.new_value), None)
    return dt.date.fromisoformat(value) if value else None


def called_close_date(deal: ClosedDeal) -> dt.date | None:
    """Return the close date the rep called: at the first commit, else 30 days before closing."""
    return _called_at_commit(deal, _first_commit(deal))


def _called_at_commit(deal: ClosedDeal, committed: dt.datetime | None) -> dt.date | None:
    """Return `called_close_date` of a deal first committed at `committed` (None: never)."""
    at = committed if committed is not None else deal.closed_at - UNCOMMITTED_LOOKBACK
    return _close_date_in_force(deal, at)


# --- rep calibration -------------------------------------------------------------------------


def _ratio(part: int, whole: int, step: Decimal = _PERCENT) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(step, rounding=ROUND_HALF_UP)


def calibrate(rep_id: str, deals: Sequence[ClosedDeal], zone: ZoneInfo) -> RepCalibration | None:
    """Return the rep's calibration over `deals` (all theirs, all closed); None without any."""
    if not deals:
        return None
    on_time = called = slip_days = committed = committed_won = 0
    for deal in deals:
        closed_day = deal.closed_at.astimezone(zone).date()
        committed_at = _first_commit(deal)  # read once: the call is dated by it too
        call = _called_at_commit(deal, committed_at)
        if call is not None:
            called += 1
            on_time += closed_day <= call
            slip_days += (closed_day - call).days
        if committed_at is not None:
            committed += 1
            committed_won += deal.status == "won"
    return RepCalibration(
        rep_id=rep_id,
        closed_deals=len(deals),
        close_date_hit_rate=_ratio(on_time, called),
        mean_slip_days=_ratio(slip_days, called, _TENTH),
        commit_to_won=_ratio(committed_won, committed),
        on_time=on_time,
        called=called,
    )


def rep_calibration(
    session: Session, *, rep_ids: Iterable[str], zone: ZoneInfo, today: dt.date
) -> dict[str, RepCalibration]:
    """Return each rep's calibration over the last four quarters, with the four before.

    Quarters are those of `zone` (the team's), counting back from the one holding `today`.
    A rep who closed nothing in the last four quarters is absent from the answer.
    """
    previous_start, current_start, today = calibration_windows(today)
    by_rep: dict[str, tuple[list[ClosedDeal], list[ClosedDeal]]] = defaultdict(lambda: ([], []))
    for deal in _closed_deals(
        session, rep_ids=rep_ids, zone=zone, since=previous_start, today=today
    ):
        current = deal.closed_at.astimezone(zone).date() >= current_start
        by_rep[deal.owner_id][0 if current else 1].append(deal)
    figures: dict[str, RepCalibration] = {}
    for rep, (current, previous) in by_rep.items():
        now = calibrate(rep, current, zone)
        if now is not None:
            before = calibrate(rep, previous, zone)
            figures[rep] = RepCalibration(
                rep_id=now.rep_id,
                closed_deals=now.closed_deals,
                close_date_hit_rate=now.close_date_hit_rate,
                mean_slip_days=now.mean_slip_days,
                commit_to_won=now.commit_to_won,
                previous=before,
                on_time=now.on_time,
                called=now.called,
            )
    return figures


# --- learned thresholds ----------------------------------------------------------------------


def _segment_of(amount: Decimal) -> str:
    for label, low, high in SEGMENTS:
        if amount >= low and (high is None or amount < high):
            return label
    return SEGMENTS[0][0]  # a negative amount is a data error; it counts as the smallest


def _days_in_stages(deal: ClosedDeal, zone: ZoneInfo) -> dict[str, int]:
    """Return the calendar days (in `zone`) the deal spent in each open stage it passed.

    Days are counted as STALLED_IN_STAGE counts them: local dates, entered to left. A stage
    the deal came back to adds up.
    """
    moves = [h for h in deal.history if h.field == "stage" and h.new_value]
    days: dict[str, int] = defaultdict(int)
    for entry, following in zip(moves, [*moves[1:], None], strict=True):
        stage = entry.new_value or ""
        if stage not in _OPEN_STAGE_ORDER:
            continue
        left = following.changed_at if following is not None else deal.closed_at
        days[stage] += (
            left.astimezone(zone).date() - entry.changed_at.astimezone(zone).date()
        ).days
    return days


def percentile(values: Sequence[int], percent: int) -> int:
    """Return the nearest-rank percentile: the smallest value at least `percent`% are within."""
    ordered = sorted(values)
    rank = max(math.ceil(percent * len(ordered) / 100), 1)
    return ordered[rank - 1]


def _average_days(days: Sequence[int]) -> int | None:
    if not days:
        return None
    return int((Decimal(sum(days)) / Decimal(len(days))).quantize(Decimal(1), ROUND_HALF_UP))


def learn_thresholds(
    deals: Sequence[ClosedDeal], *, zone: ZoneInfo, currency: str, rates: RateBook
) -> LearnedThresholds:
    """Return what `deals` (closed ones) say the win rate, coverage and stage limits are."""
    won = [d for d in deals if d.status == "won"]
    segment_deals: dict[str, list[ClosedDeal]] = defaultdict(list)
    for deal in deals:
        if deal.amount is None:
            continue
        closed_day = deal.closed_at.astimezone(zone).date()
        converted = rates.convert(Money(deal.amount, deal.currency), currency, closed_day)
        if converted is not None:
            segment_deals[_segment_of(converted.money.amount)].append(deal)

    def days_to_close(deal: ClosedDeal) -> int:
        return (
            deal.closed_at.astimezone(zone).date() - deal.created_at.astimezone(zone).date()
        ).days

    by_segment = []
    for label, _, _ in SEGMENTS:
        members = segment_deals.get(label, [])
        won_here = [d for d in members if d.status == "won"]
        by_segment.append(
            (
                label,
                _ratio(len(won_here), len(members)),
                _average_days([days_to_close(d) for d in won_here]),
            )
        )
    stage_days: dict[str, list[int]] = defaultdict(list)  # won deals' days, per stage
    reached: dict[str, list[ClosedDeal]] = defaultdict(list)
    for deal in deals:
        for stage, days in _days_in_stages(deal, zone).items():
            reached[stage].append(deal)
            if deal.status == "won":
                stage_days[stage].append(days)
    by_stage = tuple(
        (
            stage,
            _ratio(sum(d.status == "won" for d in reached[stage]), len(reached[stage])),
            _average_days(stage_days.get(stage, [])),
        )
        for stage in sorted(reached, key=_OPEN_STAGE_ORDER.__getitem__)
    )
    stalled = tuple(
        (stage, percentile(days, STALLED_PERCENTILE))
        for stage, days in sorted(stage_days.items(), key=lambda item: _OPEN_STAGE_ORDER[item[0]])
        if len(days) >= MIN_WON_FOR_STAGE
    )
    return LearnedThresholds(
        deals_counted=len(deals),
        win_rate=_ratio(len(won), len(deals)),
        # From the counts, not the rounded rate: 3 won of 10 needs 3.33×, not 1 ÷ 0.30.
        required_coverage=_ratio(len(deals), len(won)),
        stalled_days=stalled,
        by_segment=tuple(by_segment),
        by_stage=by_stage,
        post_mortems=sum(d.has_post_mortem for d in deals),
        stalled_won=tuple((stage, len(stage_days[stage])) for stage, _ in stalled),
    )


def learned_thresholds(
    session: Session,
    *,
    rep_ids: Iterable[str],
    zone: ZoneInfo,
    today: dt.date,
    currency: str,
    rates: RateBook,
) -> LearnedThresholds:
    """Return the thresholds the reps' deals closed in the last four quarters teach.

    Amounts convert into `currency` (the team's reporting currency) at the rate of the day
    each deal closed; a deal with no amount, or in a currency with no rate, is left out of
    the segments but still counts in the win rate and the stage limits.
    """
    _, current_start, today = calibration_windows(today)
    deals = _closed_deals(session, rep_ids=rep_ids, zone=zone, since=current_start, today=today)
    return learn_thresholds(deals, zone=zone, currency=currency, rates=rates)


def checks_in_effect(config: ChecksConfig, learned: LearnedThresholds) -> ChecksConfig:
    """Return `config` with STALLED_IN_STAGE's limits learned, if the team opted in."""
    if config.thresholds != "learned" or not learned.stalled_days:
        return config
    return config.with_stage_limits(dict(learned.stalled_days))


def checks_for_team(
    session: Session,
    config: ChecksConfig,
    *,
    rep_ids: Iterable[str],
    zone: ZoneInfo,
    today: dt.date,
    currency: str,
    rates: RateBook,
) -> tuple[ChecksConfig, LearnedThresholds | None]:
    """Return the checks a team's deals are held to, and the learned figures behind them.

    With `thresholds: fixed` nothing is read (None): the file's limits stand.
    """
    if config.thresholds != "learned":
        return config, None
    learned = learned_thresholds(
        session, rep_ids=rep_ids, zone=zone, today=today, currency=currency, rates=rates
    )
    return checks_in_effect(config, learned), learned


# --- the monthly DM --------------------------------------------------------------------------


def month_period(now: dt.datetime, zone: ZoneInfo) -> str:
    """Return the monthly period key of `now` in `zone`, e.g. "2026-12"."""
    return now.astimezone(zone).strftime("%Y-%m")


def plan_calibration(context: JobContext) -> Iterator[OutgoingMessage]:
    """Yield each rep's private calibration DM for the month, if they closed anything.

    Reps are the owners of deals closed in the window (on a team or not), timed by their own
    zone; the quarters are their team's (else their own zone's).
    """
    # A day early: the window starts at midnight of each team's zone, not of UTC.
    window_start = calibration_windows(context.now.date())[1] - dt.timedelta(days=1)
    owners = context.owners_in_scope(
        closed_since=dt.datetime.combine(window_start, dt.time(), dt.UTC)
    )
    if not owners:
        return
    with context.database.session() as session:
        team_zone: Mapping[str, str] = dict(
            ReminderRepository(session).rep_timezones(context.settings.dealbot_timezone)
        )
    groups: dict[str, list[tuple[str, ZoneInfo]]] = defaultdict(list)
    for rep, zone in owners:
        groups[team_zone.get(rep, str(zone))].append((rep, zone))
    for quarters_zone, reps in groups.items():
        calendar = ZoneInfo(quarters_zone)
        with context.database.session() as session:
            figures = rep_calibration(
                session,
                rep_ids=[rep for rep, _ in reps],
                zone=calendar,
                today=context.now.astimezone(calendar).date(),
            )
        for rep, zone in reps:
            calibration = figures.get(rep)
            if calibration is None:
                continue
            yield message_of(
                context.render.rep_calibration(calibration),
                recipient=rep,
                subject="calibration",
                period=month_period(context.now, zone),
            )


JOB = Job(
    name=NAME,
    description="DM each rep, privately, how their calls turned out over the last 4 "
    "quarters (close dates hit, slip, commit → won) and the trend",
    # day 1-7 and Monday together: the first Monday of the month.
    schedule=Schedule(
        cron={"day": "1-7", "day_of_week": "mon", "hour": "9", "minute": "0"},
        timezone=REP_TIMEZONE,
    ),
    plan=plan_calibration,
)
