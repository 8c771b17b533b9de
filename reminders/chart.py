"""The forecast chart a manager would forward: the quarter per rep, and the weekly trend.

Drawn with matplotlib's object API (`Figure` + the Agg canvas), never pyplot: pyplot keeps
global figure state, and jobs draw from worker threads. Text uses DejaVu Sans, which
matplotlib ships, so no system font is needed for Latin, Greek or Cyrillic names ("Zoë
Müller"). DejaVu has no CJK glyphs: a CJK font found on the machine (Noto Sans CJK and the
like) is used as a fallback for them; with none, each character no font can draw is shown
as "?" and the chart says so, rather than a row of empty boxes and a log full of warnings.
The bytes are the same for the same input (no timestamp or version in the PNG), so a chart
can be snapshot-tested and a resend is the same file.

The weekly digest draws a chart per team, so drawing is kept cheap: the reps' names, the
weeks and the money amounts are plain texts placed where tick labels would be (with their
tick marks and gridlines as one artist per axis), not matplotlib Ticks; each category's bars
are one collection; and the margins are computed, not found by a layout engine. What is
left is mostly FreeType laying out and rendering the glyphs.

matplotlib keeps a font cache (and reads a matplotlibrc) in $HOME unless MPLCONFIGDIR says
otherwise: a server's $HOME may be read-only, and a user's matplotlibrc would change the
chart. So, unless the operator set MPLCONFIGDIR, it points at a dealbot folder in the temp
directory before matplotlib is first imported.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Final

os.environ.setdefault(
    "MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), f"dealbot-matplotlib-{os.getuid()}")
)

import matplotlib
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, fontManager
from matplotlib.ft2font import FT2Font
from matplotlib.lines import Line2D
from matplotlib.markers import TICKDOWN, TICKLEFT
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import ScaledTranslation, Transform, TransformedPatchPath
from PIL import Image

from domain.forecast import RollUp
from domain.money import Money, format_money_short

# Glyphs drawn unhinted: FreeType's hinting of DejaVu Sans was a third of the chart's drawing
# time (every rep's name and note), for outlines a reader cannot tell apart at this size.
# matplotlib reads this setting at draw time only, from its process-wide rcParams: set once
# here, at import, never around a draw (that would race between job threads), and dealbot
# draws with matplotlib nowhere else.
matplotlib.rcParams["text.hinting"] = "no_hinting"

__all__ = [
    "ChartRep",
    "ChartWeek",
    "chart_reps",
    "forecast_chart",
    "forecast_figure",
]


@dataclass(frozen=True)
class ChartRep:
    name: str  # display name, may be non-ASCII ("Zoë Müller", "田中")
    won: Decimal
    commit: Decimal
    best_case: Decimal
    pipeline: Decimal
    quota: Decimal | None


@dataclass(frozen=True)
class ChartWeek:
    week: str  # "2026-W48"
    commit: Decimal  # commit called that week (from the snapshot)
    won: Decimal  # won so far in the quarter as of that week
    # Deals of that week (commit called, or won so far) left out of the money above because
    # their currency has no exchange rate: said on the chart, never silently dropped.
    excluded: int = 0


DPI: Final = 100
WIDTH_INCHES: Final = 12.0  # 1200 px: Slack previews an image about this wide
MAX_REPS: Final = 25  # beyond this the bars get too thin to read in a preview
_REP_ROW_INCHES: Final = 0.42
_TREND_INCHES: Final = 3.3
_HEADER_INCHES: Final = 2.1  # title, legend and axis labels around the bars
_BAR_HEIGHT: Final = 0.62  # of a rep's row

# Okabe-Ito: told apart by readers with any common colour-vision deficiency, and by
# lightness alone (won dark green, commit dark blue, best case light blue, pipeline orange).
CATEGORY_COLORS: Final = {
    "won": "#009E73",
    "commit": "#0072B2",
    "best_case": "#56B4E9",
    "pipeline": "#E69F00",
}
CATEGORY_LABELS: Final = {
    "won": "Won",
    "commit": "Commit",
    "best_case": "Best case",
    "pipeline": "Pipeline",
}
QUOTA_COLOR: Final = "#000000"
INK: Final = "#333333"

BASE_FONT: Final = "DejaVu Sans"
# Fonts tried for characters DejaVu Sans lacks (CJK names), when the machine has them.
FALLBACK_FONTS: Final = (
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans JP",
    "Noto Sans SC",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "IPAGothic",
    "Droid Sans Fallback",
)
UNDRAWABLE: Final = "?"

# The `gid` of the texts drawn in place of tick labels, to tell them from the other texts of
# their panel: the reps' names, the notes after their bars, the trend's weeks, and the
# amounts on the money axes.
NAME_GID: Final = "rep-name"
NOTE_GID: Final = "rep-note"
WEEK_GID: Final = "week"
MONEY_GID: Final = "money"


def chart_reps(roll_up: RollUp, names: Mapping[str, str]) -> list[ChartRep]:
    """Return the roll-up's reps as the chart draws them, named by `names` (rep id → name).

    A rep missing from `names` is shown by their Slack id rather than left out.
    """
    return [
        ChartRep(
            name=names.get(rep.rep_id or "", rep.rep_id or "?"),
            won=rep.won.amount,
            commit=rep.commit.amount,
            best_case=rep.best_case.amount,
            pipeline=rep.pipeline.amount,
            quota=None if rep.quota is None else rep.quota.amount,
        )
        for rep in roll_up.reps
    ]


def forecast_chart(
    *, title: str, currency: str, reps: Sequence[ChartRep], trend: Sequence[ChartWeek]
) -> bytes:
    """Return the forecast chart as PNG bytes (see `forecast_figure`)."""
    return _png(forecast_figure(title=title, currency=currency, reps=reps, trend=trend))


def forecast_figure(
    *, title: str, currency: str, reps: Sequence[ChartRep], trend: Sequence[ChartWeek]
) -> Figure:
    """Return the chart's figure: the quarter per rep above, the weekly trend below.

    The top panel stacks each rep's won, commit, best case and pipeline with a mark at
    their quota; the bottom one draws the team's commit called and won so far per week.
    At most `MAX_REPS` reps are drawn, the ones with the most won + commit.
    """
    fonts = _font_families()
    shown = sorted(reps, key=lambda rep: rep.won + rep.commit, reverse=True)[:MAX_REPS]
    hidden = len(reps) - len(shown)
    rows = max(len(shown), 1)
    height = _HEADER_INCHES + rows * _REP_ROW_INCHES + _TREND_INCHES
    # No layout engine: constrained layout costs a whole extra draw of the figure and a
    # bounding-box pass over every tick label, per chart. `_place` sets the same margins
    # from the few texts that decide them (see there).
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI)
    FigureCanvasAgg(figure)
    bars_axes, trend_axes = figure.subplots(2, 1)
    figure.suptitle(
        _drawable(title, fonts),
        y=1 - _PAD_PX / (height * DPI),
        va="top",
        fontsize=15,
        family=fonts,
        parse_math=False,
        weight="bold",
    )
    names, unreadable = _drawable_names([rep.name for rep in shown], fonts)
    _draw_reps(bars_axes, shown, names, currency=currency, fonts=fonts)
    bars_axes.set_title(
        "This quarter per rep",
        loc="left",
        y=1.0,  # where matplotlib would put it; given, so it does not measure every label
        fontsize=12,
        family=fonts,
        parse_math=False,
        color=INK,
    )
    if hidden:
        bars_axes.set_xlabel(
            f"+{hidden} more reps not shown: these are the top {len(shown)} by won + commit",
            loc="left",
            family=fonts,
            parse_math=False,
            color=INK,
        )
    _draw_trend(trend_axes, trend, currency=currency, fonts=fonts)
    if unreadable:
        # A figure-level x label: `_place` keeps room for it under the trend.
        figure.supxlabel(
            f'Shown with "{UNDRAWABLE}" for characters no font on this server can draw: '
            f"{', '.join(unreadable)}.",
            x=0.01,
            y=_PAD_PX / (height * DPI),
            ha="left",
            va="bottom",
            fontsize=9,
            family=fonts,
            parse_math=False,
            color=INK,
        )
    # matplotlib places an axis label under (or beside) the tick labels by measuring them
    # all at each draw; an axis without a label has nothing to place.
    for axis in (bars_axes.xaxis, bars_axes.yaxis, trend_axes.xaxis, trend_axes.yaxis):
        if not axis.label.get_text():
            axis.set_label_coords(0.0, 0.0)
    _place(
        figure,
        bars_axes,
        trend_axes,
        rows=rows,
        bars_note=bool(hidden),
        trend_shown=bool(trend),
        trend_note=bool(trend) and max(week.excluded for week in trend) > 0,
        figure_note=bool(unreadable),
    )
    return figure


# Margins, in pixels at `DPI`, as matplotlib's constrained layout set them for this chart
# (measured from it, fonts and sizes being fixed): the outer pad, the tick mark and its gap
# to the label, the heading band above the bars (title, panel heading, legend), the band
# between the panels (bar axis labels, trend heading and legend), and what each optional
# note line adds.
_PAD_PX: Final = 3 / 72 * DPI
_TICK_PX: Final = 7 / 72 * DPI  # tick length 3.5 pt + label pad 3.5 pt
_TOP_PX: Final = 65.9
_BETWEEN_PX: Final = 64.7
_BETWEEN_NO_TREND_PX: Final = 53.8  # an empty trend has a heading but no legend
_BOTTOM_PX: Final = 27.8  # the trend's week labels
_NOTE_BARS_PX: Final = 27.6  # "+N more reps not shown"
_NOTE_TREND_PX: Final = 19.5  # deals left out for want of a rate (9 pt)
_NOTE_FIGURE_PX: Final = 22.0  # characters no font can draw (9 pt)
_NOTE_OFFSET_PX: Final = 8 / 72 * DPI  # from a bar's end to its note
_LABEL_PAD_PX: Final = 4 / 72 * DPI  # from the tick labels to the axis label under them


def _place(
    figure: Figure,
    bars_axes: Axes,
    trend_axes: Axes,
    *,
    rows: int,
    bars_note: bool,
    trend_shown: bool,
    trend_note: bool,
    figure_note: bool,
) -> None:
    """Position both panels as constrained layout would, measuring only the texts that set
    the margins: the widest name or money label on the left; on the right, whichever reaches
    furthest of the rep notes after their bars and the last money label under them. Put
    each x axis label under its panel's labels."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    width_px, height_px = figure.bbox.width, figure.bbox.height

    # Widths come from the texts themselves (not the renderer directly): matplotlib caches a
    # text's metrics per renderer, so the draw that follows measures nothing twice.
    def text_width(text: Text) -> float:
        return float(text.get_window_extent(renderer).width)

    def texts(axes: Axes, gid: str) -> list[Text]:
        return [text for text in axes.texts if text.get_gid() == gid]

    labels = texts(bars_axes, NAME_GID) + texts(trend_axes, MONEY_GID)
    left = _PAD_PX + max([text_width(label) for label in labels] + [0.0]) + _TICK_PX
    # Each (fraction of the axes width, pixels beyond that point) must end inside the pad.
    reaches: list[tuple[float, float]] = [(1.0, 0.0)]
    xmax = bars_axes.get_xlim()[1]
    for note in texts(bars_axes, NOTE_GID):
        reaches.append((note.get_position()[0] / xmax, _NOTE_OFFSET_PX + text_width(note)))
    money = texts(bars_axes, MONEY_GID)
    if money:
        last = max(money, key=lambda label: label.get_position()[0])
        reaches.append((last.get_position()[0] / xmax, text_width(last) / 2))
    # An x axis label goes under the labels, as matplotlib would put it (it looks for them
    # among the axis's ticks, and there are none).
    for axes, gid in ((bars_axes, MONEY_GID), (trend_axes, WEEK_GID)):
        if axes.xaxis.label.get_text():
            below = _TICK_PX + max(
                [float(text.get_window_extent(renderer).height) for text in texts(axes, gid)]
                + [0.0]
            )
            axes.xaxis.set_label_coords(
                0.0,
                0.0,
                transform=axes.transAxes
                + ScaledTranslation(0.0, -(below + _LABEL_PAD_PX) / DPI, figure.dpi_scale_trans),
            )
    available = width_px - _PAD_PX - left
    axes_width = min(
        (available - beyond) / fraction if fraction > 0 else available
        for fraction, beyond in reaches
    )

    bottom = (
        (_BOTTOM_PX if trend_shown else _PAD_PX)
        + (_NOTE_TREND_PX if trend_note else 0.0)
        + (_NOTE_FIGURE_PX if figure_note else 0.0)
    )
    between = (_BETWEEN_PX if trend_shown else _BETWEEN_NO_TREND_PX) + (
        _NOTE_BARS_PX if bars_note else 0.0
    )
    bars_ratio = rows * _REP_ROW_INCHES + 0.9
    trend_ratio = _TREND_INCHES - 0.4
    panels = height_px - _TOP_PX - between - bottom
    bars_height = panels * bars_ratio / (bars_ratio + trend_ratio)
    trend_height = panels - bars_height
    for axes, y0, h in (
        (bars_axes, height_px - _TOP_PX - bars_height, bars_height),
        (trend_axes, bottom, trend_height),
    ):
        axes.set_position((left / width_px, y0 / height_px, axes_width / width_px, h / height_px))


