from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.dates import (
    InvalidDate,
    format_day,
    parse_date,
    parse_period,
    quarter_bounds,
    quarter_of,
)

WEDNESDAY = date(2026, 3, 11)
SATURDAY = date(2026, 3, 14)
SUNDAY = date(2026, 3, 15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-15", date(2026, 12, 15)),
        ("2026-3-5", date(2026, 3, 5)),
        ("2025-01-01", date(2025, 1, 1)),
        ("dec 15", date(2026, 12, 15)),
        ("Dec 15", date(2026, 12, 15)),
        ("DECEMBER 15", date(2026, 12, 15)),
        ("15 dec", date(2026, 12, 15)),
        ("15th December", date(2026, 12, 15)),
        ("dec. 15", date(2026, 12, 15)),
        ("dec 15 2027", date(2027, 12, 15)),
        ("Dec 15, 2027", date(2027, 12, 15)),
        ("15 dec 2027", date(2027, 12, 15)),
        ("sept 3", date(2026, 9, 3)),
        ("mar 11", date(2026, 3, 11)),
        ("mar 10", date(2027, 3, 10)),
        ("today", date(2026, 3, 11)),
        ("Tomorrow", date(2026, 3, 12)),
        ("wed", date(2026, 3, 18)),
        ("thurs", date(2026, 3, 12)),
        ("thu", date(2026, 3, 12)),
        ("fri", date(2026, 3, 13)),
        ("Friday", date(2026, 3, 13)),
        ("tues", date(2026, 3, 17)),
        ("mon", date(2026, 3, 16)),
        ("next tuesday", date(2026, 3, 17)),
        ("next wed", date(2026, 3, 18)),
        ("next  fri", date(2026, 3, 20)),
        ("next monday", date(2026, 3, 16)),
        ("in 3 days", date(2026, 3, 14)),
        ("in 1 day", date(2026, 3, 12)),
        ("in 2 weeks", date(2026, 3, 25)),
        ("in a week", date(2026, 3, 18)),
        ("in 1 month", date(2026, 4, 11)),
        ("in an month", date(2026, 4, 11)),
        ("in 1 year", date(2027, 3, 11)),
        ("eow", date(2026, 3, 13)),
        ("EOM", date(2026, 3, 31)),
        ("eoq", date(2026, 3, 31)),
        ("eoy", date(2026, 12, 31)),
        ("end of quarter", date(2026, 3, 31)),
    ],
)
def test_parse_date_on_a_wednesday(text: str, expected: date) -> None:
    assert parse_date(text, today=WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        # A weekday name never means today.
        ("sat", SATURDAY, date(2026, 3, 21)),
        # At the weekend this week's Friday has passed; end of week is the coming one.
        ("eow", SATURDAY, date(2026, 3, 20)),
        ("eow", SUNDAY, date(2026, 3, 20)),
        ("eow", date(2026, 3, 13), date(2026, 3, 13)),
        ("eow", date(2026, 3, 9), date(2026, 3, 13)),
        # "next" is about the ISO week, so on Sunday next Tuesday is two days away.
        ("next tuesday", SUNDAY, date(2026, 3, 17)),
        ("next sunday", SUNDAY, date(2026, 3, 22)),
        ("next monday", SUNDAY, date(2026, 3, 16)),
        ("eoq", date(2026, 12, 31), date(2026, 12, 31)),
        ("eoy", date(2026, 12, 31), date(2026, 12, 31)),
        ("tomorrow", date(2026, 12, 31), date(2027, 1, 1)),
        ("eoq", date(2026, 4, 1), date(2026, 6, 30)),
        ("eoq", date(2026, 9, 30), date(2026, 9, 30)),
        ("eom", date(2028, 2, 3), date(2028, 2, 29)),
        ("eom", date(2026, 2, 3), date(2026, 2, 28)),
        ("jan 5", date(2026, 12, 31), date(2027, 1, 5)),
        # Month arithmetic clamps to the end of the shorter month.
        ("in 1 month", date(2026, 1, 31), date(2026, 2, 28)),
        ("in 1 month", date(2028, 1, 31), date(2028, 2, 29)),
        ("in 3 months", date(2026, 11, 30), date(2027, 2, 28)),
        ("in 1 year", date(2028, 2, 29), date(2029, 2, 28)),
        # Without a year Feb 29 is the next one that exists.
        ("feb 29", date(2026, 3, 1), date(2028, 2, 29)),
        ("feb 29", date(2028, 2, 29), date(2028, 2, 29)),
        ("2028-02-29", date(2026, 3, 1), date(2028, 2, 29)),
    ],
)
def test_parse_date_boundaries(text: str, today: date, expected: date) -> None:
    assert parse_date(text, today=today) == expected


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", "No date"),
        ("3/4", "could be Thu 4 Mar 2027 or Fri 3 Apr: write `mar 4` or `apr 3`"),
        ("4/3/2027", "could be Sat 3 Apr 2027 or Thu 4 Mar 2027"),
        ("31/2", "`31/2` is not a real date"),
        ("13/13/2026", "`13/13/2026` is not a real date"),
        ("end of smarch", "`smarch` is not a month"),
        ("2026-02-30", "`2026-02-30` is not a real date"),
        ("2027-02-29", "`2027-02-29`"),
        ("2026-13-01", "`2026-13-01`"),
        ("feb 30 2026", "`feb 30 2026` is not a real date"),
        ("dec 32", "`dec 32`"),
        ("foo 3", "`foo` is not a month"),
        ("next week", "`next` goes with a day"),
        ("in 2 fortnights", "days, weeks, months or years"),
        ("in 9999 days", "ten years"),
        ("in 200 years", "ten years"),
        ("yesterday-ish", "`yesterday-ish`"),
        ("x" * 80, "too long"),
    ],
)
def test_parse_date_rejects_with_a_helpful_message(text: str, names: str) -> None:
    with pytest.raises(InvalidDate) as caught:
        parse_date(text, today=WEDNESDAY)
    assert names in str(caught.value)


