"""`dealbot fx set|import|list`: exchange rates, as data an admin sets.

A rate is how much of DEALBOT_CURRENCY one unit of another currency is worth from a date on
(`dealbot fx set EUR 1.08` with USD as DEALBOT_CURRENCY: one euro is worth $1.08). An import
is checked whole before anything is written, and every bad line is named by its number.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final, TextIO, TypeVar

from bot.import_cli import terminal_safe
from bot.jobs_cli import open_database
from bot.settings import Settings
from domain.clock import Clock, SystemClock
from domain.fx import Rate, RateBook
from domain.money import is_currency_code
from storage.fx import FxRepository

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2

# Who set a rate from the command line: the table says "cli", never a user name or a path.
SET_BY: Final = "cli"
COLUMNS: Final = ("currency", "rate", "date")
# What the fx_rates column holds (Numeric(20, 10)): refused beyond it rather than rounded.
_MAX_RATE: Final = Decimal(10) ** 10
_PLACES: Final = 10
_ISO_DAY: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_RATE: Final = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_T = TypeVar("_T")


class RateRefused(ValueError):
    """A currency, rate or date that is not one; `str()` says what is wrong and the right form."""


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str


def read_currency(text: str, base: str) -> str:
    """Return the ISO code `text` names (any case), refusing the base and unknown codes."""
    code = text.strip().upper()
    if not is_currency_code(code):
        raise RateRefused(f"`{text.strip()}` is not an ISO currency code such as EUR or GBP")
    if code == base:
        raise RateRefused(
            f"{code} is DEALBOT_CURRENCY, the currency every rate is in: its rate is always 1"
        )
    return code


def read_rate(text: str) -> Decimal:
    """Return the rate `text` gives: a plain number more than zero, like 1.08."""
    shown = text.strip()
    # Plain ASCII digits only: Decimal also takes `1e3`, `1_000`, `NaN` and other scripts'
    # digits, none of which an admin copying a rate means.
    if not _RATE.match(shown):
        raise RateRefused(f"`{shown}` is not a number: write a rate like 1.08")
    rate = Decimal(shown)
    if rate <= 0:
        raise RateRefused(f"`{shown}` is not more than zero: write a rate like 1.08")
    if rate >= _MAX_RATE:
        raise RateRefused(f"`{shown}` is too large for a rate")
    exponent = rate.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > _PLACES:
        raise RateRefused(f"`{shown}` has more than {_PLACES} decimal places")
    return rate


def read_day(text: str) -> dt.date:
    """Return the date `text` gives as YYYY-MM-DD."""
    shown = text.strip()
    try:
        if not _ISO_DAY.match(shown):
            raise ValueError(shown)
        return dt.date.fromisoformat(shown)
    except ValueError:
        raise RateRefused(
            f"`{shown}` is not a date: write it as YYYY-MM-DD, e.g. 2026-12-01"
        ) from None


def fx_set(
    settings: Settings,
    currency: str,
    rate: str,
    *,
    on: str | None = None,
    clock: Clock | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Return the exit code, having set `currency`'s rate from `on` (default: today) on."""
    out, err = out or sys.stdout, err or sys.stderr
    base = settings.dealbot_currency
    clock = clock or SystemClock()
    try:
        code = read_currency(currency, base)
        value = read_rate(rate)
        day = read_day(on) if on is not None else clock.now().astimezone(settings.timezone).date()
    except RateRefused as refused:
        print(terminal_safe(f"dealbot fx set: {refused}; nothing written"), file=err)
        print("usage: dealbot fx set EUR 1.08 [--date 2026-12-01]", file=err)
        return EXIT_USAGE
    database = open_database(settings)
    try:
        with database.session() as session:
            replaced = FxRepository(session).set_rate(
                currency=code, rate=value, effective_on=day, by=SET_BY, at=clock.now()
            )
    finally:
        database.dispose()
    said = f"1 {code} = {_plain(value)} {base} from {day.isoformat()}"
    if replaced is not None:
        said += f" (replaced {_plain(replaced)})"
    print(said, file=out)
    return EXIT_OK


