"""0012: closed deals' close dates become the day they closed, the planned date kept in history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, text

from storage.database import Database, create_db_engine
from storage.migrate import upgrade
from storage.models import Deal, DealChange

CLOSED_AT = "2026-12-01 10:00:00+00:00"
LATE_AT = "2026-11-30 23:30:00+00:00"  # already 1 Dec in Paris: the UTC date counts here
CREATED_AT = "2026-10-01 09:00:00+00:00"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def _deal(
    connection: object,
    deal_id: int,
    status: str,
    close_date: str | None,
    closed_at: str | None,
) -> None:
    connection.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO deals (id, account, account_key, owner_id, currency, stage, "
            "stage_entered_at, close_date, forecast_category, status, created_by, created_at, "
            "updated_at, last_touch_at, closed_at) VALUES (:id, :name, :name, 'U0ANA', 'USD', "
            ":stage, :created, :close_date, 'commit', :status, 'U0ANA', :created, :created, "
            ":created, :closed_at)"
        ),
        {
            "id": deal_id,
            "name": f"deal {deal_id}",
            "stage": {"won": "closed_won", "lost": "closed_lost"}.get(status, "demo"),
            "created": CREATED_AT,
            "close_date": close_date,
            "status": status,
            "closed_at": closed_at,
        },
    )


def _status_change(connection: object, deal_id: int, new: str, at: str, by: str) -> None:
    connection.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO deal_changes (deal_id, field, old_value, new_value, changed_by, "
            "changed_at, source) VALUES (:id, 'status', 'open', :new, :by, :at, NULL)"
        ),
        {"id": deal_id, "new": new, "by": by, "at": at},
    )


def test_closed_deals_get_the_day_they_closed_and_keep_the_planned_date_in_history(
    database_url: str, engine: Engine
) -> None:
    upgrade(database_url, "0011")
    with engine.begin() as connection:
        _deal(connection, 1, "won", "2026-12-22", CLOSED_AT)  # planned later than it closed
        _status_change(connection, 1, "won", CLOSED_AT, "U0BEN")
        _deal(connection, 2, "lost", "2026-12-01", CLOSED_AT)  # already the closed day
        _status_change(connection, 2, "lost", CLOSED_AT, "U0ANA")
        _deal(connection, 3, "open", "2026-12-15", None)
        _deal(connection, 4, "won", "2026-11-15", LATE_AT)  # no status row: closed_at's moment
        _deal(connection, 5, "lost", None, CLOSED_AT)  # no close date at all
        _status_change(connection, 5, "lost", CLOSED_AT, "U0ANA")

    upgrade(database_url)

    database = Database.from_url(database_url)
    try:
        with database.session() as session:
            days = {
                row.id: row.close_date for row in session.execute(select(Deal.id, Deal.close_date))
            }
            assert days == {
                1: dt.date(2026, 12, 1),
                2: dt.date(2026, 12, 1),
                3: dt.date(2026, 12, 15),
                4: dt.date(2026, 11, 30),
                5: dt.date(2026, 12, 1),
            }
            rows = session.scalars(
                select(DealChange)
                .where(DealChange.field == "close_date")
                .order_by(DealChange.deal_id)
            ).all()
            closed = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
            late = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)
            assert [
                (r.deal_id, r.old_value, r.new_value, r.changed_by, r.changed_at) for r in rows
            ] == [
                (1, "2026-12-22", "2026-12-01", "U0BEN", closed),
                (4, "2026-11-15", "2026-11-30", "U0ANA", late),
                (5, None, "2026-12-01", "U0ANA", closed),
            ]
            # Same moment as the status change, to the microsecond: the convention's link.
            status_at = session.scalar(
                select(DealChange.changed_at).where(
                    DealChange.deal_id == 1, DealChange.field == "status"
                )
            )
            assert status_at == rows[0].changed_at
    finally:
        database.dispose()