def _draw_reps(
    axes: Axes,
    reps: Sequence[ChartRep],
    names: Sequence[str],
    *,
    currency: str,
    fonts: list[str],
) -> None:
    positions = list(range(len(reps)))
    left = [0.0] * len(reps)
    for category, color in CATEGORY_COLORS.items():
        values = [float(getattr(rep, category)) for rep in reps]
        # One collection per category, not one Rectangle per bar (what `barh` draws): Agg
        # fills all of a category's bars in one call, and neither limits nor the legend
        # need the bars (both are set below).
        axes.add_collection(
            PolyCollection(
                [
                    _bar(start, position, value)
                    for position, start, value in zip(positions, left, values, strict=True)
                ],
                facecolors=color,
                label=CATEGORY_LABELS[category],
            ),
            autolim=False,
        )
        left = [start + value for start, value in zip(left, values, strict=True)]
    quotas = [(i, float(rep.quota)) for i, rep in enumerate(reps) if rep.quota is not None]
    if quotas:
        # A tall black bar across the rep's row: visible on top of any fill colour.
        axes.scatter(
            [quota for _, quota in quotas],
            [i for i, _ in quotas],
            marker="|",
            s=900,
            linewidths=2.5,
            color=QUOTA_COLOR,
            zorder=3,
            label="Quota",
        )
    axes.set_ylim(len(reps) - 0.5 if reps else 0.5, -0.5)  # first (largest) rep on top
    # The names are drawn as y tick labels would be (right-aligned, a tick mark and a pad
    # left of the panel) but as plain texts and one line of tick marks: a matplotlib Tick
    # per rep builds five artists (two marks, a gridline, two labels) and copies properties
    # between them, and the axis lays them all out again at each draw.
    axes.set_yticks([])
    clip = _panel_clip(axes)
    for position, name, rep in zip(positions, names, reps, strict=True):
        axes.text(
            0.0,
            position,
            name if rep.quota is not None else f"{name} (no quota)",
            transform=_left_of(axes),
            ha="right",
            va="center_baseline",
            fontsize=11,
            family=fonts,
            parse_math=False,
            gid=NAME_GID,
            clip_path=clip,
        )
    axes.add_artist(_tick_marks(axes.yaxis, positions))
    widest = max([*left, *(quota for _, quota in quotas), 0.0])
    # The notes: 8 points right of the bar's end (or of the quota mark beyond it).
    note_transform = axes.transData + ScaledTranslation(
        _NOTE_OFFSET_PX / DPI, 0.0, axes.figure.dpi_scale_trans
    )
    for i, rep in enumerate(reps):
        axes.text(
            max(left[i], float(rep.quota or 0)),
            i,
            _rep_note(rep, currency),
            transform=note_transform,
            va="center",
            fontsize=10,
            family=fonts,
            parse_math=False,
            color=INK,
            gid=NOTE_GID,
            clip_path=clip,
        )
    # Room on the right for the notes at the end of the longest bar.
    axes.set_xlim(0, widest * 1.22 if widest > 0 else 1)
    _money_axis(
        axes.xaxis,
        MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3),
        currency=currency,
        fonts=fonts,
    )
    axes.spines[["top", "right"]].set_visible(False)
    if not reps:
        axes.text(
            0.5,
            0.5,
            "no reps in this team yet",
            transform=axes.transAxes,
            ha="center",
            va="center",
            family=fonts,
            parse_math=False,
            color=INK,
        )
    handles = [
        Patch(color=color, label=CATEGORY_LABELS[category])
        for category, color in CATEGORY_COLORS.items()
    ]
    handles.append(
        Line2D([], [], color=QUOTA_COLOR, marker="|", linestyle="", markersize=14, mew=2.5)
    )
    handles[-1].set_label("Quota")
    # Right of the panel's heading, above the bars: never over a bar.
    axes.legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=len(handles),
        frameon=False,
        prop=FontProperties(family=fonts, size=10),
    )


