"""Issue 9, "a chart a manager would forward": the forecast chart drawn with matplotlib."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import warnings
from decimal import Decimal
from pathlib import Path

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import imread

import reminders.chart as chart
from domain.forecast import RepForecast, RollUp
from domain.money import Money
from reminders.chart import (
    MAX_REPS,
    MONEY_GID,
    NAME_GID,
    NOTE_GID,
    WEEK_GID,
    ChartRep,
    ChartWeek,
    chart_reps,
    forecast_chart,
    forecast_figure,
)


def rep(
    name: str,
    won: int,
    commit: int = 0,
    best_case: int = 0,
    pipeline: int = 0,
    quota: int | None = None,
) -> ChartRep:
    return ChartRep(
        name=name,
        won=Decimal(won),
        commit=Decimal(commit),
        best_case=Decimal(best_case),
        pipeline=Decimal(pipeline),
        quota=None if quota is None else Decimal(quota),
    )


TEAM = (
    rep("Ana Ruiz", 120_000, 90_000, 40_000, 150_000, quota=300_000),
    rep("Zoë Müller", 310_000, 0, 75_000, 20_000, quota=250_000),
    rep("Chloé Martin", 0, 48_000, 0, 60_000),  # no quota
)
TREND = (
    ChartWeek("2026-W46", commit=Decimal(410_000), won=Decimal(90_000)),
    ChartWeek("2026-W47", commit=Decimal(380_500), won=Decimal(250_000)),
    ChartWeek("2026-W48", commit=Decimal(138_000), won=Decimal(430_000)),
)


def decoded(png: bytes) -> tuple[int, int]:
    """Return (width, height) of the PNG as matplotlib's own reader decodes it."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = imread(io.BytesIO(png), format="png")
    return pixels.shape[1], pixels.shape[0]


def texts(axes: Axes, gid: str) -> list[str]:
    """Return the texts of one kind (`gid`) drawn in `axes`, in the order drawn."""
    return [text.get_text() for text in axes.texts if text.get_gid() == gid]


def drawn_names(figure: Figure) -> list[str]:
    """Return the reps' names as drawn left of the bars, top to bottom, each checked to be
    on its rep's row and whole inside the image."""
    figure.canvas.draw()
    bars_axes = figure.axes[0]
    names = [text for text in bars_axes.texts if text.get_gid() == NAME_GID]
    assert [text.get_position()[1] for text in names] == list(range(len(names)))
    for text in names:
        extent = text.get_window_extent()
        assert extent.x0 >= 0 and extent.x1 <= bars_axes.get_window_extent().x0
    return [text.get_text() for text in names]


def rep_names(reps: tuple[ChartRep, ...] | list[ChartRep]) -> list[str]:
    return drawn_names(
        forecast_figure(title="Enterprise · 2026-Q4", currency="USD", reps=reps, trend=TREND)
    )


def test_the_chart_is_a_png_about_slacks_preview_size_growing_with_reps() -> None:
    three = forecast_chart(title="Enterprise · 2026-Q4", currency="USD", reps=TEAM, trend=TREND)
    width, height = decoded(three)
    assert width == 1200 and 600 <= height <= 800
    ten = [rep(f"Rep {i}", 1000 * i, quota=10_000) for i in range(10)]
    taller = decoded(forecast_chart(title="T", currency="USD", reps=ten, trend=TREND))
    assert taller[0] == 1200 and taller[1] == height + 7 * 42  # 0.42 in a row at dpi 100


