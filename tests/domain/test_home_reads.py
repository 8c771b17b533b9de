"""The App Home's reads: whose overdue steps it lists, and the score it shows.

The home reads its open deals once for both the list and the score, and finds overdue steps
with one index search per way a step is the rep's; these hold it to what it showed before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from domain.checks import default_checks, score_reps
from domain.clock import FixedClock
from domain.dates import quarter_bounds
from domain.deals import DealService
from storage.database import Database
from storage.deals import name_key
from storage.facts import ReminderRepository
from storage.migrate import upgrade
from storage.models import Deal, NextStep

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
ANA, BEN = "U0ANA", "U0BEN"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'home.db'}"
    upgrade(url)
    database = Database.from_url(url)
    try:
        yield database
    finally:
        database.dispose()


def _deal(deal_id: int, owner: str, *, status: str = "open", **values: Any) -> dict[str, Any]:
    account = f"Account {deal_id}"
    closed = status != "open"
    row: dict[str, Any] = {
        "id": deal_id,
        "account": account,
        "account_key": name_key(account),
        "owner_id": owner,
        "amount": Decimal(10_000 * deal_id),
        "currency": "USD",
        "stage": ("closed_won" if status == "won" else "closed_lost") if closed else "discovery",
        "stage_entered_at": NOW - dt.timedelta(days=20),
        "close_date": TODAY + dt.timedelta(days=30),
        "forecast_category": "pipeline",
        "status": status,
        "created_by": owner,
        "created_at": NOW - dt.timedelta(days=60),
        "updated_at": NOW - dt.timedelta(days=2),
        "last_touch_at": NOW - dt.timedelta(days=2),
        "closed_at": NOW - dt.timedelta(days=5) if closed else None,
    }
    row.update(values)
    return row


def _step(step_id: int, deal_id: int, owner: str | None, due_in_days: int, **values: Any) -> dict:
    row: dict[str, Any] = {
        "id": step_id,
        "deal_id": deal_id,
        "what": f"Step {step_id}",
        "owner_id": owner,
        "due_date": TODAY + dt.timedelta(days=due_in_days),
        "done": False,
        "created_by": ANA,
        "created_at": NOW - dt.timedelta(days=30),
    }
    row.update(values)
    return row


def _seed(database: Database) -> None:
    with database.session() as session:
        session.execute(
            insert(Deal),
            [
                _deal(1, ANA),
                _deal(2, BEN),
                _deal(3, ANA, status="lost"),  # closed this quarter, no reason given
                _deal(4, ANA, status="won", closed_at=NOW - dt.timedelta(days=120)),
                _deal(5, BEN),
            ],
        )
        session.execute(
            insert(NextStep),
            [
                _step(10, 1, None, -3),  # unowned, on Ana's deal: hers
                _step(11, 1, BEN, -4),  # Ben's, on Ana's deal: his
                _step(12, 2, ANA, -1),  # Ana's, on Ben's deal: hers
                _step(13, 2, None, -2),  # unowned, on Ben's deal: his
                _step(14, 1, None, 0),  # due today: not overdue
                _step(15, 1, ANA, -6, done=True, done_at=NOW),  # done
                _step(16, 3, ANA, -7),  # on a closed deal
                _step(17, 5, ANA, -1),  # Ana's again, same day as 12: by id
            ],
        )


def test_overdue_steps_are_the_reps_own_and_the_unowned_ones_of_their_deals(
    database: Database,
) -> None:
    _seed(database)
    deals = DealService(
        database=database, clock=FixedClock(at=NOW), default_timezone=ZoneInfo("UTC")
    )

    ana = deals.home(ANA)
    ben = deals.home(BEN)

    assert [(step.id, account) for step, account in ana.overdue_steps] == [
        (10, "Account 1"),
        (12, "Account 2"),
        (17, "Account 5"),
    ]
    assert [step.id for step, _ in ben.overdue_steps] == [11, 13]
    assert {deal.id for deal in ana.open_deals} == {1}
    assert {deal.id for deal in ben.open_deals} == {2, 5}


def test_the_homes_score_counts_the_deals_closed_this_quarter_as_the_weekly_post_does(
    database: Database,
) -> None:
    _seed(database)
    deals = DealService(
        database=database, clock=FixedClock(at=NOW), default_timezone=ZoneInfo("UTC")
    )
    quarter = quarter_bounds(TODAY)
    with database.session() as session:
        facts = ReminderRepository(session).deal_facts(
            quarter=quarter,
            closed_since=dt.datetime.combine(quarter[0], dt.time(), tzinfo=dt.UTC),
            owner_ids=[ANA],
        )
    expected = score_reps(facts, lambda _owner: (TODAY, dt.UTC), default_checks())[ANA]

    score = deals.home(ANA).accuracy_score

    # The lost deal without a reason counts (and fails); last quarter's win does not.
    assert sorted(fact.deal_id for fact in facts) == [1, 3]
    assert expected.checked > expected.passed
    assert score == expected.score
