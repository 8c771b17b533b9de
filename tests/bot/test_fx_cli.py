"""`dealbot fx set|import|list`: what each prints, what it stores, its exit codes (0 done,
1 a file refused, 2 a usage error), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.fx_cli import fx_list, fx_set
from bot.settings import load_settings
from domain.clock import FixedClock
from storage.database import Database
from storage.migrate import upgrade
from storage.models import FxRate
from tests.databases import BACKENDS, database_url_for

# 23:30 UTC on 30 Nov is already 1 Dec in Paris, DEALBOT_TIMEZONE below.
LATE_ON_30_NOV = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        upgrade(url)
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("DEALBOT_CURRENCY", "USD")
        monkeypatch.setenv("DEALBOT_TIMEZONE", "Europe/Paris")
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        yield url


def stored(url: str) -> list[tuple[str, str, Decimal, str]]:
    """Return every stored rate as (currency, ISO day, rate, set by), in order."""
    database = Database.from_url(url)
    try:
        with database.session() as session:
            rows = session.execute(
                select(FxRate.currency, FxRate.effective_on, FxRate.rate, FxRate.set_by).order_by(
                    FxRate.currency, FxRate.effective_on
                )
            )
            return [(c, d.isoformat(), Decimal(r).normalize(), by) for c, d, r, by in rows]
    finally:
        database.dispose()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rates.csv"
    path.write_text(text, encoding="utf-8-sig")  # with a byte-order mark, as Excel saves
    return path


def test_fx_set_stores_the_rate_from_the_date_given_and_a_second_set_replaces_it(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fx", "set", "EUR", "1.08", "--date", "2026-12-01"]) == 0
    assert capsys.readouterr().out == "1 EUR = 1.08 USD from 2026-12-01\n"
    assert main(["fx", "set", "eur", "1.09", "--date", "2026-12-01"]) == 0
    assert capsys.readouterr().out == "1 EUR = 1.09 USD from 2026-12-01 (replaced 1.08)\n"

    assert stored(database_url) == [("EUR", "2026-12-01", Decimal("1.09"), "cli")]


def test_fx_set_without_a_date_applies_from_today_in_dealbot_timezone(
    database_url: str,
) -> None:
    out = io.StringIO()

    code = fx_set(load_settings(), "GBP", "1.27", clock=FixedClock(at=LATE_ON_30_NOV), out=out)

    assert code == 0
    assert out.getvalue() == "1 GBP = 1.27 USD from 2026-12-01\n"
    assert stored(database_url) == [("GBP", "2026-12-01", Decimal("1.27"), "cli")]


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["EUX", "1.08"], "`EUX` is not an ISO currency code such as EUR or GBP"),
        (["USD", "1"], "USD is DEALBOT_CURRENCY, the currency every rate is in"),
        (["EUR", "0"], "`0` is not more than zero"),
        (["EUR", "-1.08"], "`-1.08` is not more than zero"),
        (["EUR", "1,08"], "`1,08` is not a number: write a rate like 1.08"),
        (["EUR", "NaN"], "`NaN` is not a number"),
        (["EUR", "1e3"], "`1e3` is not a number"),
        (["EUR", "1_080"], "`1_080` is not a number"),
        (["EUR", "١٫٠٨"], "is not a number"),
        (["EUR", "0.00000000001"], "has more than 10 decimal places"),
        (["EUR", "1.08", "--date", "2026-02-30"], "`2026-02-30` is not a date"),
        (["EUR", "1.08", "--date", "1 Dec"], "`1 Dec` is not a date: write it as YYYY-MM-DD"),
    ],
)
def test_fx_set_refuses_bad_input_with_exit_2_and_writes_nothing(
    database_url: str, capsys: pytest.CaptureFixture[str], arguments: list[str], said: str
) -> None:
    assert main(["fx", "set", *arguments]) == 2
    err = capsys.readouterr().err
    assert said in err and "nothing written" in err
    assert "usage: dealbot fx set EUR 1.08 [--date 2026-12-01]" in err
    assert stored(database_url) == []


def test_fx_import_stores_every_line_and_a_reimport_of_the_same_day_replaces(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = write(
        tmp_path,
        "currency,rate,date\nEUR,1.08,2026-12-01\nGBP,1.27,2026-12-01\nEUR,1.07,2026-11-01\n\n",
    )
    assert main(["fx", "import", str(rates)]) == 0
    assert capsys.readouterr().out == "imported 3 rate(s), replaced 0\n"

    # Columns in another order; the same day again, with a correction for EUR.
    again = write(tmp_path, "Date,Currency,Rate\n2026-12-01,EUR,1.1\n2026-12-01,CHF,1.13\n")
    assert main(["fx", "import", str(again)]) == 0
    assert capsys.readouterr().out == "imported 1 rate(s), replaced 1\n"

    assert stored(database_url) == [
        ("CHF", "2026-12-01", Decimal("1.13"), "cli"),
        ("EUR", "2026-11-01", Decimal("1.07"), "cli"),
        ("EUR", "2026-12-01", Decimal("1.1"), "cli"),
        ("GBP", "2026-12-01", Decimal("1.27"), "cli"),
    ]


def test_fx_import_names_every_bad_line_exits_1_and_writes_nothing(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = write(
        tmp_path,
        "currency,rate,date\n"
        "EUR,1.08,2026-12-01\n"  # line 2: good, and still not written
        "XYZ,1.2,2026-12-01\n"
        "GBP,-1,2026-13-01\n"
        "USD,1,2026-12-01\n"
        "CHF,1.13\n"
        "EUR,1.09,2026-12-01\n",
    )

    assert main(["fx", "import", str(rates)]) == 1

    assert capsys.readouterr().out.splitlines() == [
        "line 3: currency: `XYZ` is not an ISO currency code such as EUR or GBP",
        "line 4: rate: `-1` is not more than zero: write a rate like 1.08; "
        "date: `2026-13-01` is not a date: write it as YYYY-MM-DD, e.g. 2026-12-01",
        "line 5: currency: USD is DEALBOT_CURRENCY, the currency every rate is in: "
        "its rate is always 1",
        "line 6: 2 value(s); each line is `EUR,1.08,2026-12-01`",
        "line 7: EUR on 2026-12-01 is already on line 2: keep one",
        "nothing written: 5 bad line(s) (see above); fix them and import the whole file again",
    ]
    assert stored(database_url) == []


@pytest.mark.parametrize(
    ("text", "code", "said"),
    [
        ("cur,rate,day\nEUR,1.08,2026-12-01\n", 1, "line 1: the header is `cur,rate,day`"),
        ("", 1, "line 1: the header is `nothing`"),
    ],
)
def test_fx_import_refuses_a_file_without_the_header(
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    code: int,
    said: str,
) -> None:
    assert main(["fx", "import", str(write(tmp_path, text))]) == code
    assert said in capsys.readouterr().out
    assert stored(database_url) == []


def test_fx_import_of_a_missing_file_is_a_usage_error(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fx", "import", "missing.csv"]) == 2
    assert "no such file: missing.csv" in capsys.readouterr().err


def test_fx_import_of_a_file_that_is_not_utf8_is_refused(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rates.csv"
    path.write_bytes(b"currency,rate,date\nEUR,1.08,2026-12-01 \xe9t\xe9\n")
    assert main(["fx", "import", str(path)]) == 1
    assert "is not UTF-8" in capsys.readouterr().err
    assert stored(database_url) == []


def test_fx_list_shows_the_rates_in_force_today_and_counts_the_others(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert fx_list(load_settings(), clock=FixedClock(at=LATE_ON_30_NOV), out=out) == 0
    assert out.getvalue() == (
        "no exchange rates yet: set one with `dealbot fx set EUR 1.08` (USD per EUR)\n"
    )
    rates = write(
        tmp_path,
        "currency,rate,date\n"
        "EUR,1.07,2026-11-01\n"
        "EUR,1.08,2026-12-01\n"
        "EUR,1.10,2027-01-01\n"
        "GBP,1.27,2026-11-15\n"
        "CHF,1.13,2026-12-15\n",
    )
    assert main(["fx", "import", str(rates)]) == 0
    capsys.readouterr()

    out = io.StringIO()
    # 1 Dec in Paris: EUR's 1 Dec rate is in force; CHF has only a later one, used until then.
    assert fx_list(load_settings(), clock=FixedClock(at=LATE_ON_30_NOV), out=out) == 0
    assert out.getvalue().splitlines() == [
        "rates in force on 2026-12-01 (USD per unit):",
        "CHF 1.13 from 2026-12-15",
        "EUR 1.08 since 2026-12-01",
        "GBP 1.27 since 2026-11-15",
        "2 other rate(s) kept (earlier or later dates)",
    ]


def test_fx_list_runs_through_the_cli_entry_point(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fx", "set", "EUR", "1.08", "--date", "2026-12-01"]) == 0
    capsys.readouterr()
    assert main(["fx", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # Whatever today is, the one rate is the one in force (before its date, it is used too).
    assert lines[0].startswith("rates in force on ") and lines[0].endswith(" (USD per unit):")
    assert lines[1] in {"EUR 1.08 since 2026-12-01", "EUR 1.08 from 2026-12-01"}
    assert lines[2:] == ["0 other rate(s) kept (earlier or later dates)"]
