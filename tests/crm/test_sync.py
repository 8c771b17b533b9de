"""The sync engine against an in-memory CRM, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from crm.records import (
    ApiUsage,
    CrmAuthFailed,
    CrmContact,
    CrmFieldChange,
    CrmOwner,
    CrmRateLimited,
    CrmRefused,
    CrmStage,
    CrmTask,
    CrmUnavailable,
)
from crm.sync import ConflictNotice, CrmSync, RefusalNotice
from domain.changes import DealChanges, DealRef
from domain.clock import FixedClock, SystemClock
from domain.deals import Actor, DealService
from domain.money import Money
from storage.crm import CrmRepository
from storage.database import Database
from storage.migrate import upgrade
from storage.models import CrmLink, CrmPush, CrmState, Deal, DealChange
from tests.crm.connector_double import SALESFORCE_STAGES, MemoryCrm, opportunity
from tests.databases import BACKENDS, database_url_for

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
ANA, BEN = "U0ANA", "U0BEN"
OWNERS = (
    CrmOwner("005A", "ana@example.com", "Ana Rep"),
    CrmOwner("005B", "ben@example.com", "Ben Rep"),
    CrmOwner("005X", "xavier@example.com", "Xavier Nobody"),
)
SLACK = {"ana@example.com": ANA, "ben@example.com": BEN}


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with database_url_for(request.param, tmp_path) as url:
        upgrade(url)
        db = Database.from_url(url)
        try:
            yield db
        finally:
            db.dispose()


@dataclass
class Directory:
    asked: list[str] = field(default_factory=list)

    def user_by_email(self, email: str) -> str | None:
        self.asked.append(email)
        return SLACK.get(email)


@dataclass
class Notices:
    conflicts: list[ConflictNotice] = field(default_factory=list)
    refusals: list[RefusalNotice] = field(default_factory=list)
    unmatched: list[tuple[str, ...]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def conflict(self, notice: ConflictNotice) -> None:
        self.conflicts.append(notice)

    def refused(self, notice: RefusalNotice) -> None:
        self.refusals.append(notice)

    def owners_without_slack_user(self, admins: tuple[str, ...], emails: tuple[str, ...]) -> None:
        assert admins == ("UADMIN",)
        self.unmatched.append(emails)

    def login_refused(self, admins: tuple[str, ...], message: str) -> None:
        assert admins == ("UADMIN",)
        self.logins.append(message)


@dataclass
class World:
    database: Database
    crm: MemoryCrm
    clock: FixedClock
    notices: Notices
    directory: Directory

    def engine(self, owner: str = "engine-1") -> CrmSync:
        return CrmSync(
            database=self.database,
            connector=self.crm,
            directory=self.directory,
            notices=self.notices,
            clock=self.clock,
            admins=("UADMIN",),
            default_currency="EUR",
            owner=owner,
        )

    def deals(self) -> DealService:
        return DealService(
            database=self.database,
            clock=self.clock,
            default_timezone=ZoneInfo("UTC"),
            crm="salesforce",
        )

    def advance(self, **delta: float) -> None:
        self.clock.at = self.clock.at + dt.timedelta(**delta)
        self.crm.now = self.clock.at

    def count(self, model: type) -> int:
        with self.database.session() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def pushes(self) -> list[CrmPush]:
        with self.database.session() as session:
            return CrmRepository(session).all_pushes()

    def deal_id(self, crm_id: str) -> int:
        with self.database.session() as session:
            link = session.scalars(select(CrmLink).where(CrmLink.crm_id == crm_id)).one()
            return link.deal_id


@pytest.fixture
def world(database: Database) -> World:
    clock = FixedClock(at=T0)
    crm = MemoryCrm(owners=OWNERS, now=T0)
    return World(database, crm, clock, Notices(), Directory())


def seed(crm: MemoryCrm) -> None:
    """Three opportunities: one with a task and buyers, one plain, one in a closed stage."""
    crm.put(
        opportunity(
            "006001",
            title="Initech — platform",
            account="Initech",
            owner="005A",
            stage="Proposal/Price Quote",
            modified_at=T0 - dt.timedelta(hours=3),
            forecast_category="best_case",
            next_step="Old text next step",
            contacts=(
                CrmContact("003A", "Peter Gibbons", "peter@initech.com", "economic_buyer"),
                CrmContact("003B", "Milton", "milton@initech.com", "champion"),
                CrmContact("003C", "Bill", "bill@initech.com", None),
            ),
            tasks=(
                CrmTask("00T1", "Send redlines", dt.date(2026, 12, 4), "005A", False),
                CrmTask("00T2", "Demo", dt.date(2026, 12, 2), "005A", False),
                CrmTask("00T3", "Intro call", dt.date(2026, 11, 1), "005A", True),
            ),
        )
    )
    crm.put(
        opportunity(
            "006002",
            title="Hooli expansion",
            account="Hooli",
            owner="005B",
            modified_at=T0 - dt.timedelta(hours=2),
            amount=Decimal("12000"),
            currency="USD",
            next_step="Call Gavin",
        )
    )
    crm.put(
        opportunity(
            "006003",
            title="Globex",
            account="Globex",
            owner="005A",
            stage="Closed Won",
            modified_at=T0 - dt.timedelta(hours=1),
        )
    )


# --- pull -----------------------------------------------------------------------------------


def test_first_pull_creates_the_deals_with_their_history_from_salesforce(world: World) -> None:
    seed(world.crm)
    world.crm.history.append(
        CrmFieldChange(
            "006001",
            "stage",
            "Needs Analysis",
            "Proposal/Price Quote",
            T0 - dt.timedelta(days=3),
            "005A",
        )
    )

    report = world.engine().run()

    assert report.summary() == "pulled 3, pushed 0, conflicts 0, failed 0"
    view = world.deals().show_deal(Actor(ANA), DealRef(name=None, deal_id=world.deal_id("006001")))
    assert (view.account, view.title, view.owner_id) == ("Initech", "Initech — platform", ANA)
    assert (view.stage, view.status, view.forecast_category) == ("proposal", "open", "best_case")
    assert view.amount == Money(Decimal("50000.00"), "EUR")  # the team's currency: none given
    # The open task due first is the next step, not the text field nor the done task.
    assert view.next_step is not None
    assert (view.next_step.what, view.next_step.due_date) == ("Demo", dt.date(2026, 12, 2))
    roles = {c.email: c.role for c in view.contacts}
    assert roles == {
        "peter@initech.com": "economic_buyer",
        "milton@initech.com": "champion",
        "bill@initech.com": "other",
    }
    assert view.crm_label == "Salesforce"
    assert view.crm_url and view.crm_url.endswith("/006001/view")
    assert view.not_in_crm == ()
    # History: the backfilled stage change, the other fields' starting values, all from SF.
    assert {c.source for c in view.history} == {"salesforce"}
    stage_changes = [(c.old_value, c.new_value) for c in view.history if c.field == "stage"]
    assert stage_changes == [("discovery", "proposal")]
    hooli = world.deals().show_deal(Actor(BEN), DealRef(name=None, deal_id=world.deal_id("006002")))
    assert hooli.next_step is not None and hooli.next_step.what == "Call Gavin"
    assert hooli.next_step.due_date is None
    assert hooli.amount == Money(Decimal("12000.00"), "USD")
    globex = world.deals().show_deal(
        Actor(ANA), DealRef(name=None, deal_id=world.deal_id("006003"))
    )
    assert (globex.stage, globex.status) == ("closed_won", "won")
    assert world.crm.writes() == []


def test_a_second_pull_with_no_changes_writes_nothing(world: World) -> None:
    seed(world.crm)
    engine = world.engine()
    engine.run()
    with world.database.session() as session:
        before = (
            session.scalar(select(func.count()).select_from(DealChange)),
            sorted((d.id, d.updated_at) for d in session.scalars(select(Deal))),
            sorted((link.deal_id, link.synced) for link in session.scalars(select(CrmLink))),
        )

    world.advance(minutes=5)
    report = engine.run()

    assert report.summary() == "pulled 0, pushed 0, conflicts 0, failed 0"
    with world.database.session() as session:
        after = (
            session.scalar(select(func.count()).select_from(DealChange)),
            sorted((d.id, d.updated_at) for d in session.scalars(select(Deal))),
            sorted((link.deal_id, link.synced) for link in session.scalars(select(CrmLink))),
        )
    assert after == before


def test_a_change_in_the_crm_reaches_the_deal_with_its_source(world: World) -> None:
    seed(world.crm)
    engine = world.engine()
    engine.run()
    world.advance(minutes=5)
    world.crm.change("006002", stage="Negotiation/Review", close_date=dt.date(2027, 4, 30))

    report = engine.run()

    assert report.pulled == 1
    view = world.deals().show_deal(Actor(BEN), DealRef(name=None, deal_id=world.deal_id("006002")))
    assert (view.stage, view.close_date) == ("negotiation", dt.date(2027, 4, 30))
    latest = [c for c in view.history if c.changed_at == world.clock.at]
    assert {(c.field, c.new_value, c.source, c.changed_by) for c in latest} == {
        ("stage", "negotiation", "salesforce", BEN),
        ("close_date", "2027-04-30", "salesforce", BEN),
    }
    assert view.close_date_pushes == 1


def test_a_pull_interrupted_between_batches_resumes_from_the_stored_cursor(world: World) -> None:
    seed(world.crm)  # three deals, two per batch
    engine = world.engine()
    original = world.crm.pull

    def pull_failing_after_first_batch(cursor: str | None) -> Iterator:  # type: ignore[type-arg]
        batches = original(cursor)
        yield next(batches)
        raise CrmUnavailable("503 Service Unavailable")

    world.crm.pull = pull_failing_after_first_batch  # type: ignore[method-assign]
    with pytest.raises(CrmUnavailable):
        engine.run()
    assert world.count(Deal) == 2
    with world.database.session() as session:
        state = session.get(CrmState, "salesforce")
        assert state is not None
        cursor = state.cursor
    assert cursor == (T0 - dt.timedelta(hours=2)).isoformat()

    world.crm.pull = original  # type: ignore[method-assign]
    report = engine.run()

    assert ("pull", cursor) in world.crm.calls
    # The second batch's first deal comes back (>= cursor) but is not applied twice.
    assert report.pulled == 1
    assert world.count(Deal) == 3


def test_an_owner_with_no_slack_user_is_reported_once_and_their_deals_skipped(
    world: World,
) -> None:
    seed(world.crm)
    world.crm.put(
        opportunity("006009", title="Vandelay", account="Vandelay", owner="005X", modified_at=T0)
    )
    engine = world.engine()

    first = engine.run()
    world.advance(minutes=5)
    world.crm.change("006009", amount=Decimal("1"))
    second = engine.run()

    assert first.failed == 1 and first.pulled == 3
    assert second.failed == 1 and second.pulled == 0
    assert world.notices.unmatched == [("xavier@example.com",)]
    assert world.count(Deal) == 3
    assert engine.status().owners_without_slack_user == ("xavier@example.com",)


def test_pull_deals_pulls_just_the_named_deals(world: World) -> None:
    seed(world.crm)
    report = world.engine().pull_deals(["006002"])
    assert report.pulled == 1
    assert world.count(Deal) == 1
    with world.database.session() as session:
        state = session.get(CrmState, "salesforce")
        assert state is not None and state.cursor is None


# --- push -----------------------------------------------------------------------------------


def _linked(world: World) -> tuple[CrmSync, int]:
    seed(world.crm)
    engine = world.engine()
    engine.run()
    world.advance(minutes=1)
    return engine, world.deal_id("006002")


def test_pushes_are_coalesced_and_applied_once_even_after_a_503(world: World) -> None:
    engine, deal_id = _linked(world)
    hooli = DealRef(name=None, deal_id=deal_id)
    deals = world.deals()
    deals.update_deal(Actor(BEN), hooli, DealChanges(stage="demo"))
    world.advance(seconds=10)
    deals.update_deal(
        Actor(BEN), hooli, DealChanges(stage="proposal", amount=Money(Decimal("15000"), "USD"))
    )
    assert len(world.pushes()) == 3
    view = deals.show_deal(Actor(BEN), hooli)
    assert view.not_in_crm == ("stage", "amount")
    world.crm.fail("update_deal", CrmUnavailable("503 Service Unavailable"))
    world.advance(seconds=10)

    failed = engine.push_pending()

    assert failed.pushed == 0
    assert {p.status for p in world.pushes()} == {"pending"}
    assert all(
        p.next_attempt_at == world.clock.at + dt.timedelta(seconds=30) for p in world.pushes()
    )
    assert engine.push_pending().pushed == 0  # not due yet: backing off

    world.advance(seconds=31)
    retried = engine.push_pending()
    world.advance(minutes=1)
    again = engine.run()

    assert retried.pushed == 3 and again.pushed == 0
    updates = [detail for name, detail in world.crm.writes() if name == "update_deal"]
    assert (
        updates
        == [
            ("006002", {"stage": "Proposal/Price Quote", "amount": Decimal("15000.00")}),
            ("006002", {"stage": "Proposal/Price Quote", "amount": Decimal("15000.00")}),
        ][:2]
    )
    # The first is the 503 (recorded, raised), the second the one that went through.
    assert world.crm.records["006002"].stage == "Proposal/Price Quote"
    assert {p.status for p in world.pushes()} == {"sent"}
    assert deals.show_deal(Actor(BEN), hooli).not_in_crm == ()
    assert again.pulled == 0  # our own write, read back, is no change


def test_a_refused_push_tells_the_rep_and_the_card_says_not_in_salesforce(world: World) -> None:
    engine, deal_id = _linked(world)
    hooli = DealRef(name=None, deal_id=deal_id)
    deals = world.deals()
    deals.update_deal(Actor(BEN), hooli, DealChanges(close_date=dt.date(2027, 1, 15)))
    message = "Close Date: cannot be moved inside a locked quarter"
    world.crm.fail("update_deal", CrmRefused(message, code="FIELD_CUSTOM_VALIDATION_EXCEPTION"))

    report = engine.run()

    assert (report.pushed, report.failed) == (0, 1)
    assert world.notices.refusals == [
        RefusalNotice(
            rep=BEN,
            deal_id=deal_id,
            deal_name="Hooli — Hooli expansion",
            fields=("close_date",),
            message=message,
        )
    ]
    view = deals.show_deal(Actor(BEN), hooli)
    assert view.close_date == dt.date(2027, 1, 15)  # the local value stays
    assert view.not_in_crm == ("close_date",)
    listed = {d.id: d for d in deals.pipeline(Actor(BEN), scope="me").deals}
    assert (listed[deal_id].crm_label, listed[deal_id].not_in_crm) == (
        "Salesforce",
        ("close_date",),
    )
    assert listed[deal_id].crm_url == view.crm_url
    assert [p.error for p in world.pushes()] == [message]
    world.advance(minutes=5)
    assert engine.run().failed == 0  # refused for good: not retried
    assert engine.status().refused_pushes == 1


def test_a_deal_created_in_slack_is_created_in_the_crm_once(world: World) -> None:
    engine, _ = _linked(world)
    deals = world.deals()
    made = deals.create_deal(
        Actor(ANA), "Umbrella", DealChanges(stage="demo", amount=Money(Decimal("9000"), "EUR"))
    )
    deals.add_next_step(
        Actor(ANA), DealRef(name=None, deal_id=made.id), what="Send deck", due=None, owner_id=None
    )
    assert deals.show_deal(Actor(ANA), DealRef(name=None, deal_id=made.id)).not_in_crm == (
        "deal",
        "next_step",
    )

    report = engine.push_pending()
    engine.push_pending()

    assert report.pushed == 2
    creates = [detail for name, detail in world.crm.writes() if name == "create_deal"]
    assert creates == [
        {
            "title": "Umbrella",
            "account": "Umbrella",
            "amount": Decimal("9000.00"),
            "currency": "EUR",
            "stage": "Qualification",  # nothing maps to demo: its nearest neighbour
            "forecast_category": "pipeline",
            "owner": "005A",
            "next_step": "Send deck",
        }
    ]
    with world.database.session() as session:
        link = session.get(CrmLink, made.id)
        assert link is not None and link.crm_id in world.crm.records
    assert [t.subject for t in world.crm.records[link.crm_id].tasks] == ["Send deck"]
    assert deals.show_deal(Actor(ANA), DealRef(name=None, deal_id=made.id)).not_in_crm == ()


# --- conflicts ------------------------------------------------------------------------------


def test_a_later_crm_change_wins_a_conflict_and_the_slack_value_stays_in_history(
    world: World,
) -> None:
    engine, deal_id = _linked(world)
    hooli = DealRef(name=None, deal_id=deal_id)
    deals = world.deals()
    deals.update_deal(Actor(BEN), hooli, DealChanges(stage="demo"))
    world.advance(seconds=20)
    world.crm.change("006002", stage="Negotiation/Review")

    report = engine.run()

    assert report.conflicts == 1
    assert not [w for w in world.crm.writes() if w[0] == "update_deal"]
    view = deals.show_deal(Actor(BEN), hooli)
    assert view.stage == "negotiation"
    assert [(c.old_value, c.new_value, c.source) for c in view.history if c.field == "stage"][
        -2:
    ] == [("discovery", "demo", None), ("demo", "negotiation", "salesforce")]
    assert [p.status for p in world.pushes()] == ["superseded"]
    assert world.notices.conflicts == [
        ConflictNotice(
            rep=BEN,
            deal_id=deal_id,
            deal_name="Hooli — Hooli expansion",
            field="stage",
            kept="negotiation",
            lost="demo",
            kept_from="Salesforce",
        )
    ]
    assert view.not_in_crm == ()


def test_a_later_slack_change_wins_a_conflict_and_overwrites_the_crm(world: World) -> None:
    engine, deal_id = _linked(world)
    hooli = DealRef(name=None, deal_id=deal_id)
    world.crm.change("006002", stage="Negotiation/Review")  # at T, before the rep
    world.advance(seconds=20)
    deals = world.deals()
    deals.update_deal(Actor(BEN), hooli, DealChanges(stage="demo"))
    world.crm.fail("update_deal", CrmRateLimited("Too many requests", retry_after=120))
    engine.push_pending()  # rate limited: the CRM's change has been seen, the push waits
    pushes = world.pushes()
    assert [p.status for p in pushes] == ["pending"]
    assert pushes[0].next_attempt_at == world.clock.at + dt.timedelta(seconds=120)

    world.advance(minutes=3)
    report = engine.run()

    assert report.pushed == 1
    # Nothing maps to demo: the nearest CRM stage, not the CRM's later-overwritten one.
    assert world.crm.records["006002"].stage == "Qualification"
    view = deals.show_deal(Actor(BEN), hooli)
    assert view.stage == "demo"
    lost = [c for c in view.history if c.source == "salesforce" and c.field == "stage"][-1]
    assert (lost.old_value, lost.new_value) == ("demo", "negotiation")
    assert [(n.kept_from, n.kept, n.lost) for n in world.notices.conflicts] == [
        ("Slack", "demo", "negotiation")
    ]


# --- login, limits, dry run ------------------------------------------------------------------


def test_a_refused_login_tells_admins_once_across_runs_until_it_works_again(
    world: World,
) -> None:
    seed(world.crm)
    engine = world.engine()
    revoked = CrmAuthFailed("INVALID_SESSION_ID: Session expired or invalid")
    world.crm.fail("stages", revoked, revoked)

    for _ in range(2):
        with pytest.raises(CrmAuthFailed):
            engine.run()
        world.advance(minutes=5)

    assert world.notices.logins == ["INVALID_SESSION_ID: Session expired or invalid"]
    assert engine.run().pulled == 3
    world.crm.fail("stages", revoked)
    with pytest.raises(CrmAuthFailed):
        engine.run()
    assert len(world.notices.logins) == 2


def test_a_refused_login_on_push_keeps_everything_pending(world: World) -> None:
    engine, deal_id = _linked(world)
    world.deals().update_deal(
        Actor(BEN), DealRef(name=None, deal_id=deal_id), DealChanges(stage="demo")
    )
    world.crm.fail("update_deal", CrmAuthFailed("user is inactive"))

    with pytest.raises(CrmAuthFailed):
        engine.run()

    assert [p.status for p in world.pushes()] == ["pending"]
    assert world.notices.logins == ["user is inactive"]


def test_above_80_percent_of_the_allowance_pulls_every_30_minutes(world: World) -> None:
    seed(world.crm)
    engine = world.engine()
    engine.run()
    world.crm.usage_now = ApiUsage(used=90_000, limit=100_000)
    world.advance(minutes=5)
    world.crm.change("006002", amount=Decimal("13000"))

    slowed = engine.run()
    status = engine.status()
    world.advance(minutes=26)
    resumed = engine.run()

    assert slowed.pulled == 0 and resumed.pulled == 1
    assert status.slowed and status.api_usage_share == pytest.approx(0.9)
    with world.database.session() as session:
        state = session.get(CrmState, "salesforce")
        assert state is not None and (state.usage_used, state.usage_limit) == (90_000, 100_000)


def test_a_dry_run_reports_and_writes_nothing(world: World) -> None:
    engine, deal_id = _linked(world)
    deals = world.deals()
    deals.update_deal(Actor(BEN), DealRef(name=None, deal_id=deal_id), DealChanges(stage="demo"))
    world.crm.put(
        opportunity("006010", title="Soylent", account="Soylent", owner="005A", modified_at=T0)
    )
    world.crm.change("006001", amount=Decimal("70000"))
    world.crm.put(
        opportunity("006011", title="Nobody's", account="Nobody", owner="005X", modified_at=T0)
    )
    world.notices.unmatched.clear()
    with world.database.session() as session:
        before = (
            session.scalar(select(func.count()).select_from(DealChange)),
            session.scalar(select(func.count()).select_from(Deal)),
            [(p.id, p.status, p.attempts) for p in CrmRepository(session).all_pushes()],
            session.get(CrmState, "salesforce").cursor,  # type: ignore[union-attr]
        )
    writes_before = len(world.crm.writes())

    report = engine.run(dry_run=True)

    assert report.summary() == "pulled 2, pushed 1, conflicts 0, failed 1"
    with world.database.session() as session:
        after = (
            session.scalar(select(func.count()).select_from(DealChange)),
            session.scalar(select(func.count()).select_from(Deal)),
            [(p.id, p.status, p.attempts) for p in CrmRepository(session).all_pushes()],
            session.get(CrmState, "salesforce").cursor,  # type: ignore[union-attr]
        )
    assert after == before
    assert len(world.crm.writes()) == writes_before
    assert world.notices.unmatched == [] and world.notices.conflicts == []


def test_status_says_when_the_crm_refuses_to_answer(world: World) -> None:
    world.crm.fail("owners", CrmAuthFailed("invalid_grant: expired access/refresh token"))
    status = world.engine().status()
    assert (status.connected, status.message) == (
        False,
        "invalid_grant: expired access/refresh token",
    )
    assert world.engine().status().connected


# --- two engines ----------------------------------------------------------------------------


def test_two_engines_racing_push_pending_never_apply_one_row_twice(world: World) -> None:
    seed(world.crm)
    for n in range(12):
        world.crm.put(
            opportunity(
                f"0061{n:02d}", title=f"Deal {n}", account=f"Acct {n}", owner="005A", modified_at=T0
            )
        )
    world.engine().run()
    world.advance(minutes=1)
    deals = world.deals()
    for n in range(12):
        deals.update_deal(
            Actor(ANA),
            DealRef(name=None, deal_id=world.deal_id(f"0061{n:02d}")),
            DealChanges(amount=Money(Decimal(1000 + n), "EUR")),
        )
    start = threading.Barrier(2)
    errors: list[BaseException] = []
    reports = []

    def race(owner: str) -> None:
        try:
            start.wait()
            reports.append(world.engine(owner).push_pending())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=race, args=(name,)) for name in ("engine-a", "engine-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    updates = [detail for name, detail in world.crm.writes() if name == "update_deal"]
    assert sorted(crm_id for crm_id, _ in updates) == sorted(f"0061{n:02d}" for n in range(12))
    assert sum(report.pushed for report in reports) == 12
    assert {p.status for p in world.pushes()} == {"sent"}


# --- the domain hooks -----------------------------------------------------------------------


def test_the_sync_never_queues_pushes_and_a_retried_slack_request_queues_once(
    world: World,
) -> None:
    engine, deal_id = _linked(world)
    assert world.pushes() == []  # what the pull wrote is the CRM's, nothing to send back
    hooli = DealRef(name=None, deal_id=deal_id)
    deals = world.deals()

    for _ in range(2):  # Slack retries a request it did not see answered in 3 s
        deals.update_deal(Actor(BEN), hooli, DealChanges(forecast="best_case"))

    assert [(p.kind, p.field, p.value) for p in world.pushes()] == [
        ("update", "forecast_category", '"best_case"')
    ]
    assert engine.push_pending().pushed == 1
    assert world.crm.records["006002"].forecast_category == "best_case"


def test_next_steps_travel_as_tasks_and_done_steps_complete_them(world: World) -> None:
    engine, deal_id = _linked(world)
    initech = DealRef(name=None, deal_id=world.deal_id("006001"))
    hooli = DealRef(name=None, deal_id=deal_id)
    deals = world.deals()
    deals.add_next_step(
        Actor(BEN), hooli, what="Send pricing", due=dt.date(2026, 12, 10), owner_id=None
    )
    deals.complete_next_step(Actor(ANA), initech)  # "Demo", which came from the CRM's task

    report = engine.push_pending()

    assert report.pushed == 2
    tasks = [detail for name, detail in world.crm.writes() if name == "create_task"]
    assert [(crm_id, t.subject, t.due, t.owner) for crm_id, t in tasks] == [
        ("006002", "Send pricing", dt.date(2026, 12, 10), "005B")
    ]
    assert [detail for name, detail in world.crm.writes() if name == "complete_task"] == ["00T2"]
    # The pull that follows reads our own task back as the deal's next step: no change.
    world.advance(minutes=5)
    again = engine.run()
    view = deals.show_deal(Actor(BEN), hooli)
    assert view.next_step is not None and view.next_step.what == "Send pricing"
    assert [s for s in view.history if s.changed_at == world.clock.at] == []
    initech_view = deals.show_deal(Actor(ANA), initech)
    assert initech_view.next_step is not None and initech_view.next_step.what == "Send redlines"
    assert again.failed == 0


def test_closing_a_deal_in_slack_moves_the_crm_record_to_its_closed_stage(world: World) -> None:
    engine, deal_id = _linked(world)
    world.deals().close_deal(
        Actor(BEN), DealRef(name=None, deal_id=deal_id), won=False, reason="went with Globex"
    )

    engine.push_pending()

    assert world.crm.records["006002"].stage == "Closed Lost"
    world.advance(minutes=5)
    assert engine.run().pulled == 0


def test_a_slow_push_keeps_its_claim_so_a_second_engine_does_not_send_it_again(
    world: World,
) -> None:
    _, deal_id = _linked(world)
    world.deals().update_deal(
        Actor(BEN), DealRef(name=None, deal_id=deal_id), DealChanges(stage="proposal")
    )
    wall = SystemClock()
    lease = dt.timedelta(seconds=0.3)
    first = CrmSync(
        database=world.database,
        connector=world.crm,
        directory=world.directory,
        notices=world.notices,
        clock=wall,
        owner="slow",
        lease=lease,
    )
    second = CrmSync(
        database=world.database,
        connector=world.crm,
        directory=world.directory,
        notices=world.notices,
        clock=wall,
        owner="eager",
        lease=lease,
    )
    entered, release = threading.Event(), threading.Event()
    update = world.crm.update_deal

    def slow_update(crm_id: str, fields: dict) -> None:  # type: ignore[type-arg]
        entered.set()
        assert release.wait(10)
        update(crm_id, fields)

    world.crm.update_deal = slow_update  # type: ignore[assignment,method-assign]
    reports = []
    thread = threading.Thread(target=lambda: reports.append(first.push_pending()))
    thread.start()
    assert entered.wait(10)
    time.sleep(1.0)  # more than three leases: only the heartbeat keeps the claim alive

    stolen = second.push_pending()
    release.set()
    thread.join()

    assert stolen.pushed == 0 and reports[0].pushed == 1
    assert [name for name, _ in world.crm.writes()] == ["update_deal"]  # once
    assert [p.status for p in world.pushes()] == ["sent"]
    assert world.crm.records["006002"].stage == "Proposal/Price Quote"


def test_status_lists_each_crm_stage_with_the_dealbot_stage_it_maps_to(world: World) -> None:
    engine = world.engine()
    before = engine.status()
    seed(world.crm)
    engine.run()

    mapped = dict(engine.status().stages)

    assert before.stages == ()
    assert mapped["Proposal/Price Quote"] == "proposal"
    assert mapped["Closed Won"] == "closed_won"
    assert list(mapped) == [s.label for s in SALESFORCE_STAGES]


def test_a_deal_won_in_hubspot_is_won_here_from_hubspot_with_its_steps_closed(
    database: Database,
) -> None:
    stages = (
        CrmStage(
            "appointmentscheduled",
            "Appointment Scheduled",
            Decimal("0.2"),
            0,
            False,
            False,
            None,
            "default",
        ),
        CrmStage("closedwon", "Closed Won", Decimal(1), 6, True, True, None, "default"),
    )
    crm = MemoryCrm(kind="hubspot", stages=stages, owners=OWNERS, now=T0)
    world = World(database, crm, FixedClock(at=T0), Notices(), Directory())
    crm.put(
        opportunity(
            "9001",
            title="Pied Piper",
            account="Pied Piper",
            owner="005A",
            stage="appointmentscheduled",
            modified_at=T0,
            forecast_category=None,
            next_step="Send the deck",
        )
    )
    engine = world.engine()
    engine.run()
    world.advance(minutes=5)
    crm.change("9001", stage="closedwon")

    report = engine.run()

    assert report.pulled == 1
    deals = DealService(
        database=database, clock=world.clock, default_timezone=ZoneInfo("UTC"), crm="hubspot"
    )
    view = deals.show_deal(Actor(ANA), DealRef(name=None, deal_id=world.deal_id("9001")))
    assert (view.stage, view.status, view.next_step) == ("closed_won", "won", None)
    assert view.crm_label == "HubSpot"
    assert [(c.field, c.new_value, c.source) for c in view.history][-2:] == [
        ("stage", "closed_won", "hubspot"),
        ("status", "won", "hubspot"),
    ]


# --- a deal closed in the CRM closes on the day it closed -------------------------------------


def _closing_rows(world: World, deal_id: int) -> set[tuple[str, str | None, str | None]]:
    """Return the history rows written at the moment the deal's status left open."""
    with world.database.session() as session:
        rows = session.scalars(select(DealChange).where(DealChange.deal_id == deal_id)).all()
        closed_at = next(r.changed_at for r in rows if r.field == "status" and r.old_value)
        return {(r.field, r.old_value, r.new_value) for r in rows if r.changed_at == closed_at}


