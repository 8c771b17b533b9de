"""The chart's weekly trend from the snapshots, on SQLite and PostgreSQL, against a hand count.

Team Enterprise reports in USD from New York; it is Wednesday 2 Dec 2026 (ISO week 49) in
the quarter 1 Oct – 31 Dec. EUR is worth 1.10 USD from 1 Oct and 1.20 from 1 Dec; GBP has
no rate at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reminders.chart import ChartWeek
from reminders.trend import weekly_trend
from storage.database import Database
from storage.fx import FxRepository
from storage.migrate import upgrade
from storage.models import Deal, DealSnapshot
from tests.databases import BACKENDS, database_url_for

NEW_YORK = ZoneInfo("America/New_York")
QUARTER = (dt.date(2026, 10, 1), dt.date(2026, 12, 31))
NOW = dt.datetime(2026, 12, 2, 10, 0, tzinfo=NEW_YORK)
REPS = ("U0ANA", "U0BEN")


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with database_url_for(request.param, tmp_path) as url:
        upgrade(url)
        db = Database.from_url(url)
        try:
            yield db
        finally:
            db.dispose()


def deal(
    account: str,
    owner: str,
    amount: int | None,
    currency: str = "USD",
    *,
    status: str = "open",
    closed_at: dt.datetime | None = None,
    deleted: bool = False,
) -> Deal:
    return Deal(
        account=account,
        account_key=account.lower(),
        owner_id=owner,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
        stage={"won": "closed_won", "lost": "closed_lost"}.get(status, "proposal"),
        status=status,
        created_by=owner,
        closed_at=closed_at,
        deleted_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC) if deleted else None,
    )


def snapshot(week: str, of: Deal, category: str, close_date: dt.date) -> DealSnapshot:
    return DealSnapshot(
        week=week,
        deal_id=of.id,
        owner_id=of.owner_id,
        stage=of.stage,
        amount=of.amount,
        currency=of.currency,
        forecast_category=category,
        close_date=close_date,
        taken_at=dt.datetime(2026, 11, 16, 14, tzinfo=dt.UTC),
    )


def seed(database: Database) -> None:
    with database.session() as session:
        rates = FxRepository(session)
        for rate, day in (("1.10", dt.date(2026, 10, 1)), ("1.20", dt.date(2026, 12, 1))):
            rates.set_rate(
                currency="EUR", rate=Decimal(rate), effective_on=day, by="U0MARIA", at=NOW
            )
        globex = deal("Globex", "U0ANA", 100_000)
        hooli = deal("Hooli", "U0BEN", 50_000, "EUR")
        acme = deal("Acme", "U0BEN", 30_000)
        next_year = deal("NextYear", "U0ANA", 20_000)
        pounds = deal("Pounds", "U0ANA", 10_000, "GBP")
        carls = deal("Carls", "U0CARL", 999)
        removed = deal("Removed", "U0ANA", 5_000, deleted=True)
        no_amount = deal("NoAmount", "U0BEN", None)
        won = [
            # Wed 18 Nov: week 47.
            deal("Wayne", "U0ANA", 40_000, status="won", closed_at=_utc(2026, 11, 18, 15)),
            # Sunday 29 Nov 22:00 in New York, already Monday in UTC: week 48 for the team.
            deal("Initech", "U0ANA", 5_000, status="won", closed_at=_utc(2026, 11, 30, 3)),
            # Mon 30 Nov 23:30 in New York (1 Dec in UTC): at 30 Nov's rate, 1.10.
            deal("Soylent", "U0BEN", 20_000, "EUR", status="won", closed_at=_utc(2026, 12, 1, 4)),
            # No GBP rate: left out and counted.
            deal("Tyrell", "U0BEN", 7_000, "GBP", status="won", closed_at=_utc(2026, 11, 20, 15)),
            # Last quarter's, a lost one and another team's: none of them count.
            deal("Q3Win", "U0ANA", 9_000, status="won", closed_at=_utc(2026, 9, 30, 15)),
            deal("Lost", "U0ANA", 3_000, status="lost", closed_at=_utc(2026, 11, 19, 15)),
            deal("CarlsWin", "U0CARL", 8_000, status="won", closed_at=_utc(2026, 11, 19, 15)),
            deal("RemovedWin", "U0BEN", 6_000, status="won", closed_at=_utc(2026, 11, 19, 15)),
        ]
        won[-1].deleted_at = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
        session.add_all([globex, hooli, acme, next_year, pounds, carls, removed, no_amount, *won])
        session.flush()
        dec = dt.date(2026, 12, 15)
        session.add_all(
            [
                # Week 39 is last quarter's: not a point.
                snapshot("2026-W39", globex, "commit", dec),
                snapshot("2026-W47", globex, "commit", dec),
                snapshot("2026-W47", hooli, "commit", dt.date(2026, 11, 30)),  # EUR at 1.10
                snapshot("2026-W47", acme, "best_case", dt.date(2026, 12, 10)),
                snapshot("2026-W47", next_year, "commit", dt.date(2027, 1, 15)),
                snapshot("2026-W47", pounds, "commit", dt.date(2026, 12, 20)),  # no rate
                snapshot("2026-W47", carls, "commit", dec),
                snapshot("2026-W47", no_amount, "commit", dec),
                snapshot("2026-W48", globex, "commit", dec),
                snapshot("2026-W48", hooli, "commit", dt.date(2026, 12, 5)),  # EUR at 1.20
                snapshot("2026-W48", removed, "commit", dec),
                # Week 49 has snapshots but no commit: a point at zero.
                snapshot("2026-W49", acme, "pipeline", dt.date(2026, 12, 10)),
                # Week 50 is still to come on 2 Dec (a clock set back): not a point.
                snapshot("2026-W50", globex, "commit", dec),
            ]
        )


def _utc(year: int, month: int, day: int, hour: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def test_weekly_trend_converts_commit_and_won_and_counts_what_has_no_rate(
    database: Database,
) -> None:
    seed(database)
    with database.session() as session:
        trend = weekly_trend(
            session,
            reps=REPS,
            zone=NEW_YORK,
            quarter=QUARTER,
            currency="USD",
            rates=FxRepository(session).rate_book("USD"),
            now=NOW,
        )
    assert trend == [
        # Commit 100,000 + 50,000 EUR × 1.10; won Wayne 40,000; Pounds and Tyrell left out.
        ChartWeek("2026-W47", commit=Decimal("155000.00"), won=Decimal("40000"), excluded=2),
        # Commit 100,000 + 50,000 EUR × 1.20; won + Initech 5,000 (Sunday night in New York).
        ChartWeek("2026-W48", commit=Decimal("160000.00"), won=Decimal("45000"), excluded=1),
        # No commit; won + Soylent 20,000 EUR × 1.10 (30 Nov in New York) = 22,000.
        ChartWeek("2026-W49", commit=Decimal(0), won=Decimal("67000.00"), excluded=1),
    ]


def test_weekly_trend_in_another_currency_converts_through_the_base(database: Database) -> None:
    seed(database)
    with database.session() as session:
        trend = weekly_trend(
            session,
            reps=["U0BEN"],
            zone=NEW_YORK,
            quarter=QUARTER,
            currency="EUR",
            rates=FxRepository(session).rate_book("USD"),
            now=NOW,
        )
    # Ben's EUR deals stay as they are; nothing of his is in USD but Acme (not commit).
    assert [(w.week, w.commit, w.won, w.excluded) for w in trend] == [
        ("2026-W47", Decimal(50_000), Decimal(0), 1),
        ("2026-W48", Decimal(50_000), Decimal(0), 1),
        ("2026-W49", Decimal(0), Decimal(20_000), 1),
    ]


def test_no_snapshots_gives_an_empty_trend(database: Database) -> None:
    seed(database)
    with database.session() as session:
        rates = FxRepository(session).rate_book("USD")
        assert (
            weekly_trend(
                session,
                reps=["U0NOBODY"],
                zone=NEW_YORK,
                quarter=QUARTER,
                currency="USD",
                rates=rates,
                now=NOW,
            )
            == []
        )
        assert (
            weekly_trend(
                session,
                reps=[],
                zone=NEW_YORK,
                quarter=QUARTER,
                currency="USD",
                rates=rates,
                now=NOW,
            )
            == []
        )


def test_commit_in_the_reporting_currency_adds_up_to_the_cent(database: Database) -> None:
    """The database sums the commit already in the reporting currency: exactly, even where
    amounts are stored as floats (ten dimes are a dollar, not 0.9999…)."""
    with database.session() as session:
        deals = [deal(f"Dime{n}", "U0ANA", None) for n in range(10)]
        big = deal("Big", "U0BEN", None)
        for made in deals:
            made.amount = Decimal("0.10")
        big.amount = Decimal("1234567.89")
        session.add_all([*deals, big])
        session.flush()
        session.add_all(
            [snapshot("2026-W47", made, "commit", dt.date(2026, 12, 15)) for made in deals]
            + [snapshot("2026-W47", big, "commit", dt.date(2026, 12, 15))]
        )
    with database.session() as session:
        trend = weekly_trend(
            session,
            reps=REPS,
            zone=NEW_YORK,
            quarter=QUARTER,
            currency="USD",
            rates=FxRepository(session).rate_book("USD"),
            now=NOW,
        )
    assert [(week.week, str(week.commit), week.excluded) for week in trend] == [
        ("2026-W47", "1234568.89", 0)
    ]
