"""`dealbot import <csv>`: what it prints and its exit codes (0 clean, 1 rows skipped, 2 usage)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage.database import Database
from storage.migrate import upgrade
from storage.models import Deal
from tests.databases import sqlite_url

REPO = Path(__file__).resolve().parents[2]

EXPORT = """\
Opportunity ID,Opportunity Name,Account Name,Amount,Currency,Stage,Close Date,Opportunity Owner
006A1,Expansion,Initech,50000,USD,Qualification,2026-12-15,Ana Lopez
006A2,Renewal,Globex,12000,EUR,Closed Won,2026-10-01,Ben Ode
"""
BAD_ROW = "006A3,Pilot,Hooli,lots,USD,Qualification,2026-12-15,Ana Lopez\n"


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = sqlite_url(tmp_path)
    upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return url


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
        "imported 2, updated 0, unchanged 0, skipped 0",
    ]
    assert main(["import", str(export), "--owners", str(owners)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "imported 0, updated 0, unchanged 2, skipped 0"
    )
    assert deal_count(database_url) == 2


def test_skipped_rows_are_listed_by_line_and_exit_1(
    database_url: str, owners: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write(tmp_path, EXPORT + BAD_ROW + "006A4,X,Acme,10,USD,Prospecting,,Zed\n")

    code = main(["import", str(export), "--owners", str(owners)])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[1].startswith("line 4: skipped Hooli — Pilot: amount: `lots` is not an amount")
    assert lines[2] == "line 5: skipped Acme — X: owner “Zed” is not in the owners file"
    assert lines[3] == "imported 2, updated 0, unchanged 0, skipped 2 (see above)"
    assert deal_count(database_url) == 2


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
        "dry run, nothing written: imported 2, updated 0, unchanged 0, skipped 0",
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
        "imported 2, updated 0, unchanged 0, skipped 1 (see above)"
    )
