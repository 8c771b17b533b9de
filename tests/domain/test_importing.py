"""Importing Salesforce and HubSpot exports: fields, idempotence, history, refused rows."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from domain.clock import FixedClock
from domain.deals import DealService
from domain.errors import InvalidChange
from domain.importing import (
    DealImporter,
    ImportReport,
    OwnerDirectory,
    UnknownFlavour,
    read_owner_map,
)
from storage.database import Database
from storage.migrate import upgrade
from storage.models import Deal, DealChange, NextStep
from tests.databases import BACKENDS, database_url_for

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=3)
OWNERS = OwnerDirectory(mapping=read_owner_map(["ana@example.com,U0ANA", "Ben Ode,U0BEN"]))

SALESFORCE = """\
Opportunity ID,Opportunity Name,Account Name,Amount,Opportunity Currency,Stage,Close Date,\
Forecast Category,Opportunity Owner,Owner Email,Next Step
006A1,Expansion,Initech,"50,000.00",USD,Qualification,2026-12-15,Pipeline,Ana Lopez,\
ana@example.com,Send pricing
006A2,Renewal,Globex,12000,EUR,Closed Won,2026-10-01,Closed,Ben Ode,ben@example.com,
006A3,Pilot,Hooli,0,USD,Negotiation/Review,2026-12-20,Commit,Ana Lopez,ana@example.com,
006A4,Platform,Umbrella,30000,USD,Closed Lost,2026-09-30,Omitted,Ben Ode,,
"""

HUBSPOT = """\
Record ID,Deal Name,Associated Company,Amount,Deal Stage,Close Date,Deal owner,Forecast category
9001,Seats,Stark Industries,75000,presentationscheduled,2027-01-31 00:00,Ben Ode,Best case
9002,Upsell,Wayne Enterprises,9000,contractsent,2026-12-01,Ben Ode,Not forecasted
9003,Old,Wayne Enterprises,5000,closedlost,2026-06-01,Ben Ode,
"""


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with database_url_for(request.param, tmp_path) as url:
        upgrade(url)
        db = Database.from_url(url)
        try:
            yield db
        finally:
            db.dispose()


def importer(database: Database, at: dt.datetime = NOW) -> DealImporter:
    return DealImporter(
        database=database, clock=FixedClock(at=at), default_timezone=ZoneInfo("UTC")
    )


def run(
    database: Database, export: str, *, at: dt.datetime = NOW, **options: object
) -> ImportReport:
    options.setdefault("owners", OWNERS)
    raw = io.BytesIO(export.encode())
    return importer(database, at).import_csv(raw, **options)  # type: ignore[arg-type]


def deals_by_title(database: Database) -> dict[str | None, Deal]:
    with database.session() as session:
        return {deal.title: deal for deal in session.scalars(select(Deal))}


def count(database: Database, model: type) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def history(database: Database, deal_id: int) -> list[tuple[str, str | None, str | None, str]]:
    with database.session() as session:
        rows = session.scalars(
            select(DealChange).where(DealChange.deal_id == deal_id).order_by(DealChange.id)
        )
        return [(c.field, c.old_value, c.new_value, c.changed_by) for c in rows]


def test_salesforce_export_creates_open_and_closed_deals_with_their_fields(
    database: Database,
) -> None:
    report = run(database, SALESFORCE)

    assert report.flavour.key == "salesforce"
    assert report.summary_line() == "imported 4, updated 0, unchanged 0"
    deals = deals_by_title(database)
    initech = deals["Expansion"]
    assert (initech.account, initech.owner_id, initech.stage, initech.status) == (
        "Initech",
        "U0ANA",
        "discovery",
        "open",
    )
    assert (initech.amount, initech.currency) == (Decimal("50000.00"), "USD")
    assert (initech.close_date, initech.forecast_category) == (dt.date(2026, 12, 15), "pipeline")
    assert initech.external_ref == "salesforce:006A1"
    assert (deals["Renewal"].status, deals["Renewal"].stage) == ("won", "closed_won")
    assert (deals["Renewal"].amount, deals["Renewal"].currency) == (Decimal("12000.00"), "EUR")
    assert deals["Platform"].status == "lost"
    assert deals["Platform"].close_reason == "Closed lost in Salesforce"
    # A zero amount in an export is no amount entered.
    assert (deals["Pilot"].amount, deals["Pilot"].stage) == (None, "negotiation")
    assert deals["Pilot"].forecast_category == "commit"
    with database.session() as session:
        steps = [(s.deal_id, s.what) for s in session.scalars(select(NextStep))]
    assert steps == [(initech.id, "Send pricing")]
    # Closing goes through close_deal, so the history shows the deal being won.
    assert ("status", "open", "won", "U0BEN") in history(database, deals["Renewal"].id)


def test_hubspot_export_maps_internal_stage_names_and_record_ids(database: Database) -> None:
    report = run(database, HUBSPOT)

    assert report.flavour.key == "hubspot"
    assert report.summary_line() == "imported 3, updated 0, unchanged 0"
    deals = deals_by_title(database)
    assert (deals["Seats"].stage, deals["Seats"].close_date) == ("demo", dt.date(2027, 1, 31))
    assert deals["Seats"].forecast_category == "best_case"
    assert (deals["Upsell"].stage, deals["Upsell"].forecast_category) == ("negotiation", "omitted")
    assert deals["Old"].status == "lost"
    assert deals["Seats"].external_ref == "hubspot:9001"


def test_reimporting_the_same_export_changes_nothing(database: Database) -> None:
    run(database, SALESFORCE)
    changes_before = count(database, DealChange)

    report = run(database, SALESFORCE, at=LATER)

    assert report.summary_line() == "imported 0, updated 0, unchanged 4"
    assert count(database, Deal) == 4
    assert count(database, DealChange) == changes_before
    assert count(database, NextStep) == 1


def test_a_changed_row_is_updated_through_the_history(database: Database) -> None:
    run(database, SALESFORCE)
    changed = SALESFORCE.replace(
        '"50,000.00",USD,Qualification,2026-12-15',
        '"65,000.00",USD,Proposal/Price Quote,2027-01-15',
    ).replace("Pilot,Hooli,0,USD,Negotiation/Review", "Pilot,Hooli,0,USD,Closed Won")

    report = run(database, changed, at=LATER)

    assert report.summary_line() == "imported 0, updated 2, unchanged 2"
    deals = deals_by_title(database)
    initech = deals["Expansion"]
    assert (initech.stage, initech.amount) == ("proposal", Decimal("65000.00"))
    assert history(database, initech.id)[-3:] == [
        ("stage", "discovery", "proposal", "U0ANA"),
        ("amount", "50000.00 USD", "65000.00 USD", "U0ANA"),
        ("close_date", "2026-12-15", "2027-01-15", "U0ANA"),
    ]
    assert deals["Pilot"].status == "won"


def test_rows_without_a_record_id_match_on_account_and_title(database: Database) -> None:
    export = "\n".join(line.split(",", 1)[1] for line in SALESFORCE.splitlines()) + "\n"
    run(database, export)

    again = run(database, export.replace("Qualification", "Needs Analysis"), at=LATER)
    moved = run(database, export.replace("Qualification", "Value Proposition"), at=LATER)

    assert again.summary_line() == "imported 0, updated 0, unchanged 4"
    assert moved.summary_line() == "imported 0, updated 1, unchanged 3"
    assert count(database, Deal) == 4
    assert deals_by_title(database)["Expansion"].external_ref is None


def test_every_bad_row_is_reported_by_line_and_nothing_is_written(database: Database) -> None:
    export = (
        SALESFORCE.splitlines()[0]
        + "\n"
        + '006B1,"Two-line\nname",Acme,abc,USD,Qualification,2026-12-15,,Ana Lopez,'
        + "ana@example.com,\n"
        + "006B2,Gadgets,Acme,1000,USD,Perusal,2026-12-15,,Ana Lopez,ana@example.com,\n"
        + "006B3,Widgets,Acme,1000,USD,Prospecting,12/15/2026,,Zed,zed@example.com,\n"
        + "006B4,Good,Acme,1000,USD,Prospecting,2026-12-15,,Ana Lopez,ana@example.com,\n"
        + "006B4,Good again,Acme,1000,USD,Prospecting,2026-12-15,,Ana Lopez,ana@example.com,\n"
    )

    report = run(database, export)

    refused = {result.line: result.reason or "" for result in report.refused}
    assert sorted(refused) == [2, 4, 5, 7]
    assert "is not an amount" in refused[2]
    assert "“Perusal” is not one dealbot knows" in refused[4]
    assert "month or day first" in refused[5] and "“Zed / zed@example.com”" in refused[5]
    assert refused[7] == "the same deal as line 6"
    assert report.summary_line() == (
        "nothing written: 4 of 5 rows refused (see above); fix them and import the whole file again"
    )
    assert count(database, Deal) == 0


def test_a_row_failing_halfway_leaves_nothing_of_the_file_behind(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise InvalidChange("the database said no")

    # Created, then closing fails: the file is one transaction, so every creation goes too.
    monkeypatch.setattr(DealService, "close_deal", refuse)

    report = run(database, SALESFORCE)

    assert [(r.line, r.reason) for r in report.refused] == [(3, "the database said no")]
    assert count(database, Deal) == 0
    assert count(database, DealChange) == 0


def test_a_closed_deal_row_that_disagrees_is_refused_with_the_rest_of_the_file(
    database: Database,
) -> None:
    run(database, SALESFORCE)
    reopened = SALESFORCE.replace(
        "Closed Won,2026-10-01,Closed", "Qualification,2026-10-01,"
    ).replace('"50,000.00",USD,Qualification', '"65,000.00",USD,Qualification')

    report = run(database, reopened, at=LATER)

    assert [(r.line, r.reason) for r in report.refused] == [
        (
            3,
            f"deal #{deals_by_title(database)['Renewal'].id} is already won in dealbot; "
            "closed deals keep their record",
        )
    ]
    assert deals_by_title(database)["Expansion"].amount == Decimal("50000.00")


def test_dry_run_reports_what_would_happen_and_writes_nothing(database: Database) -> None:
    dry = run(database, SALESFORCE, dry_run=True)
    assert dry.summary_line() == "dry run, nothing written: imported 4, updated 0, unchanged 0"
    assert count(database, Deal) == 0

    run(database, SALESFORCE)
    changes_before = count(database, DealChange)
    dry = run(database, SALESFORCE.replace("Qualification", "Proposal/Price Quote"), dry_run=True)

    assert dry.count("updated") == 1
    assert deals_by_title(database)["Expansion"].stage == "discovery"
    assert count(database, DealChange) == changes_before


def test_open_only_leaves_closed_rows_out(database: Database) -> None:
    report = run(database, SALESFORCE, open_only=True)

    assert report.summary_line() == ("imported 2, updated 0, unchanged 0, closed left out 2")
    assert sorted(deals_by_title(database)) == ["Expansion", "Pilot"]


def test_a_default_owner_takes_the_rows_the_owners_file_misses(database: Database) -> None:
    export = SALESFORCE.replace("Ben Ode,ben@example.com", "Cy,cy@example.com")
    owners = OwnerDirectory(mapping=OWNERS.mapping, default="U0CY")

    report = run(database, export, owners=owners)

    assert report.count("imported") == 4
    assert deals_by_title(database)["Renewal"].owner_id == "U0CY"
    assert deals_by_title(database)["Expansion"].owner_id == "U0ANA"


def test_slashed_dates_need_their_order_stated(database: Database) -> None:
    export = SALESFORCE.replace("2026-12-15", "03/04/2027")

    report = run(database, export, date_order="dmy")

    assert not report.refused
    assert deals_by_title(database)["Expansion"].close_date == dt.date(2027, 4, 3)


def test_an_unknown_export_names_the_headers_it_expected(database: Database) -> None:
    with pytest.raises(UnknownFlavour) as error:
        run(database, "Name,Value\nx,1\n")

    assert "“Opportunity Name” and “Stage”" in str(error.value)
    assert "“Deal Name” and “Deal Stage”" in str(error.value)


def test_owner_map_skips_a_header_and_refuses_a_bad_user_id() -> None:
    assert read_owner_map(["source owner,slack user", "Ana Lopez,U0ANA"]) == {"ana lopez": "U0ANA"}
    with pytest.raises(ValueError, match="line 2: `ana` is not a Slack user id"):
        read_owner_map(["Ana Lopez,U0ANA", "Ben,ana"])


def test_values_longer_than_salesforce_allows_are_refused_naming_the_limit(
    database: Database,
) -> None:
    export = (
        SALESFORCE.replace("006A1,", "006A1B2C3D4E5F6G7H8,")
        .replace("Renewal,", f"{'R' * 121},")
        .replace("Send pricing", "s" * 256)
    )

    report = run(database, export)

    assert [(r.line, r.reason) for r in report.refused] == [
        (
            2,
            "“Opportunity ID” is 19 characters long; Salesforce allows at most 18; "
            "“Next Step” is 256 characters long; Salesforce allows at most 255",
        ),
        (3, "“Opportunity Name” is 121 characters long; Salesforce allows at most 120"),
    ]
    assert count(database, Deal) == 0


def test_the_longest_values_salesforce_allows_that_dealbot_keeps_are_imported(
    database: Database,
) -> None:
    export = (
        SALESFORCE.replace("006A1,", "006A1B2C3D4E5F6G7H,")
        .replace("Initech", "I" * 200)
        .replace("Expansion", "E" * 120)
        .replace("Send pricing", "s" * 255)
    )

    report = run(database, export)

    assert report.summary_line() == "imported 4, updated 0, unchanged 0"
    deal = deals_by_title(database)["E" * 120]
    assert (deal.account, deal.external_ref) == ("I" * 200, "salesforce:006A1B2C3D4E5F6G7H")


def test_a_bad_byte_refuses_its_row_and_the_rows_after_it_are_still_checked(
    database: Database,
) -> None:
    raw = SALESFORCE.encode().replace(b"Globex", b"Glob\xe9x").replace(b"Hooli", b"\x00Hooli")

    report = importer(database).import_csv(io.BytesIO(raw), owners=OWNERS)

    assert [(r.line, r.reason) for r in report.refused] == [
        (3, "line 3, column 19: byte 0xE9 is not UTF-8; export the file as UTF-8"),
        (4, "“Account Name” holds a control character (U+0000); remove it"),
    ]
    assert count(database, Deal) == 0
