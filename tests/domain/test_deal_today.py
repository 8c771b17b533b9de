"""DealService takes the request's today when the caller passes it, instead of asking again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.changes import DealChanges, DealRef
from domain.clock import FixedClock
from domain.deals import Actor, DealService
from domain.errors import InvalidChange
from storage.database import Database
from storage.migrate import upgrade
from tests.databases import sqlite_url

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
REP = Actor("U0ANA")
HOOLI = DealRef(name="hooli", deal_id=None)


@pytest.fixture
def deals(tmp_path: Path) -> Iterator[DealService]:
    url = sqlite_url(tmp_path)
    upgrade(url)
    database = Database.from_url(url)
    service = DealService(
        database=database, clock=FixedClock(at=NOW), default_timezone=ZoneInfo("UTC")
    )
    service.create_deal(REP, "Hooli", DealChanges())
    yield service
    database.dispose()


def test_a_due_date_is_judged_against_the_given_today_not_the_clock(
    deals: DealService,
) -> None:
    # The clock says 23 Nov; the request resolved its today as 30 Dec, so 25 Nov is too far back
    # (more than PAST_DUE_DAYS) while the clock alone would have allowed it.
    with pytest.raises(InvalidChange, match="in the past"):
        deals.add_next_step(
            REP,
            HOOLI,
            what="Call",
            due=dt.date(2026, 11, 25),
            owner_id=None,
            today=dt.date(2026, 12, 30),
        )
    added = deals.add_next_step(
        REP,
        HOOLI,
        what="Call",
        due=dt.date(2026, 10, 21),
        owner_id=None,
        today=dt.date(2026, 10, 20),
    )
    assert added.next_step is not None and added.next_step.due_date == dt.date(2026, 10, 21)


def test_a_step_due_yesterday_is_logged_overdue_not_refused(deals: DealService) -> None:
    """Issue 12: `due:yesterday` creates an overdue step; only a month back is a typo."""
    today = dt.date(2026, 11, 30)
    added = deals.add_next_step(
        REP, HOOLI, what="Call", due=dt.date(2026, 11, 29), owner_id=None, today=today
    )
    assert added.next_step is not None and added.next_step.due_date == dt.date(2026, 11, 29)
    assert "NEXT_STEP_OVERDUE" in added.attention


def test_without_a_today_the_service_reads_the_clock(deals: DealService) -> None:
    with pytest.raises(InvalidChange, match="in the past"):
        deals.add_next_step(REP, HOOLI, what="Call", due=dt.date(2026, 10, 22), owner_id=None)


def test_the_pipeline_is_as_of_the_given_today(deals: DealService) -> None:
    given = dt.date(2027, 1, 4)
    assert deals.pipeline(REP, scope="me", today=given).today == given
    assert deals.pipeline(REP, scope="me").today == NOW.date()
