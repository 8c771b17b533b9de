"""The forecast chart a manager would forward: the quarter per rep, and the weekly trend.

Drawn with matplotlib's object API (`Figure` + the Agg canvas), never pyplot: pyplot keeps
global figure state, and jobs draw from worker threads. Text uses DejaVu Sans, which
matplotlib ships, so no system font is needed for Latin, Greek or Cyrillic names ("Zoë
Müller"). DejaVu has no CJK glyphs: a CJK font found on the machine (Noto Sans CJK and the
like) is used as a fallback for them; with none, each character no font can draw is shown
as "?" and the chart says so, rather than a row of empty boxes and a log full of warnings.
The bytes are the same for the same input (no timestamp or version in the PNG), so a chart
can be snapshot-tested and a resend is the same file.

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
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, fontManager
from matplotlib.ft2font import FT2Font
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Annotation, Text
from matplotlib.ticker import FuncFormatter, MaxNLocator
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
        fonts=fonts,
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
_NOTE_OFFSET_PX: Final = 8 / 72 * DPI  # the rep notes' xytext offset


def _place(
    figure: Figure,
    bars_axes: Axes,
    trend_axes: Axes,
    *,
    rows: int,
    fonts: list[str],
    bars_note: bool,
    trend_shown: bool,
    trend_note: bool,
    figure_note: bool,
) -> None:
    """Position both panels as constrained layout would, measuring only the texts that set
    the margins: the widest y label on the left; on the right, whichever reaches furthest of
    the rep notes after their bars and the last money label under them."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    width_px, height_px = figure.bbox.width, figure.bbox.height

    # Widths come from the texts themselves (not the renderer directly): matplotlib caches a
    # text's metrics per renderer, so the draw that follows measures nothing twice.
    def text_width(text: Text) -> float:
        return float(text.get_window_extent(renderer).width)

    def tick_labels(axes: Axes, axis: Axis) -> list[tuple[float, Text]]:
        """Return (position as a fraction of the view, label) for each label to be drawn."""
        start, end = axes.get_xlim() if axis is axes.xaxis else axes.get_ylim()
        axis.get_majorticklabels()  # sets the labels' texts from the formatter
        return [
            ((tick.get_loc() - start) / (end - start), tick.label1)
            for tick in axis.get_major_ticks()
            if min(start, end) <= tick.get_loc() <= max(start, end) and tick.label1.get_text()
        ]

    labels = [label for _, label in tick_labels(bars_axes, bars_axes.yaxis)]
    if trend_shown:
        labels += [label for _, label in tick_labels(trend_axes, trend_axes.yaxis)]
    left = _PAD_PX + max([text_width(label) for label in labels] + [0.0]) + _TICK_PX
    # Each (fraction of the axes width, pixels beyond that point) must end inside the pad.
    reaches: list[tuple[float, float]] = [(1.0, 0.0)]
    xmax = bars_axes.get_xlim()[1]
    for note in bars_axes.texts:
        if isinstance(note, Annotation):
            reaches.append((note.xy[0] / xmax, _NOTE_OFFSET_PX + text_width(note)))
    money = tick_labels(bars_axes, bars_axes.xaxis)
    if money:
        fraction, last = max(money, key=lambda pair: pair[0])
        reaches.append((fraction, text_width(last) / 2))
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
        for position, start, value in zip(positions, left, values, strict=True):
            # What `barh` draws, without its per-bar data-limit update (most of its cost):
            # both limits are set below, and the legend has its own handles.
            axes.add_artist(
                Rectangle((start, position - _BAR_HEIGHT / 2), value, _BAR_HEIGHT, facecolor=color)
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
        )
    labels = [
        name if rep.quota is not None else f"{name} (no quota)"
        for name, rep in zip(names, reps, strict=True)
    ]
    axes.set_yticks(positions, labels, family=fonts, parse_math=False, fontsize=11)
    axes.set_ylim(len(reps) - 0.5 if reps else 0.5, -0.5)  # first (largest) rep on top
    widest = max([*left, *(quota for _, quota in quotas), 0.0])
    for i, rep in enumerate(reps):
        axes.annotate(
            _rep_note(rep, currency),
            (max(left[i], float(rep.quota or 0)), i),
            xytext=(8, 0),
            textcoords="offset points",
            va="center",
            fontsize=10,
            family=fonts,
            parse_math=False,
            color=INK,
        )
    # Room on the right for the notes at the end of the longest bar.
    axes.set_xlim(0, widest * 1.22 if widest > 0 else 1)
    axes.xaxis.set_major_formatter(_money_axis(currency))
    axes.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3))
    axes.grid(axis="x", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    for tick in axes.get_xticklabels():
        tick.set_family(fonts)
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
    axes.set_xticks(positions, [week.week for week in trend], family=fonts, parse_math=False)
    axes.set_xlim(-0.3, len(trend) - 0.7)  # room for the first and last markers
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_formatter(_money_axis(currency))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10], min_n_ticks=3))
    for tick in axes.get_yticklabels():
        tick.set_family(fonts)
    axes.grid(axis="y", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)
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


def _money_axis(currency: str) -> FuncFormatter:
    def short(value: float, _position: float) -> str:
        if value < 0:
            return ""
        return format_money_short(Money(Decimal(str(float(value))), currency))

    return FuncFormatter(short)


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
    image = Image.frombuffer("RGBA", (width, height), rgba, "raw", "RGBA", 0, 1).convert("RGB")
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
