"""Closed figures, forecast accuracy and the week's flow, against hand-computed fixtures.

Every expected number below is worked out by hand in the comments next to the deals that
make it; each test runs on SQLite and PostgreSQL. The team works in Paris; rates are in USD
(the base): EUR 1.10 from 1 Oct and 1.20 from 15 Nov, GBP 1.25 from 1 Oct, CHF none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from domain.forecast import ExcludedDeal, FlowLine
from domain.money import Money
from reminders.forecast_history import closed_figures, forecast_accuracy, week_flow
from storage.database import Database
from storage.fx import FxRepository
from storage.migrate import upgrade
from storage.models import Deal, DealChange, DealSnapshot
from tests.databases import BACKENDS, database_url_for

PARIS = ZoneInfo("Europe/Paris")
ANA, BEN, ZED = "U0ANA", "U0BEN", "U0ZED"  # ZED is on no team of these figures
REPS = (ANA, BEN)
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)  # Tue 1 Dec, 10:00 in Paris
TODAY = dt.date(2026, 12, 1)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def usd(amount: int | str) -> Money:
    return Money(Decimal(amount), "USD")


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with database_url_for(request.param, tmp_path) as url:
        upgrade(url)
        db = Database.from_url(url)
        try:
            with db.session() as session:
                fx = FxRepository(session)
                for currency, rate, day in (
                    ("EUR", "1.10", dt.date(2026, 10, 1)),
                    ("EUR", "1.20", dt.date(2026, 11, 15)),
                    ("GBP", "1.25", dt.date(2026, 10, 1)),
                ):
                    fx.set_rate(
                        currency=currency, rate=Decimal(rate), effective_on=day, by="U0ROOT", at=NOW
                    )
            yield db
        finally:
            db.dispose()


def deal(
    session: Session,
    account: str,
    *,
    owner: str = ANA,
    created: str,
    close: str | None,
    status: str = "open",
    amount: int | None = None,
    currency: str = "USD",
    category: str = "pipeline",
    closed_at: str | None = None,
    deleted: bool = False,
) -> Deal:
    made = Deal(
        account=account,
        account_key=account.casefold(),
        owner_id=owner,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
        stage={"won": "closed_won", "lost": "closed_lost"}.get(status, "demo"),
        stage_entered_at=at(created),
        close_date=dt.date.fromisoformat(close) if close else None,
        forecast_category=category,
        status=status,
        created_by=owner,
        created_at=at(created),
        updated_at=at(created),
        last_touch_at=at(created),
        closed_at=at(closed_at) if closed_at else None,
        deleted_at=NOW if deleted else None,
        deleted_by=ANA if deleted else None,
    )
    session.add(made)
    session.flush()
    return made


def change(session: Session, made: Deal, field: str, old: str | None, new: str, when: str) -> None:
    session.add(
        DealChange(
            deal_id=made.id,
            field=field,
            old_value=old,
            new_value=new,
            changed_by=made.owner_id,
            changed_at=at(when),
        )
    )


def closing(session: Session, made: Deal, planned: str | None, when: str) -> None:
    """Write what closing a deal writes: the planned close date moved to the closed day,
    at the same moment as the status change."""
    assert made.close_date is not None
    if planned != made.close_date.isoformat():
        change(session, made, "close_date", planned, made.close_date.isoformat(), when)
    change(session, made, "status", "open", made.status, when)


def snapshot(
    session: Session,
    made: Deal,
    week: str,
    *,
    taken: str,
    amount: int | None,
    currency: str = "USD",
    category: str,
    close: str,
) -> None:
    session.add(
        DealSnapshot(
            week=week,
            deal_id=made.id,
            owner_id=made.owner_id,
            stage="demo",
            amount=None if amount is None else Decimal(amount),
            currency=currency,
            forecast_category=category,
            close_date=dt.date.fromisoformat(close),
            taken_at=at(taken),
        )
    )


# --- closed figures -------------------------------------------------------------------------


def test_closed_figures_from_deals_and_their_history(database: Database) -> None:
    with database.session() as s:
        # 1. Pushed once this quarter: slipped.
        d1 = deal(s, "Pushed", created="2026-09-10T10:00", close="2026-12-20")
        change(s, d1, "close_date", "2026-12-05", "2026-12-20", "2026-11-10T10:00")
        # 2. Won early on 14 Nov, created 5 Oct: 40 days to close; the closing move is earlier.
        d2 = deal(
            s,
            "Won",
            created="2026-10-05T08:00",
            close="2026-11-14",
            status="won",
            closed_at="2026-11-14T15:00",
        )
        closing(s, d2, "2026-11-30", "2026-11-14T15:00")
        # 3. Lost late (planned 15 Oct, lost 20 Oct): the closing move is later, not a push.
        d3 = deal(
            s,
            "Lost",
            owner=BEN,
            created="2026-08-01T10:00",
            close="2026-10-20",
            status="lost",
            closed_at="2026-10-20T12:00",
        )
        closing(s, d3, "2026-10-15", "2026-10-20T12:00")
        # 4. Pushed twice this quarter: one slipped deal.
        d4 = deal(s, "Twice", owner=BEN, created="2026-07-01T10:00", close="2027-01-15")
        change(s, d4, "close_date", "2026-11-10", "2026-12-01", "2026-10-12T10:00")
        change(s, d4, "close_date", "2026-12-01", "2027-01-15", "2026-11-20T10:00")
        # 5. Pulled in: not slipped.
        d5 = deal(s, "Pulled", created="2026-09-01T10:00", close="2026-12-10")
        change(s, d5, "close_date", "2026-12-31", "2026-12-10", "2026-11-05T10:00")
        # 6. Created this quarter, never moved.
        deal(s, "Fresh", owner=BEN, created="2026-11-02T10:00", close="2026-12-15")
        # 7. Won 20 Nov; created 23:30 UTC on 30 Sep, already 1 Oct in Paris: 50 days (not 51).
        d7 = deal(
            s,
            "Won late night",
            owner=BEN,
            created="2026-09-30T23:30",
            close="2026-11-20",
            status="won",
            closed_at="2026-11-20T10:00",
        )
        closing(s, d7, "2026-11-20", "2026-11-20T10:00")
        # 8. Closed last quarter (and pushed then): in no figure.
        d8 = deal(
            s,
            "Last quarter",
            created="2026-05-01T10:00",
            close="2026-09-20",
            status="won",
            closed_at="2026-09-20T10:00",
        )
        change(s, d8, "close_date", "2026-07-01", "2026-09-20", "2026-08-01T10:00")
        # 9. Open all quarter, pushed only before it: counted, not slipped.
        d9 = deal(s, "Old push", created="2026-06-01T10:00", close="2026-10-30")
        change(s, d9, "close_date", "2026-09-15", "2026-10-30", "2026-09-01T10:00")
        # 10. Another team's rep, won and pushed: in no figure.
        d10 = deal(
            s,
            "Elsewhere",
            owner=ZED,
            created="2026-10-01T10:00",
            close="2026-11-02",
            status="won",
            closed_at="2026-11-02T10:00",
        )
        change(s, d10, "close_date", "2026-10-15", "2026-11-30", "2026-10-10T10:00")
        # 11. Deleted: in no figure.
        deal(
            s,
            "Deleted",
            created="2026-10-01T10:00",
            close="2026-11-02",
            status="lost",
            closed_at="2026-11-02T10:00",
            deleted=True,
        )
        # 12. Pushed by the rep on 25 Oct, then lost on 25 Nov: slipped, and a loss.
        d12 = deal(
            s,
            "Pushed then lost",
            owner=BEN,
            created="2026-09-01T10:00",
            close="2026-11-25",
            status="lost",
            closed_at="2026-11-25T10:00",
        )
        change(s, d12, "close_date", "2026-10-31", "2026-11-30", "2026-10-25T10:00")
        closing(s, d12, "2026-11-30", "2026-11-25T10:00")
        # 13. Created 1 Nov, won 25 Nov: 24 days.
        d13 = deal(
            s,
            "Quick win",
            created="2026-11-01T09:00",
            close="2026-11-25",
            status="won",
            closed_at="2026-11-25T16:00",
        )
        closing(s, d13, "2026-12-10", "2026-11-25T16:00")

    with database.session() as session:
        figures = closed_figures(session, reps=REPS, zone=PARIS, today=TODAY)

    # Closed in Q4 so far: won 2, 7, 13; lost 3, 12 -> 3 / 5.
    assert figures.win_rate == Decimal("0.6")
    # (40 + 50 + 24) / 3 = 38.
    assert figures.average_days_to_close == 38
    # Counted: 1, 2, 3, 4, 5, 6, 7, 9, 12, 13 = 10; slipped: 1, 4, 12 = 3.
    assert figures.slip_rate == Decimal("0.3")


def test_closed_figures_with_nothing_closed_are_none_not_zero(database: Database) -> None:
    with database.session() as s:
        deal(s, "Open", created="2026-11-02T10:00", close="2026-12-15")

    with database.session() as session:
        figures = closed_figures(session, reps=REPS, zone=PARIS, today=TODAY)

    assert (figures.win_rate, figures.average_days_to_close) == (None, None)
    assert figures.slip_rate == Decimal(0)


# --- forecast accuracy ----------------------------------------------------------------------


def _accuracy_fixture(database: Database) -> None:
    with database.session() as s:
        taken = "2026-10-12T07:00"  # Mon of 2026-W42, the quarter's earliest snapshot
        # A1: commit $100,000 closing 30 Nov; won 20 Nov at $110,000 -> called 100,000,
        # won 110,000.
        a1 = deal(
            s,
            "A1",
            created="2026-09-01T10:00",
            close="2026-11-20",
            status="won",
            amount=110000,
            category="commit",
            closed_at="2026-11-20T10:00",
        )
        snapshot(
            s, a1, "2026-W42", taken=taken, amount=100000, category="commit", close="2026-11-30"
        )
        # A2: commit €50,000 closing 15 Dec, still open -> called 50,000 × 1.20 = 60,000.
        a2 = deal(
            s,
            "A2",
            owner=BEN,
            created="2026-09-01T10:00",
            close="2026-12-15",
            amount=50000,
            currency="EUR",
            category="commit",
        )
        snapshot(
            s,
            a2,
            "2026-W42",
            taken=taken,
            amount=50000,
            currency="EUR",
            category="commit",
            close="2026-12-15",
        )
        # A3: commit £20,000 closing 20 Oct, won 18 Oct -> 25,000 called, 25,000 won.
        a3 = deal(
            s,
            "A3",
            created="2026-09-01T10:00",
            close="2026-10-18",
            status="won",
            amount=20000,
            currency="GBP",
            category="commit",
            closed_at="2026-10-18T10:00",
        )
        snapshot(
            s,
            a3,
            "2026-W42",
            taken=taken,
            amount=20000,
            currency="GBP",
            category="commit",
            close="2026-10-20",
        )
        # A4: commit CHF 30,000, won: no CHF rate -> excluded from both sides.
        a4 = deal(
            s,
            "A4",
            owner=BEN,
            created="2026-09-01T10:00",
            close="2026-11-10",
            status="won",
            amount=30000,
            currency="CHF",
            category="commit",
            closed_at="2026-11-10T10:00",
        )
        snapshot(
            s,
            a4,
            "2026-W42",
            taken=taken,
            amount=30000,
            currency="CHF",
            category="commit",
            close="2026-11-10",
        )
        # A5: best case when called, won since: not part of the commit.
        a5 = deal(
            s,
            "A5",
            created="2026-09-01T10:00",
            close="2026-11-01",
            status="won",
            amount=40000,
            category="commit",
            closed_at="2026-11-01T10:00",
        )
        snapshot(
            s, a5, "2026-W42", taken=taken, amount=40000, category="best_case", close="2026-11-01"
        )
        # A6: commit closing next quarter: not called for this one.
        a6 = deal(
            s,
            "A6",
            created="2026-09-01T10:00",
            close="2027-01-20",
            amount=70000,
            category="commit",
        )
        snapshot(
            s, a6, "2026-W42", taken=taken, amount=70000, category="commit", close="2027-01-20"
        )
        # A7: commit €10,000 closing 25 Oct, won 24 Oct -> 11,000 called (1.10), 11,000 won.
        a7 = deal(
            s,
            "A7",
            created="2026-09-01T10:00",
            close="2026-10-24",
            status="won",
            amount=10000,
            currency="EUR",
            category="commit",
            closed_at="2026-10-24T10:00",
        )
        snapshot(
            s,
            a7,
            "2026-W42",
            taken=taken,
            amount=10000,
            currency="EUR",
            category="commit",
            close="2026-10-25",
        )
        # A8: commit $5,000 closing 5 Nov, lost -> 5,000 called, nothing won.
        a8 = deal(
            s,
            "A8",
            created="2026-09-01T10:00",
            close="2026-11-05",
            status="lost",
            amount=5000,
            category="commit",
            closed_at="2026-11-05T10:00",
        )
        snapshot(s, a8, "2026-W42", taken=taken, amount=5000, category="commit", close="2026-11-05")
        # A later week's snapshot and one from last quarter are not the call.
        a9 = deal(
            s,
            "A9",
            created="2026-10-20T10:00",
            close="2026-12-20",
            status="won",
            amount=999999,
            category="commit",
            closed_at="2026-11-28T10:00",
        )
        snapshot(
            s,
            a9,
            "2026-W45",
            taken="2026-11-02T07:00",
            amount=999999,
            category="commit",
            close="2026-12-20",
        )
        snapshot(
            s,
            a1,
            "2026-W39",
            taken="2026-09-21T07:00",
            amount=1,
            category="commit",
            close="2026-10-15",
        )


def test_commit_closed_so_far_mid_quarter(database: Database) -> None:
    _accuracy_fixture(database)
    with database.session() as session:
        rates = FxRepository(session).rate_book("USD")
        accuracy = forecast_accuracy(
            session, reps=REPS, zone=PARIS, today=TODAY, currency="USD", rates=rates
        )

    assert (accuracy.quarter, accuracy.final) == ("2026-Q4", False)
    # 100,000 + 60,000 + 25,000 + 11,000 + 5,000 = 201,000 called.
    assert accuracy.commit_called == usd("201000.00")
    # 110,000 + 25,000 + 11,000 = 146,000 won.
    assert accuracy.won_of_commit == usd("146000.00")
    # 146,000 / 201,000 = 0.72636... -> 0.7264
    assert accuracy.ratio == Decimal("0.7264")
    assert accuracy.excluded == (
        ExcludedDeal(
            deal_id=accuracy.excluded[0].deal_id,
            name="A4",
            amount=Money(Decimal("30000.00"), "CHF"),
            reason="no CHF rate (dealbot fx set CHF …)",
        ),
    )


def test_forecast_accuracy_is_final_the_week_after_the_quarter_ends(database: Database) -> None:
    _accuracy_fixture(database)
    with database.session() as session:
        rates = FxRepository(session).rate_book("USD")
        accuracy = forecast_accuracy(
            session,
            reps=REPS,
            zone=PARIS,
            today=dt.date(2027, 1, 4),
            currency="USD",
            rates=rates,
        )

    assert (accuracy.quarter, accuracy.final) == ("2026-Q4", True)
    assert (accuracy.commit_called, accuracy.won_of_commit) == (usd(201000), usd(146000))


def test_forecast_accuracy_in_euros_converts_through_the_base(database: Database) -> None:
    _accuracy_fixture(database)
    with database.session() as session:
        rates = FxRepository(session).rate_book("USD")
        accuracy = forecast_accuracy(
            session, reps=REPS, zone=PARIS, today=TODAY, currency="EUR", rates=rates
        )

    # Called: A1 100,000 / 1.20 (30 Nov) = 83,333.33; A2 €50,000; A3 £20,000 × 1.25 / 1.10
    # (20 Oct) = 22,727.27; A7 €10,000; A8 5,000 / 1.10 (5 Nov) = 4,545.45
    # -> 83,333.33 + 50,000 + 22,727.27 + 10,000 + 4,545.45 = 170,606.05
    assert accuracy.commit_called == Money(Decimal("170606.05"), "EUR")
    # Won: A1 110,000 / 1.20 (20 Nov) = 91,666.67; A3 £20,000 (18 Oct) = 22,727.27;
    # A7 €10,000 -> 124,393.94
    assert accuracy.won_of_commit == Money(Decimal("124393.94"), "EUR")


def test_no_snapshot_this_quarter_calls_no_commit(database: Database) -> None:
    with database.session() as session:
        rates = FxRepository(session).rate_book("USD")
        accuracy = forecast_accuracy(
            session, reps=REPS, zone=PARIS, today=TODAY, currency="USD", rates=rates
        )

    assert (accuracy.commit_called, accuracy.ratio, accuracy.final) == (None, None, False)


# --- the week's flow ------------------------------------------------------------------------


def _line(lines: tuple[FlowLine, ...], kind: str) -> tuple[int, Money, list[tuple[str, str]]]:
    line = next(line for line in lines if line.kind == kind)
    return line.count, line.money, [(d.name, d.note) for d in line.deals]


def test_the_weeks_flow_against_last_weeks_snapshot(database: Database) -> None:
    week, taken = "2026-W48", "2026-11-23T07:00"  # Mon 23 Nov, 08:00 in Paris
    with database.session() as s:
        # F1: best case $50,000 closing 10 Dec -> commit, closing 24 Dec: pushed 14 days, moved.
        f1 = deal(
            s, "F1", created="2026-09-01T10:00", close="2026-12-24", amount=50000, category="commit"
        )
        snapshot(s, f1, week, taken=taken, amount=50000, category="best_case", close="2026-12-10")
        # F2: $30,000 from 20 Dec to 15 Jan: pushed 26 days, out of the quarter.
        f2 = deal(s, "F2", owner=BEN, created="2026-09-01T10:00", close="2027-01-15", amount=30000)
        snapshot(s, f2, week, taken=taken, amount=30000, category="pipeline", close="2026-12-20")
        # F3: €20,000 from 31 Dec to 18 Dec: pulled in 13 days; 20,000 × 1.20 = 24,000.
        f3 = deal(
            s,
            "F3",
            created="2026-09-01T10:00",
            close="2026-12-18",
            amount=20000,
            currency="EUR",
            category="commit",
        )
        snapshot(
            s,
            f3,
            week,
            taken=taken,
            amount=20000,
            currency="EUR",
            category="commit",
            close="2026-12-31",
        )
        # F4: $40,000 -> $45,000: up 5,000.
        f4 = deal(
            s, "F4", created="2026-09-01T10:00", close="2026-12-15", amount=45000, category="commit"
        )
        snapshot(s, f4, week, taken=taken, amount=40000, category="commit", close="2026-12-15")
        # F5: £10,000 -> £8,000: 12,500 -> 10,000, down 2,500.
        f5 = deal(
            s, "F5", created="2026-09-01T10:00", close="2026-12-12", amount=8000, currency="GBP"
        )
        snapshot(
            s,
            f5,
            week,
            taken=taken,
            amount=10000,
            currency="GBP",
            category="pipeline",
            close="2026-12-12",
        )
        # F6: $25,000 won on 27 Nov.
        f6 = deal(
            s,
            "F6",
            created="2026-09-01T10:00",
            close="2026-11-27",
            status="won",
            amount=25000,
            category="commit",
            closed_at="2026-11-27T15:00",
        )
        snapshot(s, f6, week, taken=taken, amount=25000, category="commit", close="2026-12-05")
        # F7: €15,000 lost on 26 Nov: 15,000 × 1.20 = 18,000.
        f7 = deal(
            s,
            "F7",
            owner=BEN,
            created="2026-09-01T10:00",
            close="2026-11-26",
            status="lost",
            amount=15000,
            currency="EUR",
            category="best_case",
            closed_at="2026-11-26T10:00",
        )
        snapshot(
            s,
            f7,
            week,
            taken=taken,
            amount=15000,
            currency="EUR",
            category="best_case",
            close="2026-11-26",
        )
        # F8: CHF 12,000 pushed 7 days: counted and named, no money (no CHF rate).
        f8 = deal(
            s, "F8", created="2026-09-01T10:00", close="2026-12-08", amount=12000, currency="CHF"
        )
        snapshot(
            s,
            f8,
            week,
            taken=taken,
            amount=12000,
            currency="CHF",
            category="pipeline",
            close="2026-12-01",
        )
        # F9: unchanged: on no line.
        f9 = deal(
            s, "F9", created="2026-09-01T10:00", close="2026-12-20", amount=60000, category="commit"
        )
        snapshot(s, f9, week, taken=taken, amount=60000, category="commit", close="2026-12-20")
        # F10: $35,000 created after the snapshot.
        deal(s, "F10", owner=BEN, created="2026-11-24T10:00", close="2027-02-01", amount=35000)
        # F11: €5,000 created and won on 30 Nov: 5,000 × 1.20 = 6,000, created and won.
        deal(
            s,
            "F11",
            created="2026-11-30T08:00",
            close="2026-11-30",
            status="won",
            amount=5000,
            currency="EUR",
            closed_at="2026-11-30T16:00",
        )
        # Won before the snapshot, and another team's deal: on no line.
        deal(
            s,
            "F12",
            created="2026-09-01T10:00",
            close="2026-11-10",
            status="won",
            amount=1000,
            closed_at="2026-11-10T10:00",
        )
        f13 = deal(s, "F13", owner=ZED, created="2026-09-01T10:00", close="2027-03-01", amount=1000)
        snapshot(s, f13, week, taken=taken, amount=1000, category="pipeline", close="2026-12-01")

    with database.session() as session:
        rates = FxRepository(session).rate_book("USD")
        flow = week_flow(session, reps=REPS, zone=PARIS, now=NOW, currency="USD", rates=rates)

    assert (flow.since_week, flow.week) == ("2026-W48", "2026-W49")
    assert [line.kind for line in flow.lines] == [
        "created",
        "pulled_in",
        "pushed_out",
        "amount_up",
        "amount_down",
        "moved",
        "won",
        "lost",
    ]
    assert _line(flow.lines, "created") == (2, usd("41000.00"), [("F10", ""), ("F11", "")])
    assert _line(flow.lines, "pulled_in") == (1, usd("24000.00"), [("F3", "pulled in 13 days")])
    assert _line(flow.lines, "pushed_out") == (
        3,
        usd("80000.00"),
        [
            ("F1", "pushed out 14 days"),
            ("F2", "pushed out 26 days, out of 2026-Q4"),
            ("F8", "pushed out 7 days"),
        ],
    )
    assert _line(flow.lines, "amount_up") == (1, usd("5000.00"), [("F4", "+$5,000")])
    assert _line(flow.lines, "amount_down") == (1, usd("2500.00"), [("F5", "−$2,500")])
    assert _line(flow.lines, "moved") == (1, usd("50000.00"), [("F1", "best case → commit")])
    assert _line(flow.lines, "won") == (2, usd("31000.00"), [("F6", ""), ("F11", "")])
    assert _line(flow.lines, "lost") == (1, usd("18000.00"), [("F7", "")])
    assert [(e.name, e.reason) for e in flow.excluded] == [
        ("F8", "no CHF rate (dealbot fx set CHF …)")
    ]
    f8_named = next(line for line in flow.lines if line.kind == "pushed_out").deals[2]
    assert (f8_named.amount, f8_named.converted) == (Money(Decimal("12000.00"), "CHF"), None)


def test_the_weeks_flow_without_a_snapshot_reads_the_last_seven_days_of_history(
    database: Database,
) -> None:
    with database.session() as s:
        # The window starts 7 days before now: Tue 24 Nov, 09:00 UTC.
        f1 = deal(
            s, "F1", created="2026-09-01T10:00", close="2026-12-24", amount=50000, category="commit"
        )
        change(s, f1, "close_date", "2026-12-10", "2026-12-24", "2026-11-25T10:00")
        change(s, f1, "forecast_category", "best_case", "commit", "2026-11-25T10:00")
        # Pushed before the window: not this week's flow.
        f2 = deal(s, "F2", created="2026-09-01T10:00", close="2027-01-15", amount=30000)
        change(s, f2, "close_date", "2026-12-20", "2027-01-15", "2026-11-20T10:00")
        # Up from $40,000 to $42,000 then $45,000: up 5,000 over the week.
        f4 = deal(s, "F4", created="2026-09-01T10:00", close="2026-12-15", amount=45000)
        change(s, f4, "amount", "40000.00 USD", "42000.00 USD", "2026-11-26T10:00")
        change(s, f4, "amount", "42000.00 USD", "45000.00 USD", "2026-11-27T10:00")
        # Won on 27 Nov, two days before its planned 5 Dec... the closing move is no pull-in.
        f6 = deal(
            s,
            "F6",
            created="2026-09-01T10:00",
            close="2026-11-27",
            status="won",
            amount=25000,
            category="commit",
            closed_at="2026-11-27T15:00",
        )
        closing(s, f6, "2026-12-05", "2026-11-27T15:00")
        deal(s, "F10", owner=BEN, created="2026-11-24T10:00", close="2027-02-01", amount=35000)

    with database.session() as session:
        rates = FxRepository(session).rate_book("USD")
        flow = week_flow(session, reps=REPS, zone=PARIS, now=NOW, currency="USD", rates=rates)

    assert (flow.since_week, flow.week) == (None, "2026-W49")
    assert _line(flow.lines, "created") == (1, usd("35000.00"), [("F10", "")])
    assert _line(flow.lines, "pushed_out") == (1, usd("50000.00"), [("F1", "pushed out 14 days")])
    assert _line(flow.lines, "pulled_in") == (0, usd(0), [])
    assert _line(flow.lines, "amount_up") == (1, usd("5000.00"), [("F4", "+$5,000")])
    assert _line(flow.lines, "moved") == (1, usd("50000.00"), [("F1", "best case → commit")])
    assert _line(flow.lines, "won") == (1, usd("25000.00"), [("F6", "")])
    assert _line(flow.lines, "lost") == (0, usd(0), [])
    assert flow.excluded == ()


def test_the_weeks_flow_compares_in_the_database_what_python_would(database: Database) -> None:
    """The deals unchanged since the snapshot are never read: these are the edges the
    database's comparison must judge as the flow does (a currency alone changed, a NULL on
    one side, a deal handed over from outside the team, a deal deleted since)."""
    week, taken = "2026-W48", "2026-11-23T07:00"
    with database.session() as s:
        # G1: $10,000 re-entered as €10,000 closing 15 Dec: 10,000 × 1.20 = 12,000, up 2,000.
        g1 = deal(s, "G1", created="2026-09-01T10:00", close="2026-12-15", amount=10000)
        g1.currency = "EUR"
        snapshot(s, g1, week, taken=taken, amount=10000, category="pipeline", close="2026-12-15")
        # G2: no amount at the snapshot, $5,000 now; no close date then, 20 Dec now: no line.
        g2 = deal(s, "G2", created="2026-09-01T10:00", close="2026-12-20", amount=5000)
        s.add(
            DealSnapshot(
                week=week,
                deal_id=g2.id,
                owner_id=ANA,
                stage="demo",
                amount=None,
                currency="USD",
                forecast_category="pipeline",
                close_date=None,
                taken_at=at(taken),
            )
        )
        # G3: ZED's best case at the snapshot, handed to Ana as commit since: it was not the
        # team's then, so it is not "moved" (nor created: it is older than the snapshot).
        g3 = deal(
            s, "G3", created="2026-09-01T10:00", close="2026-12-10", amount=7000, category="commit"
        )
        s.add(
            DealSnapshot(
                week=week,
                deal_id=g3.id,
                owner_id=ZED,
                stage="demo",
                amount=Decimal(7000),
                currency="USD",
                forecast_category="best_case",
                close_date=dt.date(2026, 12, 1),
                taken_at=at(taken),
            )
        )
        # G4: pushed 10 days, then deleted (logged by mistake): on no line.
        g4 = deal(s, "G4", created="2026-09-01T10:00", close="2026-12-20", deleted=True)
        snapshot(s, g4, week, taken=taken, amount=None, category="pipeline", close="2026-12-10")
        # G5: amount and category unchanged, closing 2 days earlier: pulled in.
        g5 = deal(
            s, "G5", created="2026-09-01T10:00", close="2026-12-08", amount=900, category="commit"
        )
        snapshot(s, g5, week, taken=taken, amount=900, category="commit", close="2026-12-10")

    with database.session() as session:
        rates = FxRepository(session).rate_book("USD")
        flow = week_flow(session, reps=REPS, zone=PARIS, now=NOW, currency="USD", rates=rates)

    assert flow.since_week == "2026-W48"
    assert _line(flow.lines, "amount_up") == (1, usd("2000.00"), [("G1", "+$2,000")])
    assert _line(flow.lines, "pulled_in") == (1, usd("900.00"), [("G5", "pulled in 2 days")])
    for kind in ("created", "pushed_out", "amount_down", "moved", "won", "lost"):
        assert _line(flow.lines, kind) == (0, usd(0), []), kind
    assert flow.excluded == ()