def _panel_clip(axes: Axes) -> TransformedPatchPath:
    """Return the clip matplotlib gives a text added to `axes` (the panel's background), for
    a function adding many texts to build once: `Axes.text` builds one, and registers it with
    the panel's transforms, for each text given none, about 0.3 ms a text here (some 20 ms
    for a chart's 70-odd texts). These texts are not clipped (`clip_on` is off) either way."""
    return TransformedPatchPath(axes.patch)


def _bar(start: float, position: float, value: float) -> list[tuple[float, float]]:
    """Return the corners of a bar from `start` to `start + value` centred on `position`."""
    top, bottom = position - _BAR_HEIGHT / 2, position + _BAR_HEIGHT / 2
    return [(start, top), (start + value, top), (start + value, bottom), (start, bottom)]


def _left_of(axes: Axes) -> Transform:
    """Return where matplotlib puts a y tick label: x in axes fractions, y in data, left of
    the axis by the tick mark and its pad."""
    return axes.get_yaxis_transform() + ScaledTranslation(
        -_TICK_PX / DPI, 0.0, axes.figure.dpi_scale_trans
    )


def _below(axes: Axes) -> Transform:
    """Return where matplotlib puts an x tick label: x in data, y in axes fractions, below
    the axis by the tick mark and its pad."""
    return axes.get_xaxis_transform() + ScaledTranslation(
        0.0, -_TICK_PX / DPI, axes.figure.dpi_scale_trans
    )


