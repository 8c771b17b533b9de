"""Dates as reps type them (`fri`, `dec 15`, `eoq`, `Q1`, `12/15`) and as dealbot shows them
(`Mon 15 Dec`).

Every relative date is resolved against an explicit `today`, which is the rep's or the
team's today in their own timezone: this module never reads the clock.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from typing import Final

__all__ = [
    "InvalidDate",
    "format_day",
    "parse_date",
    "parse_period",
    "quarter_bounds",
    "quarter_of",
]

# English names on purpose: strftime("%a") follows the server's locale, and a digest that
# says "Mo 15 Dez" on one instance and "Mon 15 Dec" on another is a bug report.
_DAY_ABBR: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_ABBR: Final = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip

_WEEKDAYS: Final[dict[str, int]] = {
    **dict.fromkeys(("mon", "monday"), 0),
    **dict.fromkeys(("tue", "tues", "tuesday"), 1),
    **dict.fromkeys(("wed", "weds", "wednesday"), 2),
    **dict.fromkeys(("thu", "thur", "thurs", "thursday"), 3),
    **dict.fromkeys(("fri", "friday"), 4),
    **dict.fromkeys(("sat", "saturday"), 5),
    **dict.fromkeys(("sun", "sunday"), 6),
}
_MONTHS: Final[dict[str, int]] = {
    **{name.lower(): i for i, name in enumerate(calendar.month_name) if name},
    **{abbr.lower(): i + 1 for i, abbr in enumerate(_MONTH_ABBR)},
    "sept": 9,
}
_UNITS: Final[dict[str, str]] = {
    **dict.fromkeys(("day", "days"), "day"),
    **dict.fromkeys(("week", "weeks", "wk", "wks"), "week"),
    **dict.fromkeys(("month", "months", "mo", "mos"), "month"),
    **dict.fromkeys(("year", "years", "yr", "yrs"), "year"),
}
_PERIOD_ENDS: Final[dict[str, str]] = {
    "eow": "week",
    "end of week": "week",
    "eom": "month",
    "end of month": "month",
    "eoq": "quarter",
    "end of quarter": "quarter",
    "eoy": "year",
    "end of year": "year",
}
# Ten years is further out than any deal or next step a rep should be logging.
_MAX_DAYS_AHEAD: Final = 3660

_ISO_RE: Final = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$")
_MONTH_DAY_RE: Final = re.compile(
    r"^(?P<month>[a-z]+)\.?\s+(?P<day>[0-9]{1,2})(?:st|nd|rd|th)?(?:,?\s+(?P<year>[0-9]{4}))?$"
)
_DAY_MONTH_RE: Final = re.compile(
    r"^(?P<day>[0-9]{1,2})(?:st|nd|rd|th)?\s+(?P<month>[a-z]+)\.?(?:,?\s+(?P<year>[0-9]{4}))?$"
)
_SLASHED_RE: Final = re.compile(r"^[0-9]{1,4}[/.][0-9]{1,2}(?:[/.][0-9]{1,4})?$")
_NUMBERS_RE: Final = re.compile(
    r"^(?P<first>[0-9]{1,2})(?P<sep>[/.])(?P<second>[0-9]{1,2})(?:(?P=sep)(?P<year>[0-9]{2}|[0-9]{4}))?$"
)
_YEAR_FIRST_RE: Final = re.compile(r"^([0-9]{4})[/.]([0-9]{1,2})[/.]([0-9]{1,2})$")
_QUARTER_RE: Final = re.compile(r"^q([1-4])$")
_END_OF_MONTH_RE: Final = re.compile(
    r"^end\s+of\s+(?P<month>[a-z]+)\.?(?:,?\s+(?P<year>[0-9]{4}))?$"
)
_RELATIVE_RE: Final = re.compile(r"^in\s+(?P<count>[0-9]{1,4}|an?|one)\s+(?P<unit>[a-z]+)$")
_PERIOD_RE: Final = re.compile(r"^(?:([0-9]{4})\s*-?\s*q([1-4])|q([1-4])\s*[- ]?\s*([0-9]{4}))$")

_EXAMPLES: Final = "`2026-12-15`, `dec 15`, `fri`, `next tuesday`, `in 2 weeks`, `Q1` or `eoq`"


class InvalidDate(ValueError):
    """A date or period a rep typed that dealbot cannot read; `str()` is for the rep.

    `recognized` is False when the text does not even look like a date, which lets a
    caller trying several readings of a phrase report the most telling failure.
    """

    def __init__(self, message: str, *, recognized: bool = True) -> None:
        super().__init__(message)
        self.recognized = recognized


def parse_date(text: str, *, today: date) -> date:
    """Return the date `text` means as of `today`.

    Accepts ISO dates, month names with a day (`dec 15`, `15 dec 2027`), `today`,
    `tomorrow`, weekday names (the soonest one after today), `next <weekday>` (that day of
    next ISO week), `in <n> days|weeks|months|years`, and `eow`, `eom`, `eoq`, `eoy`.
    Raises InvalidDate with a message for the rep otherwise.
    """
    shown = " ".join(text.split())
    try:
        return _parse(shown, today)
    except InvalidDate:
        raise
    except (OverflowError, ValueError):
        # Only reachable near date.max; a message beats a traceback even there.
        raise InvalidDate(f"`{shown[:40]}` is too far away.") from None


def _parse(shown: str, today: date) -> date:
    """Return the date `shown` (whitespace already collapsed) means as of `today`."""
    key = shown.lower()
    if not key:
        raise InvalidDate(f"No date given: try {_EXAMPLES}.")
    if len(key) > 40:
        raise InvalidDate(f"`{shown[:40]}…` is too long to be a date.")

    if key == "today":
        return today
    if key == "tomorrow":
        return today + timedelta(days=1)
    if key == "yesterday":
        return today - timedelta(days=1)
    if key in _WEEKDAYS:
        return _next_weekday(today, _WEEKDAYS[key])
    if key.startswith("next "):
        weekday = _WEEKDAYS.get(key.removeprefix("next ").strip())
        if weekday is None:
            raise InvalidDate(f"`{shown}` is not a date: `next` goes with a day, e.g. `next tue`.")
        monday = today - timedelta(days=today.weekday())
        return monday + timedelta(days=7 + weekday)
    if key in _PERIOD_ENDS:
        return _end_of(_PERIOD_ENDS[key], today)
    if _QUARTER_RE.match(key) or _PERIOD_RE.match(key):
        return parse_period(key, today=today)[1]
    if match := _END_OF_MONTH_RE.match(key):
        return _end_of_month(shown, match, today)
    if match := _ISO_RE.match(key) or _YEAR_FIRST_RE.match(key):
        return _checked(shown, int(match[1]), int(match[2]), int(match[3]))
    if match := _NUMBERS_RE.match(key):
        return _numeric(shown, match, today)
    if match := _RELATIVE_RE.match(key):
        return _in(shown, match["count"], match["unit"], today)
    if match := _MONTH_DAY_RE.match(key) or _DAY_MONTH_RE.match(key):
        return _month_day(shown, match, today)
    if _SLASHED_RE.match(key):
        raise InvalidDate(f"`{shown}` is not a real date: write `2026-12-15` or `dec 15`.")
    raise InvalidDate(f"`{shown}` is not a date dealbot knows: try {_EXAMPLES}.", recognized=False)


def _next_weekday(today: date, weekday: int) -> date:
    """Return the soonest `weekday` strictly after `today`."""
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _end_of(period: str, today: date) -> date:
    """Return the last day of `period` ("week" meaning its Friday) containing `today`."""
    if period == "week":
        # At the weekend this week's Friday is gone; "by end of week" then means next Friday.
        if today.weekday() >= 5:
            return _next_weekday(today, 4)
        return today + timedelta(days=4 - today.weekday())
    if period == "month":
        return date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
    if period == "quarter":
        return quarter_bounds(today)[1]
    return date(today.year, 12, 31)


def _checked(shown: str, year: int, month: int, day: int) -> date:
    """Return the date, or raise InvalidDate naming `shown` if no such day exists."""
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidDate(f"`{shown}` is not a real date.") from None


def _in(shown: str, count_text: str, unit_text: str, today: date) -> date:
    """Return `today` moved forward by a count of calendar units."""
    count = 1 if count_text in ("a", "an", "one") else int(count_text)
    unit = _UNITS.get(unit_text)
    if unit is None:
        raise InvalidDate(f"`{shown}` is not a date: use days, weeks, months or years.")
    if unit == "day":
        days = count
    elif unit == "week":
        days = 7 * count
    else:
        months = count * (12 if unit == "year" else 1)
        if months > 12 * 10:
            raise InvalidDate(f"`{shown}` is more than ten years away.")
        days = (_add_months(today, months) - today).days
    if days > _MAX_DAYS_AHEAD:
        raise InvalidDate(f"`{shown}` is more than ten years away.")
    return today + timedelta(days=days)


def _add_months(day: date, months: int) -> date:
    """Return `day` moved by whole calendar months, clamped to the target month's end."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _end_of_month(shown: str, match: re.Match[str], today: date) -> date:
    """Return the last day of a named month: of the year given, else the next one to end."""
    month = _MONTHS.get(match["month"])
    if month is None:
        raise InvalidDate(
            f"`{shown}` is not a date: `{match['month']}` is not a month.", recognized=False
        )
    year = int(match["year"]) if match["year"] else today.year
    if year < 1:
        raise InvalidDate(f"`{shown}` is not a real date.")
    last = date(year, month, calendar.monthrange(year, month)[1])
    if match["year"] is None and last < today:
        last = date(year + 1, month, calendar.monthrange(year + 1, month)[1])
    return last


