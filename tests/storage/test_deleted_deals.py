"""A deleted deal is kept but found by no query of deals, on SQLite and on PostgreSQL; a
rename or reassignment through a CRM-connected DealService queues the CRM push."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.changes import DealChanges, DealRef
from domain.clock import FixedClock
from domain.deals import Actor, DealService
from domain.money import Money
from storage.crm import CrmRepository
from storage.database import Database
from storage.deals import DealImportRepository, DealRepository
from storage.facts import ReminderRepository
from storage.follow_ups import FollowUpRepository
from storage.models import Deal
from storage.snapshots import WeeklyRepository

NOW = dt.datetime(2026, 11, 23, 15, tzinfo=dt.UTC)
ANA = Actor(user_id="U0ANA")
QUARTER = (dt.date(2026, 10, 1), dt.date(2026, 12, 31))


def _service(database: Database, *, crm: str | None = None) -> DealService:
    return DealService(
        database=database,
        clock=FixedClock(at=NOW),
        default_timezone=ZoneInfo("America/New_York"),
        crm=crm,
    )


def _two_deals_one_deleted(deals: DealService) -> tuple[int, int]:
    changes = DealChanges(amount=Money(Decimal(50_000), "USD"), close_date=dt.date(2026, 12, 1))
    kept = deals.create_deal(ANA, "Globex", changes).id
    gone = deals.create_deal(ANA, "Initech", changes).id
    for deal_id in (kept, gone):
        deals.add_next_step(
            ANA, DealRef(None, deal_id), what="Call", due=NOW.date(), owner_id="U0ANA"
        )
    deals.delete_deal(ANA, DealRef(None, gone))
    return kept, gone


def test_no_query_of_deals_finds_a_deleted_one(database: Database) -> None:
    deals = _service(database)
    with database.session() as session:
        WeeklyRepository(session).snapshot_open_deals(week="2026-W47", owner_ids=["U0ANA"], at=NOW)
    kept, gone = _two_deals_one_deleted(deals)
    later = NOW + dt.timedelta(days=30)

    with database.session() as session:
        facts = ReminderRepository(session).deal_facts(
            quarter=QUARTER, closed_since=NOW - dt.timedelta(days=90)
        )
        listed = ReminderRepository(session).listed_deals(quarter=QUARTER, owner_ids=["U0ANA"])
        repository = DealRepository(session)
        overdue = repository.open_next_steps_overdue_for("U0ANA", later.date())
        weekly = WeeklyRepository(session)
        follow_ups = FollowUpRepository(session)
        found = {
            "facts": {fact.deal_id for fact in facts},
            "listed": {row.facts.deal_id for row in listed},
            "by name": {deal.id for deal in repository.find_by_reference("initech")},
            "by prefix": {deal.id for deal in repository.find_by_reference("i")},
            "by account": {deal.id for deal in repository.by_account_and_title("Initech", None)},
            "open of account": {deal.id for deal in repository.open_deals_of_account("Initech")},
            "by id": {deal.id for deal in (repository.get(gone), repository.get(kept)) if deal},
            "overdue": {step.deal_id for step in overdue},
            "quiet": {deal_id for deal_id, _, _ in follow_ups.quiet_deals(untouched_since=later)},
            "titles": set(follow_ups.deal_titles([kept, gone])),
            "closed this week": {
                deal.id for deal in weekly.closed_since(owner_ids=["U0ANA"], since=NOW)
            },
            "snapshots": {
                row.deal_id for row in weekly.snapshots(weeks=["2026-W47"], owner_ids=["U0ANA"])
            },
            "imports": {
                deal.id
                for found in DealImportRepository(session)
                .by_account_and_title_keys({("initech", None), ("globex", None)})
                .values()
                for deal in found
            },
        }
        assert repository.get_even_deleted(gone) is not None
        assert weekly.open_deal_count(owner_ids=["U0ANA"]) == 1  # the kept deal alone

    assert found["snapshots"] == set()  # taken before either deal existed: none of them
    del found["snapshots"]
    for query, ids in found.items():
        assert gone not in ids, query
    assert found["facts"] == {kept}
    assert found["listed"] == {kept}
    assert found["overdue"] == {kept}


def test_a_snapshot_of_a_deal_deleted_since_leaves_the_figures(database: Database) -> None:
    deals = _service(database)
    kept = deals.create_deal(ANA, "Globex", DealChanges()).id
    gone = deals.create_deal(ANA, "Initech", DealChanges()).id
    with database.session() as session:
        WeeklyRepository(session).snapshot_open_deals(week="2026-W47", owner_ids=["U0ANA"], at=NOW)

    deals.delete_deal(ANA, DealRef(None, gone))

    with database.session() as session:
        rows = WeeklyRepository(session).snapshots(weeks=["2026-W47"], owner_ids=["U0ANA"])
        assert {row.deal_id for row in rows} == {kept}
        weekly = WeeklyRepository(session)
        weekly.snapshot_open_deals(week="2026-W48", owner_ids=["U0ANA"], at=NOW)
        taken = weekly.snapshots(weeks=["2026-W48"], owner_ids=["U0ANA"])
        assert {row.deal_id for row in taken} == {kept}


def test_a_rename_and_a_new_owner_are_queued_for_the_crm(database: Database) -> None:
    deals = _service(database, crm="hubspot")
    deal_id = deals.create_deal(ANA, "Intech", DealChanges()).id

    deals.update_deal(
        ANA,
        DealRef(None, deal_id),
        DealChanges(account="Initech", title="Renewal", owner_id="U0BEN"),
    )

    with database.session() as session:
        pushes = CrmRepository(session).pushes_of(deal_id)
        updates = {
            push.field: json.loads(push.value or "null") for push in pushes if push.kind == "update"
        }
    assert updates == {"account": "Initech", "title": "Renewal", "owner": "U0BEN"}


def test_a_deleted_deal_keeps_its_row_history_and_children(database: Database) -> None:
    deals = _service(database)
    _, gone = _two_deals_one_deleted(deals)

    with database.session() as session:
        deal = session.get(Deal, gone)
        assert deal is not None
        assert deal.deleted_by == "U0ANA" and deal.deleted_at == NOW
        assert [step.what for step in deal.next_steps] == ["Call"]
        assert deal.changes[-1].field == "deleted"
