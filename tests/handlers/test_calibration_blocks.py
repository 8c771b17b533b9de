"""The calibration DM's words: the trend, early and late, and what is left unsaid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.forecast import LearnedThresholds, RepCalibration
from handlers.calibration_blocks import (
    HOW_IT_IS_COUNTED,
    calibration_lines,
    learned_lines,
    rep_calibration,
)


def calibration(
    *,
    on_time: int,
    called: int,
    slip: str | None,
    commit: str | None,
    closed: int | None = None,
    previous: RepCalibration | None = None,
) -> RepCalibration:
    return RepCalibration(
        rep_id="U0ANA",
        closed_deals=closed if closed is not None else called,
        close_date_hit_rate=(Decimal(on_time) / Decimal(called)).quantize(Decimal("0.01"))
        if called
        else None,
        mean_slip_days=Decimal(slip) if slip is not None else None,
        commit_to_won=Decimal(commit) if commit is not None else None,
        previous=previous,
        on_time=on_time,
        called=called,
    )


def test_the_dm_reads_as_the_issue_shows_it() -> None:
    before = calibration(on_time=11, called=20, slip="12", commit="0.6")
    reply = rep_calibration(
        calibration(on_time=7, called=10, slip="9", commit="0.8", previous=before)
    )
    assert reply.text == (
        "Your calls over the last 4 quarters: 7 of 10 closed by the date you called "
        "(70%, up from 55%) · on average 9 days late · commit → won 80%"
    )
    dicts = reply.block_dicts()
    assert [b["type"] for b in dicts] == ["section", "context", "context"]
    assert dicts[0]["text"]["text"] == reply.text
    assert dicts[1]["elements"][0]["text"] == (
        "The 4 quarters before: 11 of 20 closed by the date you called (55%) · "
        "on average 12 days late · commit → won 60%"
    )
    assert dicts[2]["elements"][0]["text"] == HOW_IT_IS_COUNTED


@pytest.mark.parametrize(
    ("now", "before", "said"),
    [
        (
            (1, 2, "-2.5", None),
            (3, 4, "1", None),
            "1 of 2 closed by the date you called (50%, down from 75%) · on average 2.5 days early",
        ),
        (
            (1, 2, "0", "1"),
            (2, 4, "0", None),
            "(50%, as before) · on average on the day · commit → won 100%",
        ),
        (
            (1, 1, "-1", None),
            None,
            "1 of 1 closed by the date you called (100%) · on average 1 day early",
        ),
        (
            (0, 0, None, "0"),
            None,
            "3 deals closed, none with a close date called · commit → won 0%",
        ),
    ],
)
def test_the_trend_the_slip_and_the_missing_figures_are_worded(
    now: tuple[int, int, str | None, str | None],
    before: tuple[int, int, str | None, str | None] | None,
    said: str,
) -> None:
    previous = (
        calibration(on_time=before[0], called=before[1], slip=before[2], commit=before[3])
        if before
        else None
    )
    closed = 3 if now[1] == 0 else None
    reply = rep_calibration(
        calibration(
            on_time=now[0],
            called=now[1],
            slip=now[2],
            commit=now[3],
            closed=closed,
            previous=previous,
        )
    )
    assert said in reply.text
    assert len(reply.block_dicts()) == (3 if previous else 2)


def test_the_manager_sees_each_reps_calls_in_the_order_given() -> None:
    figures = {
        "U0BEN": calibration(on_time=1, called=4, slip="20", commit=None),
        "U0ANA": calibration(on_time=3, called=4, slip="-1", commit="0.5"),
    }
    assert calibration_lines(figures, ["U0ANA", "U0CARL", "U0BEN"]) == [
        "<@U0ANA> 3 of 4 closed by the date called (75%) · on average 1 day early · "
        "commit → won 50%",
        "<@U0BEN> 1 of 4 closed by the date called (25%) · on average 20 days late",
    ]


def test_the_digest_shows_the_figures_learned_thresholds_came_from() -> None:
    learned = LearnedThresholds(
        deals_counted=10,
        win_rate=Decimal("0.60"),
        required_coverage=Decimal("1.67"),
        stalled_days=(("discovery", 12), ("proposal", 40)),
        by_segment=(
            ("< 25k", Decimal("0.50"), 30),
            ("25k–100k", Decimal("0.75"), 50),
            ("≥ 100k", None, None),
        ),
        by_stage=(("discovery", Decimal("0.60"), 10), ("demo", Decimal("0.80"), None)),
        post_mortems=2,
    )
    assert learned_lines(learned, applied=True) == [
        "From 10 deals closed in the last 4 quarters (2 with a post-mortem): win rate 60%, "
        "so coverage needed 1.67×",
        "By size: < 25k 50% won, 30 days to close · 25k–100k 75% won, 50 days to close · ≥ 100k —",
        "By stage reached: Discovery 60% won, 10 days there · Demo 80% won",
        "Stalled-in-stage limits (80% of won deals were out by then): Discovery 12 days · "
        "Proposal 40 days",
    ]
    assert learned_lines(learned, applied=False)[-1].startswith(
        "Stalled-in-stage limits if learned"
    )
    nothing = LearnedThresholds(
        deals_counted=0, win_rate=None, required_coverage=None, stalled_days=()
    )
    assert learned_lines(nothing, applied=True) == [
        "No deal closed in the last 4 quarters: nothing to learn thresholds from yet."
    ]
