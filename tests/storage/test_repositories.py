"""Repository queries on both backends: deal lookup, close-date pushes, team membership."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.changes import DealChanges, DealRef
from domain.clock import FixedClock
from domain.dates import quarter_bounds
from domain.deals import Actor, DealService
from domain.errors import InvalidChange
from domain.money import Money
from storage.database import Database
from storage.deals import MAX_CANDIDATES, DealRepository, name_key
from storage.facts import ReminderRepository, _facts_of, deal_facts_query
from storage.models import Deal, DealChange, NextStep, Team, TeamMember
from storage.teams import TeamRepository

NOW = dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC)
QUARTER = quarter_bounds(NOW.date())


def _deal(account: str, *, owner_id: str = "UREP", status: str = "open", **values: Any) -> Deal:
    title = values.pop("title", None)
    return Deal(
        account=account,
        account_key=name_key(account),
        title=title,
        title_key=name_key(title) if title else None,
        owner_id=owner_id,
        currency="USD",
        stage="discovery" if status == "open" else f"closed_{status}",
        status=status,
        created_by=owner_id,
        **values,
    )


def _add(database: Database, *deals: Deal) -> list[int]:
    with database.session() as session:
        session.add_all(deals)
        session.flush()
        return [deal.id for deal in deals]


def _accounts(database: Database, reference: str) -> list[str]:
    with database.session() as session:
        return [deal.account for deal in DealRepository(session).find_by_reference(reference)]


# --- find_by_reference -----------------------------------------------------------------------


def test_find_by_reference_matches_account_ignoring_case_and_spaces(database: Database) -> None:
    _add(database, _deal("Initech  Corp"), _deal("Initrode"))

    assert _accounts(database, "  INITECH corp ") == ["Initech  Corp"]


def test_find_by_reference_exact_match_beats_longer_prefix_matches(database: Database) -> None:
    _add(database, _deal("Acme"), _deal("Acme Europe"))

    assert _accounts(database, "acme") == ["Acme"]


def test_find_by_reference_unique_prefix_is_enough(database: Database) -> None:
    _add(database, _deal("Initech"), _deal("Globex"))

    assert _accounts(database, "ini") == ["Initech"]
    assert _accounts(database, "umbrella") == []


def test_find_by_reference_matches_deal_title(database: Database) -> None:
    _add(database, _deal("Initech", title="TPS rollout"), _deal("Globex"))

    assert _accounts(database, "tps roll") == ["Initech"]


def test_find_by_reference_ambiguous_prefix_returns_every_candidate(database: Database) -> None:
    _add(database, _deal("Initech"), _deal("Initrode"), _deal("Globex"))

    assert sorted(_accounts(database, "init")) == ["Initech", "Initrode"]


def test_find_by_reference_percent_is_literal_not_a_wildcard(database: Database) -> None:
    _add(database, _deal("50% Off Ltd"), _deal("500 Startups"), _deal("Initech"))

    assert _accounts(database, "50%") == ["50% Off Ltd"]
    assert _accounts(database, "%") == []


def test_find_by_reference_underscore_is_literal_not_a_wildcard(database: Database) -> None:
    _add(database, _deal("a_b Labs"), _deal("axb Labs"))

    assert _accounts(database, "a_b") == ["a_b Labs"]
    assert _accounts(database, "_") == []


def test_find_by_reference_backslash_is_literal(database: Database) -> None:
    _add(database, _deal("AC\\DC Tours"), _deal("ACDC Tours"))

    assert _accounts(database, "ac\\d") == ["AC\\DC Tours"]


def test_find_by_reference_prefers_open_deals_over_closed_ones(database: Database) -> None:
    _add(
        database,
        _deal("Initech", status="lost", close_reason="went with Globex"),
        _deal("Initech", status="won"),
        _deal("Initech"),
    )

    with database.session() as session:
        matches = DealRepository(session).find_by_reference("initech")
        assert [deal.status for deal in matches] == ["open"]


def test_find_by_reference_offers_closed_deals_when_none_is_open(database: Database) -> None:
    _add(database, _deal("Initech", status="lost", close_reason="price"))

    with database.session() as session:
        matches = DealRepository(session).find_by_reference("ini")
        assert [deal.status for deal in matches] == ["lost"]


def test_find_by_reference_returns_at_most_one_more_than_the_candidates_shown(
    database: Database,
) -> None:
    _add(database, *(_deal(f"Acme {n:02d}") for n in range(MAX_CANDIDATES * 5)))

    # One extra row tells the caller "and more": it can ask the rep to type more.
    assert len(_accounts(database, "acme")) == MAX_CANDIDATES + 1


# --- close-date pushes in the checks' facts --------------------------------------------------


def test_deal_facts_count_only_close_dates_moved_later(database: Database) -> None:
    (deal_id,) = _add(database, _deal("Initech", close_date=dt.date(2027, 1, 5)))
    history = [
        (None, "2026-11-30"),  # the first close date is not a push
        ("2026-11-30", "2026-12-15"),  # pushed
        ("2026-12-15", "2026-12-10"),  # pulled in
        ("2026-12-10", "2027-01-05"),  # pushed, across a year
        ("2027-01-05", None),  # cleared
    ]
    with database.session() as session:
        deal = session.get(Deal, deal_id)
        assert deal is not None
        repository = DealRepository(session)
        for old, new in history:
            repository.record_change(deal, field="close_date", old=old, new=new, by="UREP", at=NOW)
        # Another tracked field changing "later" must not count as a close-date push.
        repository.record_change(deal, field="stage", old="demo", new="proposal", by="UREP", at=NOW)

    with database.session() as session:
        (facts,) = ReminderRepository(session).deal_facts(quarter=QUARTER, deal_ids=[deal_id])
    assert facts.close_date_pushes_this_quarter == 2
    # 2026-12-10 -> 2027-01-05 took the deal out of the quarter it was committed in.
    assert facts.pushed_out_of_quarter


# --- the rows lists read --------------------------------------------------------------------


def test_listed_deals_are_the_facts_with_the_current_next_step(database: Database) -> None:
    initech, hooli, _, _ = _add(
        database,
        _deal("Initech", close_date=dt.date(2026, 12, 20), amount=Decimal("40000")),
        _deal("Hooli", close_date=dt.date(2026, 12, 10)),
        _deal("Globex", status="lost", close_date=dt.date(2026, 11, 1)),
        _deal("Umbrella", owner_id="UOTHER", close_date=dt.date(2026, 12, 1)),
    )
    steps = [
        ("Undated call", None, False),
        ("Send the proposal", dt.date(2026, 12, 1), False),
        ("Past demo", dt.date(2026, 11, 20), True),  # done: never the current step
        ("Legal review", dt.date(2026, 12, 5), False),
    ]
    with database.session() as session:
        session.add_all(
            NextStep(
                deal_id=initech,
                what=what,
                owner_id="UREP",
                due_date=due,
                done=done,
                created_by="UREP",
            )
            for what, due, done in steps
        )

    with database.session() as session:
        listed = ReminderRepository(session).listed_deals(quarter=QUARTER, owner_ids=["UREP"])
        facts = ReminderRepository(session).deal_facts(quarter=QUARTER, owner_ids=["UREP"])
    # Sorted as lists show them: by close date; only the owner's open deals.
    assert [deal.facts.deal_id for deal in listed] == [hooli, initech]
    assert sorted(deal.facts for deal in listed) == sorted(facts)
    hooli_row, initech_row = listed
    assert (hooli_row.amount, hooli_row.step_id, hooli_row.step_what) == (None, None, None)
    assert (initech_row.amount, initech_row.currency) == (Decimal("40000"), "USD")
    assert (initech_row.step_what, initech_row.step_due_date) == (
        "Send the proposal",
        dt.date(2026, 12, 1),
    )
    assert initech_row.facts.open_steps == 3


# --- teams -----------------------------------------------------------------------------------


@pytest.fixture
def teams(database: Database) -> Database:
    """Two teams: West (managed by UMGR, reps UA and UB) and East (UMGR2 manages UC)."""
    with database.session() as session:
        west = Team(
            name="West Coast",
            name_key=name_key("West Coast"),
            channel_id="C0WEST",
            timezone="America/Los_Angeles",
            created_by="UADMIN",
        )
        west.members = [
            TeamMember(user_id="UMGR", role="manager"),
            TeamMember(user_id="UA", role="rep"),
            TeamMember(user_id="UB", role="rep"),
        ]
        east = Team(
            name="East",
            name_key=name_key("East"),
            channel_id="C0EAST",
            timezone="America/New_York",
            created_by="UADMIN",
        )
        east.members = [
            TeamMember(user_id="UMGR2", role="manager"),
            TeamMember(user_id="UC", role="rep"),
            TeamMember(user_id="UA", role="manager"),
        ]
        session.add_all([west, east])
    return database


def test_reps_managed_by(teams: Database) -> None:
    with teams.session() as session:
        repository = TeamRepository(session)
        assert repository.reps_managed_by("UMGR") == {"UA", "UB"}
        assert repository.reps_managed_by("UA") == {"UC"}
        assert repository.reps_managed_by("UB") == set()  # a rep manages no one


def test_teams_of_lists_memberships_optionally_by_role(teams: Database) -> None:
    with teams.session() as session:
        repository = TeamRepository(session)
        assert [t.name for t in repository.teams_of("UA")] == ["East", "West Coast"]
        assert [t.name for t in repository.teams_of("UA", role="rep")] == ["West Coast"]
        assert [t.name for t in repository.teams_of("UA", role="manager")] == ["East"]
        assert repository.teams_of("UNOBODY") == []


def test_timezone_of_is_the_first_team_joined(teams: Database) -> None:
    with teams.session() as session:
        repository = TeamRepository(session)
        assert repository.timezone_of("UA") == "America/Los_Angeles"
        assert repository.timezone_of("UC") == "America/New_York"
        assert repository.timezone_of("UNOBODY") is None


def test_team_by_name_ignores_case_and_spaces(teams: Database) -> None:
    with teams.session() as session:
        team = TeamRepository(session).by_name("  west   COAST")
        assert team is not None
        assert team.name == "West Coast"
        assert {m.user_id for m in team.members} == {"UMGR", "UA", "UB"}
        assert TeamRepository(session).by_name("north") is None


# --- history through the domain --------------------------------------------------------------


def _history(database: Database, deal_id: int) -> list[tuple[str, str | None, str | None, str]]:
    with database.session() as session:
        rows = session.scalars(
            select(DealChange).where(DealChange.deal_id == deal_id).order_by(DealChange.id)
        )
        return [(c.field, c.old_value, c.new_value, c.changed_by) for c in rows]


def _change_times(session: Session, deal_id: int) -> set[dt.datetime]:
    return set(session.scalars(select(DealChange.changed_at).where(DealChange.deal_id == deal_id)))


def test_deal_service_keeps_history_of_tracked_fields(database: Database) -> None:
    service = DealService(
        database=database, clock=FixedClock(at=NOW), default_timezone=ZoneInfo("UTC")
    )
    rep = Actor(user_id="UREP")

    created = service.create_deal(
        rep,
        "Initech",
        DealChanges(
            stage="discovery",
            amount=Money(Decimal("50000"), "USD"),
            close_date=dt.date(2026, 12, 15),
        ),
    )
    assert _history(database, created.id) == [
        ("stage", None, "discovery", "UREP"),
        ("amount", None, "50000.00 USD", "UREP"),
        ("close_date", None, "2026-12-15", "UREP"),
        ("forecast_category", None, "pipeline", "UREP"),
        ("status", None, "open", "UREP"),
    ]

    service.clock = FixedClock(at=NOW + dt.timedelta(days=3))
    service.update_deal(
        rep,
        DealRef(name="initech", deal_id=None),
        DealChanges(
            stage="demo",
            amount=Money(Decimal("65000"), "USD"),
            close_date=dt.date(2027, 1, 20),
            forecast="best_case",
        ),
    )

    assert _history(database, created.id)[5:] == [
        ("stage", "discovery", "demo", "UREP"),
        ("amount", "50000.00 USD", "65000.00 USD", "UREP"),
        ("close_date", "2026-12-15", "2027-01-20", "UREP"),
        ("forecast_category", "pipeline", "best_case", "UREP"),
    ]
    with database.session() as session:
        assert _change_times(session, created.id) == {NOW, NOW + dt.timedelta(days=3)}
        (facts,) = ReminderRepository(session).deal_facts(quarter=QUARTER, deal_ids=[created.id])
        assert facts.close_date_pushes_this_quarter == 1


def test_deal_service_failed_update_writes_nothing(database: Database) -> None:
    service = DealService(
        database=database, clock=FixedClock(at=NOW), default_timezone=ZoneInfo("UTC")
    )
    rep = Actor(user_id="UREP")
    created = service.create_deal(
        rep, "Initech", DealChanges(amount=Money(Decimal("50000"), "USD"))
    )
    history_before = _history(database, created.id)

    with pytest.raises(InvalidChange):
        # Closing goes through /deal won; the amount in the same command must not stick.
        service.update_deal(
            rep,
            DealRef(name=None, deal_id=created.id),
            DealChanges(stage="closed_won", amount=Money(Decimal("90000"), "USD")),
        )

    assert _history(database, created.id) == history_before
    with database.session() as session:
        deal = session.get(Deal, created.id)
        assert deal is not None
        assert (deal.stage, deal.amount) == ("prospecting", Decimal("50000.00"))
        assert session.scalar(select(func.count()).select_from(DealChange)) == len(history_before)


# --- streamed facts --------------------------------------------------------------------------


def test_streamed_facts_come_grouped_by_owner_across_batches(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Owners interleaved as deals are created; batches of two so rows span several fetches.
    monkeypatch.setattr("storage.facts.FACTS_BATCH", 2)
    owners = ["UBEN", "UANA", "UBEN", "UCAL", "UANA", "UBEN", "UCAL"]
    _add(database, *(_deal(f"Account {i}", owner_id=owner) for i, owner in enumerate(owners)))
    with database.session() as session:
        streamed = list(
            ReminderRepository(session).stream_deal_facts(quarter=QUARTER, owner_ids=set(owners))
        )
        listed = ReminderRepository(session).deal_facts(quarter=QUARTER, owner_ids=set(owners))
    assert streamed == listed
    assert [f.owner_id for f in streamed] == sorted(owners)  # each owner's deals contiguous


def test_streamed_facts_past_the_first_batch_are_typed_as_sqlalchemy_types_them(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the first batch the rows come from the driver and are converted by the columns'
    # own processors: batches of one, so every deal but the first takes that path.
    monkeypatch.setattr("storage.facts.FACTS_BATCH", 1)
    entered = dt.datetime(2026, 10, 1, 8, 15, 30, 123456, tzinfo=ZoneInfo("Europe/Paris"))
    ids = _add(
        database,
        _deal("Initech", amount=Decimal("40000.50"), close_date=dt.date(2026, 12, 20)),
        _deal(
            "Hooli",
            amount=Decimal("0"),
            close_date=dt.date(2027, 1, 5),
            stage_entered_at=entered,
            last_touch_at=NOW - dt.timedelta(days=2),
            buying_criteria="SSO",
        ),
        _deal("Globex"),  # no amount, no close date, no activity: every value None
        _deal(
            "Umbrella",
            status="won",
            amount=Decimal("12.34"),
            close_date=dt.date(2026, 11, 20),
            closed_at=NOW - dt.timedelta(days=3),
            close_reason="Champion",
        ),
    )
    with database.session() as session:
        session.add(
            NextStep(deal_id=ids[0], what="Demo", due_date=dt.date(2026, 12, 1), created_by="UREP")
        )
    closed_since = NOW - dt.timedelta(days=30)
    statement, parameters = deal_facts_query(
        quarter=QUARTER, closed_since=closed_since, deal_ids=ids
    )
    with database.session() as session:
        expected = [_facts_of(row) for row in session.execute(statement, parameters)]
        streamed = list(
            ReminderRepository(session).stream_deal_facts(
                quarter=QUARTER, closed_since=closed_since, deal_ids=ids
            )
        )
    assert len(streamed) == 4
    assert streamed == expected
    for got, want in zip(streamed, expected, strict=True):
        assert [type(value) for value in got] == [type(value) for value in want]
    by_account = {facts.account: facts for facts in streamed}
    assert by_account["Hooli"].stage_entered_at == entered
    assert by_account["Hooli"].stage_entered_at.utcoffset() == dt.timedelta(0)
    assert by_account["Initech"].amount == Decimal("40000.50")
    assert by_account["Initech"].next_step_due == dt.date(2026, 12, 1)
    assert by_account["Umbrella"].closed_at == NOW - dt.timedelta(days=3)


@pytest.mark.parametrize("later", ["last_touch_at", "updated_at"])
def test_last_activity_is_the_later_of_the_last_touch_and_the_last_update(
    database: Database, later: str
) -> None:
    early, late = NOW - dt.timedelta(days=20), NOW - dt.timedelta(days=3)
    times = {"last_touch_at": early, "updated_at": early, later: late}
    (deal_id,) = _add(database, _deal("Initech", **times))
    with database.session() as session:
        (facts,) = ReminderRepository(session).deal_facts(quarter=QUARTER, deal_ids=[deal_id])
    assert facts.last_activity_at == late