def _tick_marks(axis: Axis, positions: Sequence[float]) -> Line2D:
    """Return the major tick marks `axis` would draw at `positions`, as one line of markers
    (one artist, where each matplotlib Tick has its own)."""
    axes = axis.axes
    if axis is axes.yaxis:
        xs, ys, marker, name = [0.0] * len(positions), positions, TICKLEFT, "ytick"
        transform = axes.get_yaxis_transform()
    else:
        xs, ys, marker, name = positions, [0.0] * len(positions), TICKDOWN, "xtick"
        transform = axes.get_xaxis_transform()
    return Line2D(
        xs,
        ys,
        linestyle="",
        marker=marker,
        markersize=matplotlib.rcParams[f"{name}.major.size"],
        markeredgewidth=matplotlib.rcParams[f"{name}.major.width"],
        color=matplotlib.rcParams[f"{name}.color"],
        transform=transform,
        clip_on=False,
    )


def _rep_note(rep: ChartRep, currency: str) -> str:
    """Return the words at the end of a rep's bar: won, and attainment when there is a quota."""
    won = format_money_short(Money(rep.won, currency))
    if rep.quota is None or rep.quota <= 0:
        return f"won {won}"
    attainment = (rep.won / rep.quota * 100).quantize(Decimal(1))
    return f"won {won} · {attainment}% of {format_money_short(Money(rep.quota, currency))}"