def _numeric(shown: str, match: re.Match[str], today: date) -> date:
    """Return `12/15` (or `15.12.2026`) when only one of month-first and day-first is a date.

    Without a year each reading is its next occurrence; with one, a reading already past
    gives way to one still ahead. Two dates still possible make a question, not a guess.
    """
    first, second = int(match["first"]), int(match["second"])
    year_text = match["year"]
    readings: list[date] = []
    for month, day in ((first, second), (second, first)):
        if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(2000, month)[1]):
            continue
        if year_text is None:
            candidate = _next_month_day(month, day, today)
        else:
            year = int(year_text) + (2000 if len(year_text) == 2 else 0)
            try:
                candidate = date(year, month, day)
            except ValueError:
                continue
        if candidate is not None and candidate not in readings:
            readings.append(candidate)
    if len(readings) > 1:
        ahead = [day for day in readings if day >= today]
        if len(ahead) == 1:
            return ahead[0]
        month_first, day_first = readings
        raise InvalidDate(
            f"`{shown}` could be {format_day(month_first, today=today)} or "
            f"{format_day(day_first, today=today)}: write "
            f"`{_MONTH_ABBR[month_first.month - 1].lower()} {month_first.day}` or "
            f"`{_MONTH_ABBR[day_first.month - 1].lower()} {day_first.day}`."
        )
    if not readings:
        raise InvalidDate(f"`{shown}` is not a real date: write `2026-12-15` or `dec 15`.")
    return readings[0]