def test_every_rep_is_drawn_with_its_bars_and_no_quota_said() -> None:
    figure = forecast_figure(title="Enterprise", currency="USD", reps=TEAM, trend=TREND)
    bars_axes = figure.axes[0]
    # Largest won + commit first (on top): Zoë 310k, Ana 210k, Chloé 48k.
    assert drawn_names(figure) == [
        "Zoë Müller",
        "Ana Ruiz",
        "Chloé Martin (no quota)",
    ]
    marks = {c.get_label(): c for c in bars_axes.collections if not c.get_label().startswith("_")}
    assert list(marks) == ["Won", "Commit", "Best case", "Pipeline", "Quota"]
    # Four stacked categories, one bar each per rep.
    bars = [
        path.get_extents() for category in list(marks)[:4] for path in marks[category].get_paths()
    ]
    assert len(bars) == 4 * len(TEAM)
    widths = sorted(round(bar.width) for bar in bars if bar.width)
    assert widths == sorted(
        [310_000, 75_000, 20_000, 120_000, 90_000, 40_000, 150_000, 48_000, 60_000]
    )
    # A quota mark for the two reps with one, none for Chloé.
    quota_marks = marks["Quota"]
    assert sorted(map(tuple, quota_marks.get_offsets().tolist())) == [(250_000, 0), (300_000, 1)]
    notes = texts(bars_axes, NOTE_GID)
    assert notes == ["won $310k · 124% of $250k", "won $120k · 40% of $300k", "won $0"]
    legend = bars_axes.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "Won",
        "Commit",
        "Best case",
        "Pipeline",
        "Quota",
    ]


def test_amounts_on_the_axes_are_short_with_the_currency_symbol() -> None:
    figure = forecast_figure(title="Paris", currency="EUR", reps=TEAM, trend=TREND)
    figure.canvas.draw()
    bars_axes, trend_axes = figure.axes
    money_ticks = texts(bars_axes, MONEY_GID)
    assert "€0" in money_ticks and "€100k" in money_ticks
    assert "€200k" in texts(trend_axes, MONEY_GID)
    assert texts(trend_axes, WEEK_GID) == [
        "2026-W46",
        "2026-W47",
        "2026-W48",
    ]
    lines = {line.get_label(): line for line in trend_axes.get_lines()}
    commit_line, won_line = lines["Commit called"], lines["Won so far"]
    assert list(commit_line.get_ydata()) == [410_000, 380_500, 138_000]
    assert list(won_line.get_ydata()) == [90_000, 250_000, 430_000]


def test_more_than_25_reps_draws_the_top_25_by_won_plus_commit_and_says_how_many_more() -> None:
    reps = [rep(f"Rep {i:02d}", won=1000 * i, commit=500) for i in range(30)]
    labels = rep_names(reps)
    assert len(labels) == MAX_REPS
    assert labels[0] == "Rep 29 (no quota)" and labels[-1] == "Rep 05 (no quota)"
    figure = forecast_figure(title="Big", currency="USD", reps=reps, trend=TREND)
    assert figure.axes[0].get_xlabel() == (
        "+5 more reps not shown: these are the top 25 by won + commit"
    )
    height = decoded(forecast_chart(title="Big", currency="USD", reps=reps, trend=TREND))[1]
    assert height == decoded(forecast_chart(title="B", currency="USD", reps=reps[:25], trend=()))[1]


def test_an_empty_trend_says_no_snapshots_yet() -> None:
    figure = forecast_figure(title="New team", currency="USD", reps=TEAM, trend=())
    trend_axes = figure.axes[1]
    assert [t.get_text() for t in trend_axes.texts] == ["no snapshots yet"]
    assert trend_axes.get_lines() == []
    assert decoded(forecast_chart(title="New team", currency="USD", reps=TEAM, trend=()))[0] == 1200


def test_a_team_with_no_reps_still_draws() -> None:
    figure = forecast_figure(title="Empty", currency="USD", reps=(), trend=())
    assert "no reps in this team yet" in [t.get_text() for t in figure.axes[0].texts]
    assert decoded(forecast_chart(title="Empty", currency="USD", reps=(), trend=()))[0] == 1200


def test_deals_left_out_for_want_of_a_rate_are_said_on_the_trend() -> None:
    trend = (*TREND[:2], ChartWeek("2026-W48", Decimal(1), Decimal(2), excluded=2))
    figure = forecast_figure(title="T", currency="USD", reps=TEAM, trend=trend)
    assert figure.axes[1].get_xlabel() == (
        "Up to 2 deal(s) a week left out: no exchange rate into USD (dealbot fx set)."
    )


def test_the_same_input_renders_the_same_bytes() -> None:
    first = forecast_chart(title="Enterprise", currency="USD", reps=TEAM, trend=TREND)
    again = forecast_chart(title="Enterprise", currency="USD", reps=TEAM, trend=TREND)
    assert first == again
    assert b"matplotlib" not in first  # no version stamped in the file
    other = forecast_chart(title="Enterprise", currency="USD", reps=TEAM[:2], trend=TREND)
    assert other != first


