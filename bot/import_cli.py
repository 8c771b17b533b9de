"""`dealbot import <csv>`: deals from a Salesforce or HubSpot export, all of a file or none."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path
from typing import Final, TextIO

from tqdm import tqdm

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
EXIT_REFUSED = 1
EXIT_USAGE = 2

# Fewer rows than this go in before anyone would look at a bar (thousands are written a second).
PROGRESS_BAR_FROM_ROWS: Final = 2_000

# Bidirectional overrides and isolates can reorder what a terminal shows; line and paragraph
# separators can start a new line. None belongs in a one-line message.
_INVISIBLE_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
)


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
    progress_from: int = PROGRESS_BAR_FROM_ROWS,
) -> int:
    """Return the exit code, having imported the export whole or listed every bad row.

    With `progress_from` rows or more to write and a terminal for `err`, a progress bar is
    drawn there while they are written (a pipe or a log gets none).
    """
    out = out or sys.stdout
    err = err or sys.stderr

    def usage(problem: str) -> int:
        print(terminal_safe(f"dealbot import: {problem}"), file=err)
        return EXIT_USAGE

    def refused(problem: str) -> int:
        print(terminal_safe(f"dealbot import: {problem}; nothing written"), file=err)
        return EXIT_REFUSED

    if owner is not None and not SLACK_USER_ID.match(owner):
        return usage(f"--owner `{owner}` is not a Slack user id (U…)")
    mapping: dict[str, str] = {}
    if owners_path is not None:
        try:
            with owners_path.open(encoding="utf-8-sig", newline="") as owners_file:
                mapping = read_owner_map(owners_file)
        except OSError as error:
            return usage(f"cannot read the owners file {owners_path}: {error.strerror}")
        except UnicodeDecodeError:
            return refused(f"owners file {owners_path} is not UTF-8; save it as UTF-8")
        except ValueError as error:
            return refused(f"owners file {owners_path}, {error}")
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
        # Binary: the importer decodes line by line, so a bad byte refuses its row by line.
        with export_path.open("rb") as export:
            checked = importer.check(
                export,
                owners=OwnerDirectory(mapping=mapping, default=owner),
                open_only=open_only,
                date_order=date_order,
            )
        with tqdm(
            total=len(checked.deals),
            desc="checking" if dry_run else "importing",
            unit=" rows",
            file=err,
            disable=len(checked.deals) < progress_from or not err.isatty(),
            leave=False,
        ) as bar:
            report = importer.write(checked, dry_run=dry_run, progress=bar.update)
    except UnknownFlavour as error:
        return usage(f"{export_path}: {error}")
    except OSError as error:
        return usage(f"cannot read {export_path}: {error.strerror}")
    finally:
        database.dispose()
    _print_report(report, out)
    return EXIT_REFUSED if report.refused else EXIT_OK


def terminal_safe(text: str) -> str:
    """Return `text` with every control character shown as an escape, harmless to print.

    An export's values are quoted back in messages; an ESC in one must not recolour the
    terminal or move its cursor, so it is shown as `\\x1b`, where the person can find it.
    """
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) == "Cc" or char in _INVISIBLE_CONTROLS
        else char
        for char in text
    )


def _print_report(report: ImportReport, out: TextIO) -> None:
    print(f"{report.flavour.name} export", file=out)
    for result in report.refused:
        print(terminal_safe(f"line {result.line}: {result.label}: {result.reason}"), file=out)
    if report.dry_run and not report.refused:
        for result in report.results:
            if result.outcome != "left_out":
                line = f"line {result.line}: would be {result.outcome}: {result.label}"
                print(terminal_safe(line), file=out)
    print(report.summary_line(), file=out)
