"""`rep-calibration`: the monthly private DM of a rep's calibration, through the fake Slack."""

from __future__ import annotations

import datetime as dt

from reminders.jobs import load_jobs
from reminders.scheduler import trigger_for
from tests.e2e.harness import blocks_text
from tests.reminders.world import ANA, BEN, PIERRE, World
from tests.storage.test_calibration import add_deal, at

UTC = dt.UTC
# Monday 7 Dec 2026, the month's first Monday: 9:00 in New York.
FIRST_MONDAY = dt.datetime(2026, 12, 7, 14, tzinfo=UTC)
EXPECTED = (
    "Your calls over the last 4 quarters: 1 of 2 closed by the date you called "
    "(50%, up from 0%) · on average 1 day late · commit → won 100%"
)


def seed(world: World) -> None:
    with world.database.session() as session:
        # Committed from the start with 30 Apr called; won 12 May: 12 days late.
        add_deal(
            session,
            "Initech",
            created=at(2026, 3, 2),
            closed=at(2026, 5, 12),
            close="2026-04-30",
            forecast="commit",
        )
        # Never committed, 30 Sep in force a month before; won 20 Sep: 10 days early.
        add_deal(
            session, "Globex", created=at(2026, 6, 1), closed=at(2026, 9, 20), close="2026-09-30"
        )
        # The year before: lost 15 Jul against 30 Jun called, the one call of 2025.
        add_deal(
            session,
            "Hooli",
            status="lost",
            created=at(2025, 5, 1),
            closed=at(2025, 7, 15),
            close="2025-06-30",
        )
        # Ben and Pierre own open deals but closed nothing: no DM for them.
        add_deal(
            session, "Vandelay", owner=BEN, status="open", created=at(2026, 11, 1), closed=None
        )
        add_deal(
            session, "Michelin", owner=PIERRE, status="open", created=at(2026, 11, 1), closed=None
        )


def test_each_rep_who_closed_deals_gets_their_calibration_privately_once_a_month(
    world: World,
) -> None:
    seed(world)
    summary = world.run("rep-calibration", FIRST_MONDAY)
    assert (summary.sent, summary.failed) == (1, 0)
    [dm] = world.dms_to(ANA)
    assert dm["text"] == EXPECTED
    shown = blocks_text(dm["blocks"])
    assert EXPECTED in shown
    assert "The 4 quarters before: 0 of 1 closed by the date you called (0%)" in shown
    assert "on average 15 days late" in shown
    assert world.dms_to(BEN) == [] and world.dms_to(PIERRE) == []
    [recorded] = world.outbox("rep-calibration")
    assert (recorded.recipient, recorded.period) == (ANA, "2026-12")

    # A rerun the same month (a restart, a catch-up, a second instance) sends nothing.
    again = world.run("rep-calibration", FIRST_MONDAY + dt.timedelta(days=7))
    assert again.sent == 0
    assert len(world.dms_to(ANA)) == 1

    # January's is a new month: sent again.
    world.run("rep-calibration", dt.datetime(2027, 1, 4, 14, tzinfo=UTC))
    assert len(world.dms_to(ANA)) == 2
    assert sorted(m.period for m in world.outbox("rep-calibration")) == ["2026-12", "2027-01"]


def test_it_fires_on_the_first_monday_of_each_month_at_nine_in_the_reps_zone() -> None:
    job = load_jobs()["rep-calibration"]
    assert job.schedule.timezone == "rep"
    trigger = trigger_for(job, "America/New_York")
    fires = []
    moment = trigger.get_next_fire_time(None, dt.datetime(2026, 11, 15, tzinfo=UTC))
    for _ in range(3):
        assert moment is not None
        fires.append(moment.astimezone(UTC))
        moment = trigger.get_next_fire_time(moment, moment + dt.timedelta(seconds=1))
    # 7 Dec, 4 Jan and 1 Feb: the first Mondays, 9:00 EST (14:00 UTC).
    assert fires == [
        dt.datetime(2026, 12, 7, 14, tzinfo=UTC),
        dt.datetime(2027, 1, 4, 14, tzinfo=UTC),
        dt.datetime(2027, 2, 1, 14, tzinfo=UTC),
    ]