def test_parse_date_near_the_end_of_time_is_an_invalid_date_not_a_crash() -> None:
    with pytest.raises(InvalidDate):
        parse_date("tomorrow", today=date.max)


@pytest.mark.parametrize(
    ("day", "today", "shown"),
    [
        (date(2025, 12, 15), None, "Mon 15 Dec"),
        (date(2025, 12, 15), date(2025, 1, 1), "Mon 15 Dec"),
        (date(2027, 12, 15), date(2026, 3, 11), "Wed 15 Dec 2027"),
        (date(2026, 3, 1), date(2026, 3, 11), "Sun 1 Mar"),
    ],
)
def test_format_day(day: date, today: date | None, shown: str) -> None:
    assert format_day(day, today=today) == shown


@pytest.mark.parametrize(
    ("day", "quarter", "bounds"),
    [
        (date(2026, 1, 1), "2026-Q1", (date(2026, 1, 1), date(2026, 3, 31))),
        (date(2026, 5, 20), "2026-Q2", (date(2026, 4, 1), date(2026, 6, 30))),
        (date(2026, 9, 30), "2026-Q3", (date(2026, 7, 1), date(2026, 9, 30))),
        (date(2026, 12, 31), "2026-Q4", (date(2026, 10, 1), date(2026, 12, 31))),
    ],
)
def test_quarters(day: date, quarter: str, bounds: tuple[date, date]) -> None:
    assert quarter_of(day) == quarter
    assert quarter_bounds(day) == bounds
    assert parse_period(quarter) == bounds


@pytest.mark.parametrize("text", ["2026-q4", "Q4 2026", "q4-2026", " 2026Q4 "])
def test_parse_period_spellings(text: str) -> None:
    assert parse_period(text) == (date(2026, 10, 1), date(2026, 12, 31))


@pytest.mark.parametrize("text", ["2026", "2026-Q5", "Q0 2026", "0000-Q1", "", "last quarter"])
def test_parse_period_rejects(text: str) -> None:
    with pytest.raises(InvalidDate, match="2026-Q4"):
        parse_period(text)


days = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31))


@given(day=days, today=days)
def test_iso_dates_round_trip(day: date, today: date) -> None:
    assert parse_date(day.isoformat(), today=today) == day


@given(today=days, weekday=st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]))
def test_a_weekday_name_is_within_the_coming_week(today: date, weekday: str) -> None:
    day = parse_date(weekday, today=today)
    assert today < day <= today + timedelta(days=7)
    assert format_day(day).startswith(weekday.capitalize())


@given(today=days)
def test_eow_is_a_friday_no_earlier_than_today(today: date) -> None:
    day = parse_date("eow", today=today)
    assert day.weekday() == 4
    assert today <= day < today + timedelta(days=7)


@given(day=days)
def test_quarter_of_parses_back_to_bounds_holding_the_day(day: date) -> None:
    start, end = parse_period(quarter_of(day))
    assert start <= day <= end


@given(st.text(max_size=40), days)
def test_parse_date_raises_only_invalid_date(text: str, today: date) -> None:
    try:
        parse_date(text, today=today)
    except InvalidDate as error:
        assert str(error)


