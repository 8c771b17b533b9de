"""The deals attainment adds up: won, live, by these owners, closed within [start, end)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from storage.database import Database
from storage.models import Deal
from storage.teams import TeamRepository

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
END = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def _deal(account: str, *, owner: str = "U0ANA", status: str = "won", **fields: object) -> Deal:
    values: dict[str, object] = {
        "account": account,
        "account_key": account.lower(),
        "owner_id": owner,
        "amount": Decimal(1000),
        "currency": "USD",
        "stage": {"won": "closed_won", "lost": "closed_lost"}.get(status, "demo"),
        "status": status,
        "created_by": owner,
        "closed_at": dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
    }
    values.update(fields)
    return Deal(**values)


def test_won_between_keeps_won_live_deals_of_the_owners_closed_in_the_half_open_period(
    database: Database,
) -> None:
    with database.session() as session:
        session.add_all(
            [
                _deal("AtStart", closed_at=START),
                _deal("Inside"),
                _deal("AtEnd", closed_at=END),  # the next quarter's
                _deal("JustBefore", closed_at=START - dt.timedelta(microseconds=1)),
                _deal("Lost", status="lost"),
                _deal("Open", status="open", closed_at=None),
                _deal("Deleted", deleted_at=dt.datetime(2026, 11, 3, tzinfo=dt.UTC)),
                _deal("Bens", owner="U0BEN"),
                _deal("Carls", owner="U0CARL"),
                _deal("NoAmount", amount=None, currency="EUR"),
            ]
        )
    with database.session() as session:
        won = TeamRepository(session).won_between(["U0ANA", "U0BEN"], start=START, end=END)
        assert [(d.account, d.owner_id) for d in won] == [
            ("AtStart", "U0ANA"),
            ("Inside", "U0ANA"),
            ("Bens", "U0BEN"),
            ("NoAmount", "U0ANA"),
        ]
        assert won[1].amount == Decimal(1000) and won[3].amount is None
        assert TeamRepository(session).won_between([], start=START, end=END) == []