def test_accented_names_render_without_missing_glyph_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning: fail on it
        with caplog.at_level(logging.DEBUG, logger="matplotlib"):
            forecast_chart(
                title="Équipe Zürich · Ørsted — São Paulo",
                currency="EUR",
                reps=(*TEAM, rep("Łukasz Żółć", 5), rep("Ἀλέξανδρος", 4), rep("Пётр", 3)),
                trend=TREND,
            )
    assert not [r for r in caplog.records if "missing" in r.getMessage().lower()]
    assert rep_names([rep("Łukasz Żółć", 5), rep("Пётр", 3)]) == [
        "Łukasz Żółć (no quota)",
        "Пётр (no quota)",
    ]


def test_cjk_names_use_an_installed_cjk_font_or_show_question_marks_and_say_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """DejaVu Sans has no CJK glyphs. With no CJK font installed (forced here, whatever this
    machine has), "田中" is drawn "??" with a note, and no empty boxes or warnings."""
    chart._font_families.cache_clear()
    monkeypatch.setattr(chart, "FALLBACK_FONTS", ())
    try:
        reps = (rep("田中 Hiro", 10, quota=100), rep("Zoë", 5, quota=100))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with caplog.at_level(logging.DEBUG, logger="matplotlib"):
                figure = forecast_figure(title="東京", currency="USD", reps=reps, trend=TREND)
                figure.canvas.draw()
                forecast_chart(title="東京", currency="USD", reps=reps, trend=TREND)
        assert not [r for r in caplog.records if "missing" in r.getMessage().lower()]
        assert drawn_names(figure) == ["?? Hiro", "Zoë"]
        assert figure.get_suptitle() == "??"
        assert figure.get_supxlabel() == (
            'Shown with "?" for characters no font on this server can draw: ?? Hiro.'
        )
    finally:
        chart._font_families.cache_clear()


def test_matplotlib_writes_nothing_into_home(tmp_path: Path) -> None:
    """A server's $HOME may be read-only: the font cache goes to a dealbot temp folder."""
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MPL", "XDG_")) and key not in ("HOME", "TMPDIR")
    }
    env |= {"HOME": str(home), "TMPDIR": str(temp)}
    script = (
        "from decimal import Decimal\n"
        "from reminders.chart import ChartRep, forecast_chart\n"
        "rep = ChartRep('Zoë', Decimal(1), Decimal(2), Decimal(3), Decimal(4), None)\n"
        "png = forecast_chart(title='t', currency='USD', reps=[rep], trend=[])\n"
        "assert png.startswith(b'\\x89PNG')\n"
    )
    subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=Path(__file__).parents[2], check=True
    )
    assert list(home.iterdir()) == []
    (cache,) = temp.glob("dealbot-matplotlib-*")
    assert list(cache.glob("fontlist-*.json"))


def forecast(rep_id: str | None, won: int, quota: int | None) -> RepForecast:
    def usd(amount: int) -> Money:
        return Money(Decimal(amount), "USD")

    return RepForecast(
        rep_id=rep_id,
        won=usd(won),
        commit=usd(2 * won),
        best_case=usd(3 * won),
        pipeline=usd(4 * won),
        quota=None if quota is None else usd(quota),
        attainment=None,
        coverage=None,
        at_risk=usd(0),
        at_risk_deals=(),
    )


def test_a_roll_ups_reps_become_chart_reps_named_and_none_left_out() -> None:
    roll_up = RollUp(
        team_name="Enterprise",
        period="2026-Q4",
        currency="USD",
        reps=(forecast("U0ZOE", 10, 100), forecast("U0NEW", 1, None)),
        team=forecast(None, 11, 100),
        excluded=(),
        rates_used=(),
    )
    assert chart_reps(roll_up, {"U0ZOE": "Zoë Müller"}) == [
        rep("Zoë Müller", 10, 20, 30, 40, quota=100),
        rep("U0NEW", 1, 2, 3, 4),
    ]
