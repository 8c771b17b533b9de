"""`dealbot import <csv>`: what it prints and its exit codes (0 written, 1 refused, 2 usage).

Every test runs on SQLite and on PostgreSQL: PostgreSQL refuses what SQLite stores (a NUL
byte, a value longer than its column), so a file must be checked before either sees it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage.database import Database
from storage.migrate import upgrade
from storage.models import Deal
from tests.databases import BACKENDS, database_url_for

REPO = Path(__file__).resolve().parents[2]

EXPORT = """\
Opportunity ID,Opportunity Name,Account Name,Amount,Currency,Stage,Close Date,Opportunity Owner
006A1,Expansion,Initech,50000,USD,Qualification,2026-12-15,Ana Lopez
006A2,Renewal,Globex,12000,EUR,Closed Won,2026-10-01,Ben Ode
"""
BAD_ROW = "006A3,Pilot,Hooli,lots,USD,Qualification,2026-12-15,Ana Lopez\n"


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        upgrade(url)
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        yield url


@pytest.fixture
def owners(tmp_path: Path) -> Path:
    path = tmp_path / "owners.csv"
    path.write_text("source owner,slack user\nAna Lopez,U0ANA\nBen Ode,U0BEN\n")
    return path


def write(tmp_path: Path, text: str, name: str = "export.csv") -> Path:
    path = tmp_path / name
    # A byte-order mark, as Salesforce and Excel write one.
    path.write_text(text, encoding="utf-8-sig")
    return path


def deal_count(url: str) -> int:
    database = Database.from_url(url)
    try:
        with database.session() as session:
            return session.scalar(select(func.count()).select_from(Deal)) or 0
    finally:
        database.dispose()


def test_a_clean_import_exits_0_and_a_reimport_changes_nothing(
    database_url: str, owners: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write(tmp_path, EXPORT)

    assert main(["import", str(export), "--owners", str(owners)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Salesforce export",
        "imported 2, updated 0, unchanged 0",
    ]
    assert main(["import", str(export), "--owners", str(owners)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == ("imported 0, updated 0, unchanged 2")
    assert deal_count(database_url) == 2


def test_bad_rows_are_listed_by_line_exit_1_and_nothing_is_written(
    database_url: str, owners: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write(tmp_path, EXPORT + BAD_ROW + "006A4,X,Acme,10,USD,Prospecting,,Zed\n")

    code = main(["import", str(export), "--owners", str(owners)])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[1].startswith("line 4: Hooli — Pilot: amount: `lots` is not an amount")
    assert lines[2] == "line 5: Acme — X: owner “Zed” is not in the owners file"
    assert lines[3] == (
        "nothing written: 2 of 4 rows refused (see above); fix them and import the whole file again"
    )
    assert deal_count(database_url) == 0


def test_dry_run_writes_nothing(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write(tmp_path, EXPORT)

    code = main(["import", str(export), "--owner", "U0ANA", "--dry-run"])

    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "Salesforce export",
        "line 2: would be imported: Initech — Expansion",
        "line 3: would be imported: Globex — Renewal",
        "dry run, nothing written: imported 2, updated 0, unchanged 0",
    ]
    assert deal_count(database_url) == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.csv", "--owner", "U0ANA"], "no such file: missing.csv"),
        (["unknown.csv", "--owner", "U0ANA"], "expected the headers Salesforce:"),
        (["export.csv", "--owner", "ana"], "--owner `ana` is not a Slack user id"),
        (["export.csv", "--owners", "nobody.csv"], "cannot read the owners file"),
    ],
)
def test_usage_errors_exit_2(
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    write(tmp_path, EXPORT)
    write(tmp_path, "Name,Value\nx,1\n", "unknown.csv")

    assert main(["import", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert deal_count(database_url) == 0


def test_python_m_bot_cli_import_runs_the_command(database_url: str, tmp_path: Path) -> None:
    export = write(tmp_path, EXPORT + BAD_ROW)
    environment = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(REPO)}

    finished = subprocess.run(
        [sys.executable, "-m", "bot.cli", "import", str(export), "--owner", "U0ANA"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 1, finished.stderr
    assert finished.stdout.splitlines()[-1] == (
        "nothing written: 1 of 3 rows refused (see above); fix them and import the whole file again"
    )


# --- bad files: checked whole, refused whole ------------------------------------------------

HEADER = EXPORT.splitlines()[0]
NOTHING_WRITTEN = "fix them and import the whole file again"


def good_row(line: int) -> str:
    """Return a valid export row, different for each line."""
    return f"006{line:07d},Deal {line},Account {line},1000,USD,Qualification,2026-12-15,Ana Lopez"


def write_bytes(tmp_path: Path, rows: int, replaced: dict[int, bytes]) -> Path:
    """Return an export of `rows` good data rows (line 2 on) with some lines replaced, as bytes."""
    lines = [HEADER.encode()] + [good_row(line).encode() for line in range(2, rows + 2)]
    for line, raw in replaced.items():
        lines[line - 1] = raw
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    return path


def import_lines(export: Path, capsys: pytest.CaptureFixture[str], *options: str) -> list[str]:
    """Return what `dealbot import` printed, having checked that it refused the file."""
    assert main(["import", str(export), "--owner", "U0ANA", *options]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


DRY_RUN = pytest.mark.parametrize("options", [[], ["--dry-run"]], ids=["import", "dry-run"])


@DRY_RUN
def test_a_bad_byte_at_row_3000_writes_nothing_and_every_bad_row_is_listed_by_line(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    export = write_bytes(
        tmp_path,
        3_100,
        {
            10: good_row(10).replace(",1000,", ",lots,").encode(),
            3_001: good_row(3_001).encode().replace(b"Account", b"Acc\xe9ount"),
            3_050: good_row(3_050).encode().replace(b"Deal", b"D\xff\xfeal"),
        },
    )

    lines = import_lines(export, capsys, *options)

    assert lines[1].startswith("line 10: Account 10 — Deal 10: amount: `lots` is not an amount")
    assert lines[2:4] == [
        "line 3001: Acc\ufffdount 3001 — Deal 3001: "
        "line 3001, column 25: byte 0xE9 is not UTF-8; export the file as UTF-8",
        "line 3050: Account 3050 — D\ufffd\ufffdal 3050: "
        "line 3050, column 13: byte 0xFF is not UTF-8; export the file as UTF-8",
    ]
    assert lines[4] == f"nothing written: 3 of 3,100 rows refused (see above); {NOTHING_WRITTEN}"
    assert deal_count(database_url) == 0


@DRY_RUN
def test_a_field_over_the_csv_readers_limit_is_refused_by_line_and_reading_goes_on(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    huge = good_row(3).replace("Deal 3", "x" * 200_000).encode()
    export = write_bytes(tmp_path, 4, {3: huge, 5: good_row(5).replace(",1000,", ",?,").encode()})

    lines = import_lines(export, capsys, *options)

    assert lines[1:] == [
        "line 3: (no name): a field is longer than 131,072 characters, the most the CSV "
        "reader takes",
        "line 5: Account 5 — Deal 5: amount: `?` is not an amount: try `50k`, `$1.2M` or "
        "`€40,000`.",
        f"nothing written: 2 of 4 rows refused (see above); {NOTHING_WRITTEN}",
    ]
    assert deal_count(database_url) == 0


@DRY_RUN
def test_a_300_character_account_name_is_refused_naming_the_limit(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    long_name = "A" * 300
    export = write_bytes(tmp_path, 3, {3: good_row(3).replace("Account 3", long_name).encode()})

    lines = import_lines(export, capsys, *options)

    assert lines[1:] == [
        f"line 3: {'A' * 39}… — Deal 3: “Account Name” is 300 characters long; dealbot keeps "
        "at most 200 (Salesforce allows 255)",
        f"nothing written: 1 of 3 rows refused (see above); {NOTHING_WRITTEN}",
    ]
    assert deal_count(database_url) == 0


@DRY_RUN
def test_a_nul_byte_in_a_value_is_refused_by_line(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    export = write_bytes(tmp_path, 3, {2: good_row(2).replace("Account", "Acc\x00ount").encode()})

    lines = import_lines(export, capsys, *options)

    assert lines[1:] == [
        "line 2: Acc\\x00ount 2 — Deal 2: “Account Name” holds a control character (U+0000); "
        "remove it",
        f"nothing written: 1 of 3 rows refused (see above); {NOTHING_WRITTEN}",
    ]
    assert deal_count(database_url) == 0


def test_an_ansi_escape_in_a_value_is_shown_harmlessly(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = "\x1b[2J\x1b[HHooli\x1b[31m"
    export = write_bytes(
        tmp_path, 2, {3: good_row(3).replace("Account 3", hostile).replace("1000", "x").encode()}
    )

    lines = import_lines(export, capsys)

    assert not any("\x1b" in line for line in lines)
    assert lines[1] == (
        "line 3: \\x1b[2J\\x1b[HHooli\\x1b[31m — Deal 3: “Account Name” holds a control "
        "character (U+001B); remove it"
    )
    assert deal_count(database_url) == 0


def test_a_refused_owners_file_is_bad_content_not_a_usage_error(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write(tmp_path, EXPORT)
    owners = tmp_path / "owners.csv"
    owners.write_bytes(b"Ana Lopez,U0ANA\nBen \xff,U0BEN\n")

    assert main(["import", str(export), "--owners", str(owners)]) == 1
    assert "is not UTF-8; save it as UTF-8; nothing written" in capsys.readouterr().err
    assert deal_count(database_url) == 0


class Terminal(io.StringIO):
    """stderr as a terminal: the progress bar is drawn only on one."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("rows", "terminal", "drawn"),
    [(5, True, True), (5, False, False), (4, True, False)],
    ids=["terminal", "pipe", "few-rows"],
)
def test_a_large_import_shows_a_progress_bar_on_a_terminal_only(
    database_url: str, tmp_path: Path, rows: int, terminal: bool, drawn: bool
) -> None:
    from bot.import_cli import run_import
    from bot.settings import load_settings

    export = write_bytes(tmp_path, rows, {})
    out, err = io.StringIO(), Terminal() if terminal else io.StringIO()

    code = run_import(load_settings(), export, owner="U0ANA", out=out, err=err, progress_from=5)

    assert code == 0
    assert out.getvalue().splitlines() == [
        "Salesforce export",
        f"imported {rows}, updated 0, unchanged 0",
    ]
    assert ("importing:" in err.getvalue() and "/5 [" in err.getvalue()) is drawn
    assert deal_count(database_url) == rows


def test_terminal_safe_escapes_what_could_drive_a_terminal() -> None:
    from bot.import_cli import terminal_safe

    assert terminal_safe("Café — 東京 ✓") == "Café — 東京 ✓"
    assert terminal_safe("\x1b[31mred\x07\x00\t\r\n") == "\\x1b[31mred\\x07\\x00\\t\\r\\n"
    # A right-to-left override would show the rest of the line backwards.
    assert terminal_safe("abc\u202edef\u2066") == "abc\\u202edef\\u2066"