def _draw_trend(axes: Axes, trend: Sequence[ChartWeek], *, currency: str, fonts: list[str]) -> None:
    axes.set_title(
        "Team trend by week: commit called and won so far",
        loc="left",
        y=1.0,  # as for the bars' title: no tick labels above the panel to clear
        fontsize=12,
        family=fonts,
        parse_math=False,
        color=INK,
    )
    axes.spines[["top", "right"]].set_visible(False)
    if not trend:
        axes.set_axis_off()
        axes.text(
            0.5,
            0.5,
            "no snapshots yet",
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=12,
            family=fonts,
            parse_math=False,
            color=INK,
        )
        return
    positions = list(range(len(trend)))
    axes.plot(
        positions,
        [float(week.commit) for week in trend],
        color=CATEGORY_COLORS["commit"],
        marker="o",
        linewidth=2.2,
        label="Commit called",
    )
    # Dashed and square-marked as well as green: the two lines differ without colour too.
    axes.plot(
        positions,
        [float(week.won) for week in trend],
        color=CATEGORY_COLORS["won"],
        marker="s",
        linestyle="--",
        linewidth=2.2,
        label="Won so far",
    )
    # The weeks as x tick labels would be, but plain texts (as the reps' names are).
    axes.set_xticks([])
    clip = _panel_clip(axes)
    for position, week in zip(positions, trend, strict=True):
        axes.text(
            position,
            0.0,
            week.week,
            transform=_below(axes),
            ha="center",
            va="top",
            family=fonts,
            parse_math=False,
            gid=WEEK_GID,
            clip_path=clip,
        )
    axes.add_artist(_tick_marks(axes.xaxis, positions))
    axes.set_xlim(-0.3, len(trend) - 0.7)  # room for the first and last markers
    # The top from the lines' data, as `_money_axis` reads it: nothing added later moves it.
    axes.set_ylim(bottom=0)
    _money_axis(
        axes.yaxis,
        MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3),
        currency=currency,
        fonts=fonts,
    )
    excluded = max(week.excluded for week in trend)
    if excluded:
        axes.set_xlabel(
            f"Up to {excluded} deal(s) a week left out: no exchange rate into {currency}"
            " (dealbot fx set).",
            loc="left",
            fontsize=9,
            family=fonts,
            parse_math=False,
            color=INK,
        )
    # Right of the panel's heading, clear of the lines whatever their shape.
    axes.legend(
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=2,
        frameon=False,
        prop=FontProperties(family=fonts, size=10),
    )