def _next_month_day(month: int, day: int, today: date) -> date | None:
    """Return the first `month`/`day` on or after `today`, None if there is none.

    Feb 29 may be up to eight years away (1896 -> 1904); other days at most one.
    """
    for year in range(today.year, today.year + 9):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    return None


def _month_day(shown: str, match: re.Match[str], today: date) -> date:
    """Return a month-and-day date; without a year, the next such day on or after today."""
    month = _MONTHS.get(match["month"])
    if month is None:
        raise InvalidDate(
            f"`{shown}` is not a date: `{match['month']}` is not a month.", recognized=False
        )
    day = int(match["day"])
    if match["year"]:
        return _checked(shown, int(match["year"]), month, day)
    if not 1 <= day <= 31:
        raise InvalidDate(f"`{shown}` is not a real date.")
    found = _next_month_day(month, day, today)
    if found is None:
        raise InvalidDate(f"`{shown}` is not a real date.")
    return found


def format_day(day: date, *, today: date | None = None) -> str:
    """Return `day` as `Mon 15 Dec`, with the year added when it is not `today`'s year."""
    text = f"{_DAY_ABBR[day.weekday()]} {day.day} {_MONTH_ABBR[day.month - 1]}"
    if today is not None and day.year != today.year:
        text += f" {day.year}"
    return text


def quarter_of(day: date) -> str:
    """Return the calendar quarter holding `day`, as `2026-Q4`."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_bounds(day: date) -> tuple[date, date]:
    """Return the first and last day (inclusive) of the calendar quarter holding `day`."""
    first_month = (day.month - 1) // 3 * 3 + 1
    last_month = first_month + 2
    return (
        date(day.year, first_month, 1),
        date(day.year, last_month, calendar.monthrange(day.year, last_month)[1]),
    )


def parse_period(text: str, *, today: date | None = None) -> tuple[date, date]:
    """Return the first and last day (inclusive) of a quarter written `2026-Q4` or `Q4 2026`.

    Given `today`, a bare `Q1` is the next Q1 still to end: the current quarter if it is Q1,
    else the coming one (in November, `Q1` is next year's). Raises InvalidDate otherwise.
    """
    shown = text.strip()
    bare = _QUARTER_RE.match(shown.lower())
    if bare is not None and today is not None:
        quarter = int(bare[1])
        start, end = quarter_bounds(date(today.year, quarter * 3, 1))
        if end < today:
            start, end = quarter_bounds(date(today.year + 1, quarter * 3, 1))
        return start, end
    match = _PERIOD_RE.match(shown.lower())
    if match is None:
        raise InvalidDate(f"`{shown[:40]}` is not a quarter: write it like `2026-Q4`.")
    year = int(match[1] or match[4])
    quarter = int(match[2] or match[3])
    if year < 1:
        raise InvalidDate(f"`{shown}` is not a quarter: write it like `2026-Q4`.")
    return quarter_bounds(date(year, quarter * 3, 1))
