"""Block Kit for the monthly calibration DM: how a rep's calls turned out, and the trend."""

from __future__ import annotations

from decimal import Decimal

from domain.forecast import RepCalibration
from handlers.blocks import Reply, _context, _section

# Said once under the figures, so a rep knows which date they are measured against.
HOW_IT_IS_COUNTED = (
    "Only you get this. The date you called is the close date a deal had when you first put "
    "it in Commit (or, never committed, 30 days before it closed)."
)


def _percent(ratio: Decimal) -> str:
    return f"{ratio * 100:.0f}%"


def _days(days: Decimal) -> str:
    """Return `days` without a trailing ".0": 9 days, 2.5 days, 1 day."""
    amount = abs(days)
    shown = f"{amount:.0f}" if amount == amount.to_integral_value() else f"{amount:.1f}"
    return f"{shown} day" if amount == 1 else f"{shown} days"


def _slip(mean: Decimal) -> str:
    if mean > 0:
        return f"on average {_days(mean)} late"
    if mean < 0:
        return f"on average {_days(mean)} early"
    return "on average on the day"


def _trend(now: Decimal, before: Decimal | None) -> str:
    if before is None:
        return ""
    if now > before:
        return f", up from {_percent(before)}"
    if now < before:
        return f", down from {_percent(before)}"
    return ", as before"


def _figures(calibration: RepCalibration, *, trend: RepCalibration | None) -> list[str]:
    """Return the hit rate, the slip and commit → won, as the phrases of one line."""
    parts: list[str] = []
    if calibration.close_date_hit_rate is None:
        noun = "deal" if calibration.closed_deals == 1 else "deals"
        parts.append(f"{calibration.closed_deals} {noun} closed, none with a close date called")
    else:
        before = trend.close_date_hit_rate if trend is not None else None
        parts.append(
            f"{calibration.on_time} of {calibration.called} closed by the date you called "
            f"({_percent(calibration.close_date_hit_rate)}"
            f"{_trend(calibration.close_date_hit_rate, before)})"
        )
    if calibration.mean_slip_days is not None:
        parts.append(_slip(calibration.mean_slip_days))
    if calibration.commit_to_won is not None:
        parts.append(f"commit → won {_percent(calibration.commit_to_won)}")
    return parts


def rep_calibration(calibration: RepCalibration) -> Reply:
    """Return the rep's private monthly DM: their calls over the last 4 quarters."""
    text = "Your calls over the last 4 quarters: " + " · ".join(
        _figures(calibration, trend=calibration.previous)
    )
    blocks = [_section(text)]
    if calibration.previous is not None:
        blocks.append(
            _context(
                "The 4 quarters before: " + " · ".join(_figures(calibration.previous, trend=None))
            )
        )
    blocks.append(_context(HOW_IT_IS_COUNTED))
    return Reply(text=text, blocks=tuple(blocks))
