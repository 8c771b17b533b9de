"""The batched import writes what the row-by-row import writes, a transaction per batch."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from domain.clock import FixedClock
from domain.importing import (
    DealImporter,
    ImportReport,
    OwnerDirectory,
    _new_deal_row,
    read_owner_map,
)
from storage.database import Database
from storage.deals import DealImportRepository
from storage.migrate import upgrade
from storage.models import Deal, DealChange, NextStep
from tests.databases import BACKENDS, database_url_for

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=3)
OWNERS = OwnerDirectory(mapping=read_owner_map(["ana@example.com,U0ANA", "Ben Ode,U0BEN"]))
HEADER = (
    "Opportunity ID,Opportunity Name,Account Name,Amount,Opportunity Currency,Stage,"
    "Close Date,Forecast Category,Opportunity Owner,Owner Email,Next Step,Loss Reason\n"
)
ROWS = (
    "006A1,Expansion,Initech,50000,USD,Qualification,2026-12-15,Pipeline,Ana,ana@example.com,"
    "Send pricing,\n",
    "006A2,Renewal,Globex,12000,EUR,Closed Won,2026-10-01,Closed,Ben Ode,,,\n",
    "006A3,Pilot,Hooli,0,USD,Negotiation/Review,2026-12-20,Commit,Ana,ana@example.com,,\n",
    "006A4,Platform,Umbrella,30000,USD,Closed Lost,2026-09-30,Omitted,Ben Ode,,,Price\n",
    "006A5,Seats,Stark,75000,GBP,Prospecting,,,Ben Ode,,Call back,\n",
    "006A6,Upsell,Wayne,,USD,Value Proposition,2027-01-31,Best Case,Ana,ana@example.com,,\n",
    "006A7,Old,Wayne,5000,USD,Closed Lost,2026-06-01,,Ben Ode,,,\n",
    ",No id,Acme,1000,USD,Prospecting,2026-12-15,,Ana,ana@example.com,Ring them,\n",
)
# The same export a week on: amounts, stages and dates moved, one deal won, one new.
CHANGED = (
    ROWS[0].replace("50000,USD,Qualification", "65000,USD,Negotiation/Review"),
    ROWS[1],
    ROWS[2].replace("Negotiation/Review,2026-12-20", "Closed Won,2026-12-20"),
    *ROWS[3:7],
    ROWS[7].replace("2026-12-15", "2027-02-01"),
    "006A9,Newer,Cyberdyne,8000,USD,Prospecting,2027-03-01,,Ana,ana@example.com,,\n",
)


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """Yield two fresh databases on one backend: one for each path."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        database_url_for(request.param, tmp_path / "a") as first,
        database_url_for(request.param, tmp_path / "b") as second,
    ):
        upgrade(first)
        upgrade(second)
        databases = Database.from_url(first), Database.from_url(second)
        try:
            yield databases
        finally:
            for database in databases:
                database.dispose()


def importer(database: Database, at: dt.datetime = NOW) -> DealImporter:
    return DealImporter(
        database=database, clock=FixedClock(at=at), default_timezone=ZoneInfo("UTC")
    )


def import_rows(
    database: Database, rows: tuple[str, ...], *, batched: bool, at: dt.datetime = NOW
) -> ImportReport:
    deals = importer(database, at)
    checked = deals.check(io.BytesIO((HEADER + "".join(rows)).encode()), owners=OWNERS)
    if batched:
        # Batches of 3 rows: several transactions, and a last batch that is not full.
        return deals.write(checked, batch_rows=3)
    return deals.write_row_by_row(checked)


def snapshot(database: Database) -> dict[str, Any]:
    """Return every deal with its history and next steps, ids aside but order kept."""
    with database.session() as session:
        deals = session.scalars(select(Deal).order_by(Deal.id)).all()
        return {
            deal.external_ref or deal.account: (
                {
                    column: getattr(deal, column)
                    for column in Deal.__table__.columns.keys()  # noqa: SIM118
                    # The row-by-row path sets the record id in a second UPDATE, whose
                    # `onupdate` stamps the wall clock, not the import's clock.
                    if column not in ("id", "updated_at")
                },
                [
                    (c.field, c.old_value, c.new_value, c.changed_by, c.changed_at)
                    for c in session.scalars(
                        select(DealChange)
                        .where(DealChange.deal_id == deal.id)
                        .order_by(DealChange.id)
                    )
                ],
                [
                    (s.what, s.owner_id, s.due_date, s.done, s.done_at, s.created_by, s.created_at)
                    for s in session.scalars(
                        select(NextStep).where(NextStep.deal_id == deal.id).order_by(NextStep.id)
                    )
                ],
            )
            for deal in deals
        }


def outcomes(report: ImportReport) -> list[tuple[int, str, str | None]]:
    return [(r.line, r.outcome, r.reason) for r in report.results]


def test_batches_write_what_row_by_row_writes_then_a_changed_export_the_same_way(
    pair: tuple[Database, Database],
) -> None:
    row_by_row, batched = pair
    first = import_rows(row_by_row, ROWS, batched=False)
    first_batched = import_rows(batched, ROWS, batched=True)
    assert first_batched.summary_line() == "imported 8, updated 0, unchanged 0"
    assert outcomes(first_batched) == outcomes(first)
    assert snapshot(batched) == snapshot(row_by_row)

    again = import_rows(row_by_row, CHANGED, batched=False, at=LATER)
    again_batched = import_rows(batched, CHANGED, batched=True, at=LATER)
    assert again_batched.summary_line() == "imported 1, updated 3, unchanged 5"
    assert outcomes(again_batched) == outcomes(again)
    assert snapshot(batched) == snapshot(row_by_row)


