"""`dealbot import` of a big Salesforce export: the batched path against the row-by-row one.

    python -m bench.import_speed [--rows 100000] [--old-rows 5000] [--database URL]

Writes a Salesforce export of `--rows` rows (70% open, half of them with a next step, 20%
closed won, 10% closed lost, amounts in three currencies, 1,000 owners mapped by email) and
imports it into a freshly migrated database (a temporary SQLite file unless `--database`
names an empty one) the way `dealbot import` does: the whole file read and checked, then
written. The batched path (`DealImporter.write`) imports every row; the row-by-row path
(`DealImporter.write_row_by_row`, what `dealbot import` did before, six minutes for 100,000
rows) imports the first `--old-rows` rows into a second fresh database, since running it on
all of them takes minutes. Both are printed in rows per second, side by side, with the ratio,
and a re-import of the same file (every row unchanged) is timed too. Exit 0 when the whole
import took under the target (60 s for 100,000 rows, scaled to `--rows`), else 1.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import random
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from domain.clock import FixedClock
from domain.importing import DealImporter, ImportReport, OwnerDirectory
from storage.database import Database
from storage.migrate import upgrade
from storage.models import Deal, DealChange

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
TARGET_SECONDS_PER_100K = 60.0
HEADER = (
    "Opportunity ID",
    "Opportunity Name",
    "Account Name",
    "Amount",
    "Opportunity Currency",
    "Stage",
    "Close Date",
    "Forecast Category",
    "Opportunity Owner",
    "Owner Email",
    "Next Step",
    "Loss Reason",
)
OPEN_STAGES = ("Prospecting", "Qualification", "Value Proposition", "Negotiation/Review")
FORECASTS = ("Pipeline", "Best Case", "Commit")


def export_bytes(rows: int, *, owners: int = 1_000) -> bytes:
    """Return a Salesforce CSV export of `rows` deals, the same for the same arguments."""
    rng = random.Random(11)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for index in range(rows):
        owner = index % owners
        roll = rng.random()
        stage = "Closed Won" if roll < 0.2 else "Closed Lost" if roll < 0.3 else None
        close = NOW.date() + dt.timedelta(days=rng.randint(-200, 300))
        writer.writerow(
            (
                f"006{index:015d}",
                f"Deal {index}",
                f"Account {index // 3:06d}",
                f"{rng.randint(1, 500) * 1000}.00",
                rng.choice(("USD", "USD", "EUR", "GBP")),
                stage or rng.choice(OPEN_STAGES),
                close.isoformat(),
                "Closed" if stage else rng.choice(FORECASTS),
                f"Owner {owner}",
                f"owner{owner}@example.com",
                "Send the proposal" if stage is None and rng.random() < 0.5 else "",
                "Went with a competitor" if stage == "Closed Lost" else "",
            )
        )
    return buffer.getvalue().encode()


def owner_directory(owners: int = 1_000) -> OwnerDirectory:
    from domain.importing import read_owner_map

    lines = [f"owner{index}@example.com,U{index:08d}" for index in range(owners)]
    return OwnerDirectory(mapping=read_owner_map(lines))


def timed_import(
    database: Database, export: bytes, *, row_by_row: bool
) -> tuple[float, float, ImportReport]:
    """Return seconds checking, seconds writing, and the report."""
    importer = DealImporter(
        database=database, clock=FixedClock(at=NOW), default_timezone=ZoneInfo("UTC")
    )
    started = time.perf_counter()
    checked = importer.check(io.BytesIO(export), owners=owner_directory())
    checked_at = time.perf_counter()
    write = importer.write_row_by_row if row_by_row else importer.write
    report = write(checked)
    finished = time.perf_counter()
    if report.refused:
        raise SystemExit(f"benchmark broken: {report.refused[0]}")
    return checked_at - started, finished - checked_at, report


def fresh_database(url: str | None, directory: Path, name: str) -> Database:
    url = url or f"sqlite:///{directory / name}"
    upgrade(url)
    return Database.from_url(url)


def count(database: Database, model: type[Deal] | type[DealChange]) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--old-rows", type=int, default=5_000, help="rows for the row-by-row path (0: skip)"
    )
    parser.add_argument(
        "--database", help="an empty database URL for the batched path (default: SQLite file)"
    )
    arguments = parser.parse_args(argv)
    export = export_bytes(arguments.rows)
    print(f"export: {arguments.rows:,} rows, {len(export) / 1e6:.1f} MB")
    with tempfile.TemporaryDirectory(prefix="dealbot-import-bench-") as directory:
        new_db = fresh_database(arguments.database, Path(directory), "batched.sqlite3")
        try:
            check_s, write_s, report = timed_import(new_db, export, row_by_row=False)
            total = check_s + write_s
            deals, changes = count(new_db, Deal), count(new_db, DealChange)
            again_check, again_write, again = timed_import(new_db, export, row_by_row=False)
        finally:
            new_db.dispose()
        print(
            f"batched:    {arguments.rows:>7,} rows  check {check_s:6.1f} s  write "
            f"{write_s:6.1f} s  total {total:6.1f} s  {arguments.rows / total:8,.0f} rows/s"
            f"  ({deals:,} deals, {changes:,} history rows; {report.summary_line()})"
        )
        print(
            f"re-import:  {arguments.rows:>7,} rows  check {again_check:6.1f} s  write "
            f"{again_write:6.1f} s  total {again_check + again_write:6.1f} s  "
            f"({again.summary_line()})"
        )
        if arguments.old_rows:
            old_rows = min(arguments.old_rows, arguments.rows)
            old_export = b"".join(export.splitlines(keepends=True)[: old_rows + 1])
            old_db = fresh_database(None, Path(directory), "row-by-row.sqlite3")
            try:
                old_check, old_write, _ = timed_import(old_db, old_export, row_by_row=True)
            finally:
                old_db.dispose()
            old_rate = old_rows / (old_check + old_write)
            print(
                f"row by row: {old_rows:>7,} rows  check {old_check:6.1f} s  write "
                f"{old_write:6.1f} s  total {old_check + old_write:6.1f} s  "
                f"{old_rate:8,.0f} rows/s  (on SQLite)"
            )
            print(f"batched / row by row: {arguments.rows / total / old_rate:.1f}x rows/s")
    target = TARGET_SECONDS_PER_100K * arguments.rows / 100_000
    verdict = "PASS" if total <= target else "MISS"
    print(f"{verdict}: {total:.1f} s for {arguments.rows:,} rows (target {target:.1f} s)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
