"""Rep calibration and learned thresholds against hand-computed fixtures, on both backends.

The deals are written as dealbot's history keeps them: a row per tracked field at creation,
each later change, and at closing the status, the closed stage and the close date moved
from the planned day to the day it closed (the history convention).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlalchemy.orm import Session

from domain.checks import ChecksConfig, bundled_checks, parse_checks
from domain.forecast import LearnedThresholds
from domain.fx import Rate, RateBook
from reminders.calibration import (
    checks_for_team,
    checks_in_effect,
    learned_thresholds,
    rep_calibration,
)
from storage.calibration import CalibrationRepository
from storage.database import Database
from storage.models import Deal, DealChange, PostMortem

NY = ZoneInfo("America/New_York")
ANA, BEN, CARL = "U0ANA", "U0BEN", "U0CARL"
TODAY = dt.date(2026, 12, 2)  # Q4 2026: this window is 2026-Q1..Q4, the previous all of 2025


def at(year: int, month: int, day: int, hour: int = 15) -> dt.datetime:
    """10:00 in New York (15:00 UTC) unless told: the same calendar day in both zones."""
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


Change = tuple[str, str | None, str | None, dt.datetime]


def add_deal(
    session: Session,
    account: str,
    *,
    owner: str = ANA,
    status: str = "won",
    created: dt.datetime,
    closed: dt.datetime | None,
    close: str | None = None,
    forecast: str = "pipeline",
    stage: str = "discovery",
    amount: int | None = 10_000,
    currency: str = "USD",
    changes: tuple[Change, ...] = (),
    post_mortem: bool = False,
    deleted: bool = False,
) -> Deal:
    """Add a deal and its history; `close` is the close date at creation (ISO)."""
    planned = close
    for field, _, new, _ in changes:
        if field == "close_date":
            planned = new
    closed_day = closed.astimezone(NY).date().isoformat() if closed else None
    deal = Deal(
        account=account,
        account_key=account.lower(),
        owner_id=owner,
        amount=Decimal(amount) if amount is not None else None,
        currency=currency,
        stage={"won": "closed_won", "lost": "closed_lost"}.get(status, stage),
        status=status,
        close_date=dt.date.fromisoformat(closed_day or planned)
        if (closed_day or planned)
        else None,
        # Its category now: the last one its history gives.
        forecast_category=next(
            (new for field, _, new, _ in reversed(changes) if field == "forecast_category"),
            forecast,
        ),
        created_by=owner,
        created_at=created,
        closed_at=closed,
        deleted_at=closed if deleted else None,
        close_reason=None if status != "lost" else "went elsewhere",
    )
    session.add(deal)
    session.flush()
    rows: list[Change] = [
        ("stage", None, stage, created),
        ("forecast_category", None, forecast, created),
    ]
    if close:
        rows.append(("close_date", None, close, created))
    rows.extend(changes)
    if closed is not None:
        last_stage = [c[2] for c in rows if c[0] == "stage"][-1]
        rows.append(("stage", last_stage, deal.stage, closed))
        rows.append(("status", "open", status, closed))
        if planned != closed_day:
            rows.append(("close_date", planned, closed_day, closed))
    for field, old, new, when in rows:
        session.add(
            DealChange(
                deal_id=deal.id,
                field=field,
                old_value=old,
                new_value=new,
                changed_by=owner,
                changed_at=when,
            )
        )
    if post_mortem:
        session.add(
            PostMortem(deal_id=deal.id, outcome=status, primary_reason="price", submitted_by=owner)
        )
    return deal


def seed_calibration(session: Session) -> None:
    # --- Ana, the last four quarters ---
    # Committed 10 Mar with 30 Apr in force; pushed to 15 May after; won 12 May: 12 days late.
    add_deal(
        session,
        "Initech",
        created=at(2026, 3, 1),
        closed=at(2026, 5, 12),
        close="2026-04-30",
        changes=(
            ("forecast_category", "pipeline", "commit", at(2026, 3, 10)),
            ("close_date", "2026-04-30", "2026-05-15", at(2026, 4, 20)),
        ),
        post_mortem=True,
    )
    # Never committed; lost 20 Aug. 30 days before (21 Jul) the date was 15 Aug: 5 days late.
    add_deal(
        session,
        "Globex",
        status="lost",
        created=at(2026, 6, 1),
        closed=at(2026, 8, 20),
        close="2026-07-31",
        changes=(("close_date", "2026-07-31", "2026-08-15", at(2026, 7, 1)),),
    )
    # Commit from creation, called 31 Oct; won 20 Oct: 11 days early.
    add_deal(
        session,
        "Hooli",
        created=at(2026, 9, 1),
        closed=at(2026, 10, 20),
        close="2026-10-31",
        forecast="commit",
    )
    # Created with no date; commit and 15 Nov set in one command; lost on 15 Nov: on the day.
    # Closed 20:00 UTC, 15:00 in New York: still the 15th there.
    add_deal(
        session,
        "Umbrella",
        status="lost",
        created=at(2026, 9, 1),
        closed=at(2026, 11, 15, hour=20),
        changes=(
            ("forecast_category", "pipeline", "commit", at(2026, 9, 15)),
            ("close_date", None, "2026-11-15", at(2026, 9, 15)),
        ),
    )
    # --- Ana, the four quarters before (2025) ---
    # Won 1 Jan 03:00 UTC = 31 Dec 22:00 in New York: 2025's, 16 days after 15 Dec.
    add_deal(
        session,
        "Vandelay",
        created=at(2025, 10, 1),
        closed=at(2026, 1, 1, hour=3),
        close="2025-12-15",
    )
    # Commit from creation, called 30 Jun, won 20 Jun: 10 days early.
    add_deal(
        session,
        "Soylent",
        created=at(2025, 4, 1),
        closed=at(2025, 6, 20),
        close="2025-06-30",
        forecast="commit",
    )
    # Never committed, called 31 Mar, lost 10 Apr: 10 days late.
    add_deal(
        session,
        "Tyrell",
        status="lost",
        created=at(2025, 2, 1),
        closed=at(2025, 4, 10),
        close="2025-03-31",
    )
    # --- not counted ---
    add_deal(
        session, "TooOld", created=at(2024, 10, 1), closed=at(2024, 12, 15), close="2024-12-31"
    )
    add_deal(session, "Deleted", created=at(2026, 6, 1), closed=at(2026, 7, 1), deleted=True)
    add_deal(session, "StillOpen", status="open", created=at(2026, 6, 1), closed=None)
    add_deal(session, "Carls", owner=CARL, created=at(2026, 6, 1), closed=at(2026, 7, 1))
    # --- Ben: one win, never given a close date ---
    add_deal(session, "Wonka", owner=BEN, created=at(2026, 5, 1), closed=at(2026, 6, 1))


def test_rep_calibration_matches_the_hand_computation(database: Database) -> None:
    with database.session() as session:
        seed_calibration(session)
    with database.session() as session:
        figures = rep_calibration(session, rep_ids=[ANA, BEN, "U0NOBODY"], zone=NY, today=TODAY)
    assert set(figures) == {ANA, BEN}  # nothing closed, no figures; Carl was not asked about
    ana = figures[ANA]
    assert ana.closed_deals == 4
    assert (ana.on_time, ana.called) == (2, 4)  # Hooli, Umbrella
    assert ana.close_date_hit_rate == Decimal("0.50")
    assert ana.mean_slip_days == Decimal("1.5")  # (12 + 5 − 11 + 0) ÷ 4
    assert ana.commit_to_won == Decimal("0.67")  # Initech, Hooli won of 3 committed
    before = ana.previous
    assert before is not None and before.previous is None
    assert before.closed_deals == 3
    assert (before.on_time, before.called) == (1, 3)  # Soylent
    assert before.close_date_hit_rate == Decimal("0.33")
    assert before.mean_slip_days == Decimal("5.3")  # (16 − 10 + 10) ÷ 3
    assert before.commit_to_won == Decimal("1.00")  # Soylent, the only one committed
    ben = figures[BEN]
    assert (ben.closed_deals, ben.called, ben.on_time) == (1, 0, 0)
    assert ben.close_date_hit_rate is None and ben.mean_slip_days is None
    assert ben.commit_to_won is None and ben.previous is None


def test_the_window_turns_with_the_quarter_in_the_teams_zone(database: Database) -> None:
    with database.session() as session:
        seed_calibration(session)
    with database.session() as session:
        # In 2027-Q2 the window is 2026-Q3..2027-Q2: Globex, Hooli, Umbrella; the four
        # quarters before hold Initech and Vandelay (Soylent and Tyrell fall out).
        later = rep_calibration(session, rep_ids=[ANA], zone=NY, today=dt.date(2027, 4, 1))
        # Vandelay closed at 03:00 UTC on 1 Jan 2026, which is still 2025 in New York but
        # 2026 in Tokyo: the zone decides which window it falls in.
        tokyo = rep_calibration(session, rep_ids=[ANA], zone=ZoneInfo("Asia/Tokyo"), today=TODAY)
    assert later[ANA].closed_deals == 3
    assert later[ANA].previous is not None and later[ANA].previous.closed_deals == 2
    assert tokyo[ANA].closed_deals == 5
    assert tokyo[ANA].previous is not None and tokyo[ANA].previous.closed_deals == 2


def test_closed_deals_read_every_reps_history_in_two_statements(database: Database) -> None:
    with database.session() as session:
        seed_calibration(session)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        with database.session() as session:
            deals = CalibrationRepository(session).closed_deals(
                owner_ids=[ANA, BEN],
                closed_from=at(2025, 1, 1, hour=5),
                closed_before=at(2026, 12, 3, hour=5),
            )
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2
    assert len(deals) == 8  # Ana's 7 in the two windows and Ben's win
    initech = next(d for d in deals if d.closed_at == at(2026, 5, 12))
    assert initech.has_post_mortem and initech.status == "won"
    assert [h.field for h in initech.history if h.field != "stage"] == [
        "forecast_category",
        "close_date",
        "forecast_category",
        "close_date",
        "close_date",
    ]
    assert all(h.field != "status" for d in deals for h in d.history)


# --- learned thresholds -----------------------------------------------------------------------

# (account, status, amount, currency, days in discovery, in demo (None: skipped), in proposal)
WON_AND_LOST = (
    ("W1", "won", 10_000, "USD", 5, 10, 15),  # 30 days to close, < 25k
    ("W2", "won", 23_000, "EUR", 10, 10, 20),  # 40 days; €23,000 = $25,300: 25k–100k
    ("W3", "won", 30_000, "USD", 3, 7, 40),  # 50 days, 25k–100k
    ("W4", "won", 50_000, "EUR", 8, 13, 40),  # 61 days, $55,000: 25k–100k
    ("W5", "won", 100_000, "USD", 20, None, 70),  # 90 days, ≥ 100k
    ("W6", "won", None, "USD", 12, None, 8),  # 20 days, no amount: in no segment
    ("L1", "lost", 24_000, "USD", 100, None, 10),  # < 25k; a lost deal's days do not count
    ("L2", "lost", 25_000, "USD", 5, 5, 5),  # 25k–100k (25k is in it)
    ("L3", "lost", 200_000, "USD", 5, None, 5),  # ≥ 100k
    ("L4", "lost", 5_000, "GBP", 5, None, 5),  # no GBP rate: in no segment
)


def seed_learning(session: Session) -> None:
    start = at(2026, 6, 1)
    for account, status, amount, currency, discovery, demo, proposal in WON_AND_LOST:
        moves: list[Change] = []
        entered = start + dt.timedelta(days=discovery)
        if demo is not None:
            moves.append(("stage", "discovery", "demo", entered))
            entered += dt.timedelta(days=demo)
        moves.append(("stage", "demo" if demo is not None else "discovery", "proposal", entered))
        add_deal(
            session,
            account,
            status=status,
            amount=amount,
            currency=currency,
            created=start,
            closed=entered + dt.timedelta(days=proposal),
            changes=tuple(moves),
            post_mortem=account in ("W1", "L1"),
        )
    # Outside the last four quarters: not learned from.
    add_deal(session, "Old", created=at(2025, 3, 1), closed=at(2025, 3, 2))


RATES = RateBook("USD", [Rate("EUR", dt.date(2026, 1, 1), Decimal("1.10"))])


def test_learned_thresholds_match_the_hand_computation(database: Database) -> None:
    with database.session() as session:
        seed_learning(session)
    with database.session() as session:
        learned = learned_thresholds(
            session, rep_ids=[ANA], zone=NY, today=TODAY, currency="USD", rates=RATES
        )
    assert learned.deals_counted == 10
    assert learned.win_rate == Decimal("0.60")
    assert learned.required_coverage == Decimal("1.67")  # 10 ÷ 6
    assert learned.by_segment == (
        ("< 25k", Decimal("0.50"), 30),  # W1 of W1, L1
        ("25k–100k", Decimal("0.75"), 50),  # W2, W3, W4 of 4; (40 + 50 + 61) ÷ 3
        ("≥ 100k", Decimal("0.50"), 90),  # W5 of W5, L3
    )
    # Discovery, six won: 3 5 8 10 12 20, the 5th of 6 (80%) is 12. Proposal: 8 15 20 40 40
    # 70 → 40. Demo: four won deals only, so its limit stays the file's.
    assert learned.stalled_days == (("discovery", 12), ("proposal", 40))
    # Every deal reached discovery and proposal; W1–W4 and L2 reached demo. Days: the won
    # deals' average there, 58 ÷ 6, 40 ÷ 4 and 193 ÷ 6.
    assert learned.by_stage == (
        ("discovery", Decimal("0.60"), 10),
        ("demo", Decimal("0.80"), 10),
        ("proposal", Decimal("0.60"), 32),
    )
    assert learned.post_mortems == 2  # W1, L1


def test_a_team_that_opts_in_checks_stalled_deals_against_the_learned_limits(
    database: Database,
) -> None:
    with database.session() as session:
        seed_learning(session)
    with database.session() as session:
        learned = learned_thresholds(
            session, rep_ids=[ANA], zone=NY, today=TODAY, currency="EUR", rates=RATES
        )
    opted_in = parse_checks("version: 1\nchecks: {}\nthresholds: learned\n", source="team.yml")
    config = checks_in_effect(opted_in, learned)
    limit = config.limit
    assert limit("STALLED_IN_STAGE", "max_days", "discovery") == 12
    assert limit("STALLED_IN_STAGE", "max_days", "proposal") == 40
    assert limit("STALLED_IN_STAGE", "max_days", "demo") == 30  # the file's default
    assert limit("STALLED_IN_STAGE", "max_days", "prospecting") == 21  # the file's own
    # Reported in euros ($1 = €1 ÷ 1.10) the segments move: W5's $100,000 is €90,909.09.
    assert learned.by_segment == (
        ("< 25k", Decimal("0.50"), 35),  # W1, W2 of W1, W2, L1, L2 (€22,727.27)
        ("25k–100k", Decimal("1.00"), 67),  # W3, W4, W5; (50 + 61 + 90) ÷ 3
        ("≥ 100k", Decimal("0.00"), None),  # L3 alone
    )
    fixed = checks_in_effect(bundled_checks(), learned)
    assert fixed.limit("STALLED_IN_STAGE", "max_days", "discovery") == 30


def test_a_team_on_fixed_thresholds_reads_nothing_and_keeps_the_files_limits(
    database: Database,
) -> None:
    with database.session() as session:
        seed_learning(session)

    def checks_of(session: Session, config: ChecksConfig) -> tuple[ChecksConfig, object]:
        return checks_for_team(
            session, config, rep_ids=[ANA], zone=NY, today=TODAY, currency="USD", rates=RATES
        )

    opted_in = parse_checks("version: 1\nchecks: {}\nthresholds: learned\n")
    with database.session() as session:
        fixed, nothing = checks_of(session, bundled_checks())
        learned_config, learned = checks_of(session, opted_in)
    assert nothing is None and fixed is bundled_checks()
    assert isinstance(learned, LearnedThresholds)
    assert learned.stalled_days == (("discovery", 12), ("proposal", 40))
    assert learned_config.limit("STALLED_IN_STAGE", "max_days", "discovery") == 12