def test_a_deal_won_in_the_crm_without_a_close_date_closes_on_the_owners_sync_day(
    world: World,
) -> None:
    seed(world.crm)
    engine = CrmSync(
        database=world.database,
        connector=world.crm,
        directory=world.directory,
        notices=world.notices,
        clock=world.clock,
        admins=("UADMIN",),
        default_timezone=ZoneInfo("Pacific/Auckland"),
    )
    engine.run()
    world.advance(hours=14)  # 23:00 UTC on Mon 30 Nov: Tue 1 Dec in Auckland
    world.crm.change("006002", stage="Closed Won", close_date=None)

    engine.run()

    deal_id = world.deal_id("006002")
    with world.database.session() as session:
        deal = session.get(Deal, deal_id)
        assert deal is not None
        assert (deal.status, deal.close_date) == ("won", dt.date(2026, 12, 1))
    assert {
        ("close_date", "2027-03-31", "2026-12-01"),
        ("status", "open", "won"),
    } <= _closing_rows(world, deal_id)


def test_a_deal_lost_in_the_crm_closes_on_the_crms_close_date(world: World) -> None:
    engine, deal_id = _linked(world)
    world.crm.change("006002", stage="Closed Lost", close_date=dt.date(2026, 11, 27))

    engine.run()

    with world.database.session() as session:
        deal = session.get(Deal, deal_id)
        assert deal is not None
        assert (deal.status, deal.close_date) == ("lost", dt.date(2026, 11, 27))
    assert {
        ("close_date", "2027-03-31", "2026-11-27"),
        ("status", "open", "lost"),
    } <= _closing_rows(world, deal_id)


def test_a_deal_first_seen_closed_without_a_close_date_closed_when_last_changed(
    world: World,
) -> None:
    world.crm.put(
        opportunity(
            "006009",
            title="Umbrella",
            account="Umbrella",
            owner="005A",
            stage="Closed Won",
            close_date=None,
            modified_at=T0 - dt.timedelta(days=40),
        )
    )

    world.engine().run()

    with world.database.session() as session:
        deal = session.get(Deal, world.deal_id("006009"))
        assert deal is not None
        assert (deal.status, deal.close_date) == ("won", (T0 - dt.timedelta(days=40)).date())