def fx_import(
    settings: Settings,
    path: Path,
    *,
    clock: Clock | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Return the exit code, having stored every rate of the file, or none and every bad line."""
    out, err = out or sys.stdout, err or sys.stderr
    if not path.is_file():
        print(terminal_safe(f"dealbot fx import: no such file: {path}"), file=err)
        return EXIT_USAGE
    try:
        with path.open(encoding="utf-8-sig", newline="") as rates_file:
            rates, bad = check_rates_file(rates_file, settings.dealbot_currency)
    except UnicodeDecodeError:
        print(
            terminal_safe(f"dealbot fx import: {path} is not UTF-8; save it as UTF-8"),
            file=err,
        )
        return EXIT_REFUSED
    except csv.Error as error:
        print(terminal_safe(f"dealbot fx import: {path} is not a CSV file: {error}"), file=err)
        return EXIT_REFUSED
    except OSError as error:
        print(terminal_safe(f"dealbot fx import: cannot read {path}: {error.strerror}"), file=err)
        return EXIT_USAGE
    if bad:
        for line in bad:
            print(terminal_safe(f"line {line.line}: {line.problem}"), file=out)
        print(
            f"nothing written: {len(bad)} bad line(s) (see above); fix them and import the "
            "whole file again",
            file=out,
        )
        return EXIT_REFUSED
    clock = clock or SystemClock()
    database = open_database(settings)
    try:
        with database.session() as session:
            added, replaced = FxRepository(session).import_rates(rates, by=SET_BY, at=clock.now())
    finally:
        database.dispose()
    print(f"imported {added} rate(s), replaced {replaced}", file=out)
    return EXIT_OK


def check_rates_file(lines: Iterable[str], base: str) -> tuple[list[Rate], list[BadLine]]:
    """Return the rates of a `currency,rate,date` CSV and its bad lines (by line number).

    Every line is checked, so one run names every problem; a currency given twice for one
    day is a bad line, since which of the two was meant cannot be told.
    """
    reader = csv.reader(lines)
    header = next(reader, None)
    names = tuple(cell.strip().lower() for cell in header) if header else ()
    if sorted(names) != sorted(COLUMNS):
        shown = ",".join(header) if header else "nothing"
        return [], [BadLine(1, f"the header is `{shown}`; it must be `currency,rate,date`")]
    column = {name: names.index(name) for name in COLUMNS}
    rates: list[Rate] = []
    bad: list[BadLine] = []
    seen: dict[tuple[str, dt.date], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # a blank line, as spreadsheets leave at the end
        if len(row) != len(COLUMNS):
            bad.append(BadLine(line, f"{len(row)} value(s); each line is `EUR,1.08,2026-12-01`"))
            continue
        problems: list[str] = []

        currency = _checked(row[column["currency"]], "currency", _reader(base), problems)
        value = _checked(row[column["rate"]], "rate", read_rate, problems)
        day = _checked(row[column["date"]], "date", read_day, problems)
        if currency is None or value is None or day is None:
            bad.append(BadLine(line, "; ".join(problems)))
            continue
        rate = Rate(currency=currency, effective_on=day, rate=value)
        key = (rate.currency, rate.effective_on)
        if key in seen:
            bad.append(
                BadLine(
                    line,
                    f"{rate.currency} on {rate.effective_on.isoformat()} is already on line "
                    f"{seen[key]}: keep one",
                )
            )
            continue
        seen[key] = line
        rates.append(rate)
    return rates, bad


def _reader(base: str) -> Callable[[str], str]:
    """Return read_currency for this base, as the import reads each line's currency."""
    return lambda text: read_currency(text, base)


def _checked(text: str, name: str, read: Callable[[str], _T], problems: list[str]) -> _T | None:
    """Return `read(text)`, or None having added what is wrong with it to `problems`."""
    try:
        return read(text)
    except RateRefused as refused:
        problems.append(f"{name}: {refused}")
        return None


def fx_list(settings: Settings, *, clock: Clock | None = None, out: TextIO | None = None) -> int:
    """Return 0, having printed the rate in force today for each currency and the rest's count."""
    out = out or sys.stdout
    base = settings.dealbot_currency
    today = (clock or SystemClock()).now().astimezone(settings.timezone).date()
    database = open_database(settings)
    try:
        with database.session() as session:
            repository = FxRepository(session)
            rates = repository.rates()
    finally:
        database.dispose()
    if not rates:
        print(
            f"no exchange rates yet: set one with `dealbot fx set EUR 1.08` ({base} per EUR)",
            file=out,
        )
        return EXIT_OK
    book = RateBook(base, rates)
    print(f"rates in force on {today.isoformat()} ({base} per unit):", file=out)
    for currency in sorted(book.currencies() - {base}):
        found = book.to_base(currency, today)
        if found is None or found[1] is None:
            continue  # not reached: every currency listed has a rate
        value, since = found
        # Before a currency's first rate, the first is used (RateBook): say it is ahead.
        when = f"from {since.isoformat()}" if since > today else f"since {since.isoformat()}"
        print(f"{currency} {_plain(value)} {when}", file=out)
    in_force = len(book.currencies()) - 1
    print(f"{len(rates) - in_force} other rate(s) kept (earlier or later dates)", file=out)
    return EXIT_OK


def _plain(rate: Decimal) -> str:
    """Return a rate without the trailing zeros the database pads it with: 1.0800000000 → 1.08."""
    text = f"{rate.normalize():f}"
    return text
