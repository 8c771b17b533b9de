"""Block Kit for the monthly calibration DM, and the lines the digest shows managers.

The DM (`rep_calibration`) is the rep's own: how their calls turned out, and the trend. The
digest's author places `calibration_lines` (each rep's calls, for their manager) and
`learned_lines` (the figures learned thresholds came from) in the manager digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from domain.forecast import LearnedThresholds, RepCalibration
from domain.stages import DEFAULT_STAGES
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


def _figures(
    calibration: RepCalibration, *, trend: RepCalibration | None, called_by: str = "you called"
) -> list[str]:
    """Return the hit rate, the slip and commit → won, as the phrases of one line."""
    parts: list[str] = []
    if calibration.close_date_hit_rate is None:
        noun = "deal" if calibration.closed_deals == 1 else "deals"
        parts.append(f"{calibration.closed_deals} {noun} closed, none with a close date called")
    else:
        before = trend.close_date_hit_rate if trend is not None else None
        parts.append(
            f"{calibration.on_time} of {calibration.called} closed by the date {called_by} "
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


def calibration_lines(figures: Mapping[str, RepCalibration], reps: Sequence[str]) -> list[str]:
    """Return one line per rep of `reps` with figures: their calls, for their manager."""
    return [
        f"<@{rep}> "
        + " · ".join(_figures(figures[rep], trend=figures[rep].previous, called_by="called"))
        for rep in reps
        if rep in figures
    ]


_STAGE_LABELS = {stage.key: stage.label for stage in DEFAULT_STAGES}


def _won(rate: Decimal | None) -> str:
    return "—" if rate is None else f"{_percent(rate)} won"


def learned_lines(learned: LearnedThresholds, *, applied: bool) -> list[str]:
    """Return the figures closed deals gave, and the stage limits they set when `applied`."""
    if not learned.deals_counted:
        return ["No deal closed in the last 4 quarters: nothing to learn thresholds from yet."]
    noun = "deal" if learned.deals_counted == 1 else "deals"
    head = f"From {learned.deals_counted} {noun} closed in the last 4 quarters"
    head += f" ({learned.post_mortems} with a post-mortem): win rate "
    head += "—" if learned.win_rate is None else _percent(learned.win_rate)
    if learned.required_coverage is not None:
        head += f", so coverage needed {learned.required_coverage}×"
    lines = [head]
    segments = [
        f"{label} {_won(rate)}" + (f", {days} days to close" if days is not None else "")
        for label, rate, days in learned.by_segment
    ]
    if segments:
        lines.append("By size: " + " · ".join(segments))
    stages = [
        f"{_STAGE_LABELS.get(stage, stage)} {_won(rate)}"
        + (f", {days} days there" if days is not None else "")
        for stage, rate, days in learned.by_stage
    ]
    if stages:
        lines.append("By stage reached: " + " · ".join(stages))
    if learned.stalled_days:
        limits = " · ".join(
            f"{_STAGE_LABELS.get(stage, stage)} {days} days" for stage, days in learned.stalled_days
        )
        said = "Stalled-in-stage limits" if applied else "Stalled-in-stage limits if learned"
        lines.append(f"{said} (80% of won deals were out by then): {limits}")
    return lines