def test_every_bad_row_of_a_big_file_is_listed_and_nothing_is_written(
    pair: tuple[Database, Database],
) -> None:
    database = pair[0]
    import_rows(database, ROWS[3:4], batched=True)  # Umbrella, already lost in dealbot
    before = snapshot(database)
    reopened = ROWS[3].replace("Closed Lost,2026-09-30,Omitted", "Prospecting,2026-09-30,")
    bad_amount = ROWS[4].replace("75000", "lots")
    report = import_rows(database, (*ROWS[:3], reopened, bad_amount, *ROWS[5:]), batched=True)

    assert [(r.line, r.outcome) for r in report.refused] == [(5, "refused"), (6, "refused")]
    assert "already lost in dealbot" in (report.refused[0].reason or "")
    assert report.summary_line().startswith("nothing written: 2 of 8 rows refused")
    assert snapshot(database) == before


def test_a_dry_run_of_a_big_file_says_what_would_happen_and_writes_nothing(
    pair: tuple[Database, Database],
) -> None:
    database = pair[0]
    deals = importer(database)
    checked = deals.check(io.BytesIO((HEADER + "".join(ROWS)).encode()), owners=OWNERS)
    done: list[int] = []
    report = deals.write(checked, dry_run=True, batch_rows=3, progress=done.append)

    assert report.summary_line() == ("dry run, nothing written: imported 8, updated 0, unchanged 0")
    assert sum(done) == len(ROWS)
    assert snapshot(database) == {}


def test_a_row_found_by_name_that_an_earlier_row_creates_is_updated_as_row_by_row_would(
    pair: tuple[Database, Database],
) -> None:
    # Line 2 creates Acme — No id by its record id; line 5 has no record id and names the
    # same deal: it must see line 2's deal, which only writing row by row can show it.
    rows = (
        ROWS[7].replace(",No id,", "006B1,No id,"),
        *ROWS[1:4],
        ROWS[7].replace("2026-12-15", "2027-01-15"),
    )
    row_by_row, batched = pair
    expected = import_rows(row_by_row, rows, batched=False)
    report = import_rows(batched, rows, batched=True)

    assert report.summary_line() == "imported 4, updated 1, unchanged 0"
    assert outcomes(report) == outcomes(expected)
    assert snapshot(batched) == snapshot(row_by_row)


def test_a_batch_failing_at_writing_keeps_the_batches_before_it_and_says_so(
    pair: tuple[Database, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    database = pair[0]
    batches: list[int] = []
    insert_deals = DealImportRepository.insert_deals

    def second_batch_collides(self: DealImportRepository, rows: Any) -> list[int]:
        # What a deal imported meanwhile by someone else would do to the unique record id.
        batches.append(len(rows))
        if len(batches) == 2:
            raise IntegrityError("INSERT INTO deals", {}, Exception("unique external_ref"))
        return insert_deals(self, rows)

    monkeypatch.setattr(DealImportRepository, "insert_deals", second_batch_collides)

    report = import_rows(database, ROWS, batched=True)

    assert batches == [3, 3]  # the third batch was never tried
    assert sorted(snapshot(database)) == [
        "salesforce:006A1",
        "salesforce:006A2",
        "salesforce:006A3",
    ]
    assert report.partial
    assert [(r.line, r.outcome) for r in report.refused] == [(5, "refused")]
    assert "written meanwhile" in (report.refused[0].reason or "")
    assert report.summary_line().startswith("stopped: 3 rows written, the rest not")
    # Importing the file again writes the rest and leaves the first batch as it is.
    monkeypatch.undo()
    again = import_rows(database, ROWS, batched=True)
    assert again.summary_line() == "imported 5, updated 0, unchanged 3"


def test_a_duplicate_record_id_written_in_bulk_is_an_integrity_error_on_every_backend(
    pair: tuple[Database, Database],
) -> None:
    database = pair[0]
    checked = importer(database).check(
        io.BytesIO((HEADER + ROWS[0] + ROWS[1]).encode()), owners=OWNERS
    )
    rows = [
        {**row, "external_ref": "salesforce:006A1"}
        for row in (
            _new_deal_row(source, "prospecting", "USD", NOW, NOW.date()) for source in checked.deals
        )
    ]

    # PostgreSQL's path is COPY, through the driver: its error must still be SQLAlchemy's.
    with pytest.raises(IntegrityError), database.session() as session:
        DealImportRepository(session).insert_deals(rows)
    assert snapshot(database) == {}


def test_a_closed_row_without_a_close_date_closed_on_the_import_day_on_both_paths(
    pair: tuple[Database, Database],
) -> None:
    # The export's close date of a closed deal is the day it closed; without one, the import's.
    rows = (
        "006B1,Renewal,Soylent,9000,USD,Closed Won,,Closed,Ben Ode,,,\n",
        ROWS[1],  # won with a close date: it keeps it, no history of a move
    )
    row_by_row, batched = pair

    import_rows(row_by_row, rows, batched=False)
    import_rows(batched, rows, batched=True)

    assert snapshot(batched) == snapshot(row_by_row)
    with batched.session() as session:
        days = {d.account: d.close_date for d in session.scalars(select(Deal))}
        moves = [
            (c.old_value, c.new_value, c.changed_at)
            for c in session.scalars(select(DealChange).where(DealChange.field == "close_date"))
        ]
    assert days == {"Soylent": NOW.date(), "Globex": dt.date(2026, 10, 1)}
    assert (None, NOW.date().isoformat(), NOW) in moves