def _money_axis(axis: Axis, locator: MaxNLocator, *, currency: str, fonts: list[str]) -> None:
    """Draw what `axis` would draw with `locator` and short money labels ("$100k"): at each
    round amount in view a label, a tick mark and a light gridline across the panel.

    As plain artists, the names' way: a Tick per amount builds five artists, and the axis
    formats and lays them out again at each draw. The view limits must be final.
    """
    axes = axis.axes
    vertical = axis is axes.xaxis  # gridlines up from the x axis, or across from the y axis
    start, end = sorted(axes.get_xlim() if vertical else axes.get_ylim())
    slack = (end - start) * 1e-10  # as matplotlib's own test for a tick in view
    amounts = [
        float(amount)
        for amount in locator.tick_values(start, end)
        if start - slack <= amount <= end + slack
    ]
    axis.set_ticks([])
    clip = _panel_clip(axes)
    for amount in amounts:
        if amount < 0:  # a mark and a gridline, but no negative money
            continue
        label = format_money_short(Money(Decimal(str(amount)), currency))
        axes.text(
            *((amount, 0.0) if vertical else (0.0, amount)),
            label,
            transform=_below(axes) if vertical else _left_of(axes),
            ha="center" if vertical else "right",
            va="top" if vertical else "center_baseline",
            family=fonts,
            parse_math=False,
            gid=MONEY_GID,
            clip_path=clip,
        )
    axes.add_artist(_tick_marks(axis, amounts))
    axes.add_collection(
        LineCollection(
            [
                [(amount, 0.0), (amount, 1.0)] if vertical else [(0.0, amount), (1.0, amount)]
                for amount in amounts
            ],
            transform=axes.get_xaxis_transform() if vertical else axes.get_yaxis_transform(),
            colors="#dddddd",
            linewidths=0.8,
            capstyle=matplotlib.rcParams["lines.solid_capstyle"],  # as a gridline's Line2D
            zorder=0.5,  # under the bars and lines, as `set_axisbelow(True)` puts a grid
        ),
        autolim=False,
    )


