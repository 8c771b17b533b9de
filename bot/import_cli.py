"""`dealbot import <csv>`: deals from a Salesforce or HubSpot export, reported row by row."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from bot.jobs_cli import open_database
from bot.settings import Settings
from domain.clock import Clock, SystemClock
from domain.importing import (
    SLACK_USER_ID,
    DateOrder,
    DealImporter,
    ImportReport,
    OwnerDirectory,
    UnknownFlavour,
    read_owner_map,
)

EXIT_OK = 0
EXIT_ROWS_SKIPPED = 1
EXIT_USAGE = 2


def run_import(
    settings: Settings,
    export_path: Path,
    *,
    owner: str | None = None,
    owners_path: Path | None = None,
    open_only: bool = False,
    dry_run: bool = False,
    date_order: DateOrder | None = None,
    clock: Clock | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Import the export; print each refused row and a summary; return the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr

    def usage(problem: str) -> int:
        print(f"dealbot import: {problem}", file=err)
        return EXIT_USAGE

    if owner is not None and not SLACK_USER_ID.match(owner):
        return usage(f"--owner `{owner}` is not a Slack user id (U…)")
    mapping: dict[str, str] = {}
    if owners_path is not None:
        try:
            with owners_path.open(encoding="utf-8-sig", newline="") as owners_file:
                mapping = read_owner_map(owners_file)
        except OSError as error:
            return usage(f"cannot read the owners file {owners_path}: {error.strerror}")
        except ValueError as error:
            return usage(f"owners file {owners_path}, {error}")
    if not export_path.is_file():
        return usage(f"no such file: {export_path}")

    database = open_database(settings)
    try:
        importer = DealImporter(
            database=database,
            clock=clock or SystemClock(),
            default_timezone=settings.timezone,
            default_currency=settings.dealbot_currency,
        )
        # utf-8-sig: Salesforce and Excel start their CSV files with a byte-order mark.
        with export_path.open(encoding="utf-8-sig", newline="") as export:
            report = importer.import_csv(
                export,
                owners=OwnerDirectory(mapping=mapping, default=owner),
                open_only=open_only,
                dry_run=dry_run,
                date_order=date_order,
            )
    except UnknownFlavour as error:
        return usage(f"{export_path}: {error}")
    except (OSError, UnicodeDecodeError) as error:
        return usage(f"cannot read {export_path}: {error}")
    finally:
        database.dispose()
    _print_report(report, out)
    return EXIT_ROWS_SKIPPED if report.skipped else EXIT_OK


def _print_report(report: ImportReport, out: TextIO) -> None:
    print(f"{report.flavour.name} export", file=out)
    for result in report.results:
        if result.outcome == "skipped":
            print(f"line {result.line}: skipped {result.label}: {result.reason}", file=out)
        elif report.dry_run and result.outcome != "left_out":
            print(f"line {result.line}: would be {result.outcome}: {result.label}", file=out)
    print(report.summary_line(), file=out)