# --- dates people type (issue 12): yesterday, quarters, end of <month>, 12/15 ----------------


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("yesterday", WEDNESDAY, date(2026, 3, 10)),
        ("Yesterday", date(2026, 1, 1), date(2025, 12, 31)),
        # A bare quarter is its last day, this year's while it has not ended, else next year's.
        ("Q1", WEDNESDAY, date(2026, 3, 31)),
        ("q1", date(2026, 3, 31), date(2026, 3, 31)),
        ("q1", date(2026, 4, 1), date(2027, 3, 31)),
        ("Q4", WEDNESDAY, date(2026, 12, 31)),
        ("Q1 2028", WEDNESDAY, date(2028, 3, 31)),
        ("2027-q2", WEDNESDAY, date(2027, 6, 30)),
        ("end of january", WEDNESDAY, date(2027, 1, 31)),
        ("end of march", WEDNESDAY, date(2026, 3, 31)),
        ("End of Feb", date(2027, 11, 2), date(2028, 2, 29)),
        ("end of feb 2027", WEDNESDAY, date(2027, 2, 28)),
        # Only one reading is a date: month first here, day first there.
        ("12/15", WEDNESDAY, date(2026, 12, 15)),
        ("15/12", WEDNESDAY, date(2026, 12, 15)),
        ("12.15", WEDNESDAY, date(2026, 12, 15)),
        ("15/12/2026", WEDNESDAY, date(2026, 12, 15)),
        ("12/15/27", WEDNESDAY, date(2027, 12, 15)),
        ("2026/12/15", WEDNESDAY, date(2026, 12, 15)),
        # Both readings name the same day.
        ("5/5", WEDNESDAY, date(2026, 5, 5)),
        # Both are dates, but 4 Mar 2026 has passed: only 3 Apr is still ahead.
        ("3/4/2026", WEDNESDAY, date(2026, 4, 3)),
        ("next friday", WEDNESDAY, date(2026, 3, 20)),
    ],
)
def test_dates_people_type(text: str, today: date, expected: date) -> None:
    assert parse_date(text, today=today) == expected


@pytest.mark.parametrize(
    ("text", "today", "bounds"),
    [
        ("Q1", WEDNESDAY, (date(2026, 1, 1), date(2026, 3, 31))),
        ("q1", date(2026, 11, 3), (date(2027, 1, 1), date(2027, 3, 31))),
        ("Q3", WEDNESDAY, (date(2026, 7, 1), date(2026, 9, 30))),
        ("2026-Q4", date(2030, 1, 1), (date(2026, 10, 1), date(2026, 12, 31))),
    ],
)
def test_a_bare_quarter_is_the_next_one_to_end(
    text: str, today: date, bounds: tuple[date, date]
) -> None:
    assert parse_period(text, today=today) == bounds


def test_a_bare_quarter_without_today_asks_for_the_year() -> None:
    with pytest.raises(InvalidDate, match="2026-Q4"):
        parse_period("Q1")


@given(today=days, quarter=st.integers(min_value=1, max_value=4))
def test_a_bare_quarter_ends_within_a_year_and_is_that_quarter(today: date, quarter: int) -> None:
    end = parse_date(f"q{quarter}", today=today)
    assert today <= end < today + timedelta(days=366)
    assert quarter_of(end) == f"{end.year}-Q{quarter}"
    assert quarter_bounds(end)[1] == end


@given(today=days, month=st.integers(min_value=1, max_value=12))
def test_end_of_a_month_is_its_last_day_within_a_year(today: date, month: int) -> None:
    name = format_day(date(2000, month, 1)).split()[-1]
    end = parse_date(f"end of {name}", today=today)
    assert end.month == month and (end + timedelta(days=1)).day == 1
    assert today <= end < today + timedelta(days=366)


@given(today=days, day=days)
def test_a_numeric_date_is_one_of_its_two_readings_or_a_question(today: date, day: date) -> None:
    text = f"{day.month}/{day.day}"
    try:
        read = parse_date(text, today=today)
    except InvalidDate as question:
        # Asked only when the day-first reading is a real date too, and a different one.
        assert day.month != day.day and day.day <= 12 and "could be" in str(question)
    else:
        assert read >= today
        assert (read.month, read.day) in ((day.month, day.day), (day.day, day.month))


@given(today=days)
def test_yesterday_is_the_day_before(today: date) -> None:
    assert parse_date("yesterday", today=today) == today - timedelta(days=1)