def _png(figure: Figure) -> bytes:
    """Return the figure as PNG bytes: RGB (the chart is opaque), zlib's fastest level.

    Encoded here rather than by `savefig`, which writes RGBA at Pillow's default level 6:
    this takes about half the time for a file about as small (charts are flat colour), and
    PIL writes no "Software" (matplotlib's version) into it, so the same chart is the same
    bytes.
    """
    figure.set_facecolor("white")
    canvas = figure.canvas
    canvas.draw()
    rgba = canvas.buffer_rgba()  # type: ignore[attr-defined]
    height, width = rgba.shape[:2]
    # Read as RGB straight from the RGBA buffer (its alpha skipped as padding): one pass over
    # the pixels, where reading RGBA and converting made two, for the same bytes.
    image = Image.frombytes("RGB", (width, height), rgba, "raw", "RGBX")
    out = io.BytesIO()
    image.save(out, format="png", compress_level=1, dpi=(DPI, DPI))
    return out.getvalue()


@cache
def _font_families() -> list[str]:
    """Return DejaVu Sans, then each CJK fallback font installed here."""
    installed = {font.name for font in fontManager.ttflist}
    return [BASE_FONT, *(name for name in FALLBACK_FONTS if name in installed)]


@cache
def _charmap(family: str) -> frozenset[int]:
    path = findfont(FontProperties(family=family), fallback_to_default=False)
    return frozenset(FT2Font(path).get_charmap())


def _can_draw(fonts: Sequence[str]) -> Callable[[str], bool]:
    charmaps = [_charmap(family) for family in fonts]
    return lambda char: char.isspace() or any(ord(char) in chars for chars in charmaps)


def _drawable(text: str, fonts: Sequence[str]) -> str:
    """Return `text` with each character no font in `fonts` has replaced by "?"."""
    can_draw = _can_draw(fonts)
    return "".join(char if can_draw(char) else UNDRAWABLE for char in text)


def _drawable_names(names: Sequence[str], fonts: Sequence[str]) -> tuple[list[str], list[str]]:
    """Return the names as drawn, and the names that lost characters on the way."""
    drawn = [_drawable(name, fonts) for name in names]
    unreadable = [
        drawn_name for name, drawn_name in zip(names, drawn, strict=True) if drawn_name != name
    ]
    return drawn, unreadable
