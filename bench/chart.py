"""Micro-benchmark: the digest's forecast chart for a 50-rep team with 13 weeks of trend.

    python -m bench.chart [--times N] [--out FILE]

Draws the same chart N times (after one warm-up draw that pays matplotlib's one-off font
loading) and prints the time per chart. `--out` saves the PNG, to look at it.
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal
from pathlib import Path

from reminders.chart import ChartRep, ChartWeek, forecast_chart

REPS = 50
WEEKS = 13


def team() -> tuple[list[ChartRep], list[ChartWeek]]:
    """Return a 50-rep team (some without quota, some accented names) and 13 weeks."""
    names = ["Ana Ruiz", "Zoë Müller", "Chloé Martin", "Łukasz Żółć", "Пётр Иванов"]
    reps = [
        ChartRep(
            name=f"{names[i % len(names)]} {i:02d}",
            won=Decimal(7_000 * (i % 17) + 1_500 * i),
            commit=Decimal(11_000 * (i % 5)),
            best_case=Decimal(9_000 * (i % 7)),
            pipeline=Decimal(13_000 * (i % 11)),
            quota=None if i % 6 == 0 else Decimal(250_000 + 10_000 * (i % 9)),
        )
        for i in range(REPS)
    ]
    weeks = [
        ChartWeek(
            week=f"2026-W{40 + i:02d}",
            commit=Decimal(900_000 - 40_000 * i),
            won=Decimal(60_000 * i),
            excluded=1 if i == 7 else 0,
        )
        for i in range(WEEKS)
    ]
    return reps, weeks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=20, help="charts to draw (default 20)")
    parser.add_argument("--out", type=Path, help="write the PNG here")
    args = parser.parse_args()
    reps, weeks = team()

    def draw() -> bytes:
        return forecast_chart(title="Enterprise · 2026-Q4", currency="USD", reps=reps, trend=weeks)

    started = time.perf_counter()
    png = draw()
    print(f"first chart (fonts loaded): {(time.perf_counter() - started) * 1000:.0f} ms")
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.times):
        draw()
    per_chart = (time.perf_counter() - started) / max(args.times, 1)
    # CPU time too: on a shared machine it moves less with the other processes' load.
    cpu_per_chart = (time.process_time() - cpu) / max(args.times, 1)
    print(
        f"{REPS} reps, {WEEKS} weeks: {per_chart * 1000:.0f} ms per chart "
        f"({cpu_per_chart * 1000:.0f} ms CPU) over {args.times}"
    )
    print(f"PNG: {len(png)} bytes")
    if args.out:
        args.out.write_bytes(png)


if __name__ == "__main__":
    main()
