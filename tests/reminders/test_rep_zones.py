"""Every deal owner is chased, team or not, in their own Slack timezone."""

from __future__ import annotations

import datetime as dt

from bot.jobs_cli import build_scheduler
from domain.clock import FixedClock
from tests.reminders.world import ANA, BEN, PIERRE, World

UTC = dt.UTC
CREATED = dt.datetime(2026, 10, 1, 12, tzinfo=UTC)
OVERDUE = dt.date(2026, 10, 20)
SOLO = "U0SOLO"  # logs deals before any admin builds a team
CHASE = "chase-next-steps"


def users_info_asked(world: World) -> list[str]:
    return sorted(call.args["user"] for call in world.slack.calls_to("users.info"))


def test_a_rep_on_no_team_is_chased_at_nine_in_their_own_slack_timezone(
    any_world: World,
) -> None:
    world = any_world
    world.slack.set_user(SOLO, tz="Asia/Tokyo")
    world.new_deal(SOLO, "Umbrella", at=CREATED, step_due=OVERDUE)
    # Monday 23 Nov 2026, 9:00 in Tokyo: 00:00 UTC (Sunday evening in New York).
    nine_in_tokyo = dt.datetime(2026, 11, 23, 0, tzinfo=UTC)
    clock = FixedClock(at=nine_in_tokyo + dt.timedelta(minutes=1))
    scheduler = build_scheduler(
        world.settings, database=world.database, client=world.client, clock=clock
    )
    scheduler.refresh_zones()
    assert "Asia/Tokyo" in scheduler.zones_for(scheduler.jobs[CHASE])
    summary = scheduler.fire(CHASE, "Asia/Tokyo", nine_in_tokyo)
    assert summary is not None and summary.sent == 1
    (dm,) = world.dms_to(SOLO)
    assert "Umbrella" in dm["text"] or "Umbrella" in str(dm["blocks"])
    (message,) = world.outbox(CHASE)
    assert (message.recipient, message.period) == (SOLO, "2026-11-23")  # Tokyo's Monday


def test_a_rep_whose_slack_timezone_differs_from_the_teams_is_chased_by_their_own(
    world: World,
) -> None:
    # Ben sits on the New York team but works from Los Angeles.
    world.slack.set_user(BEN, tz="America/Los_Angeles")
    world.new_deal(ANA, "Initech", at=CREATED, step_due=OVERDUE)
    world.new_deal(BEN, "Stark", at=CREATED, step_due=OVERDUE)
    # 9:30 in New York is 6:30 in Los Angeles: quiet hours for Ben.
    world.run(CHASE, dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC))
    assert [m.recipient for m in world.outbox(CHASE)] == [ANA]
    # 9:30 in Los Angeles.
    world.run(CHASE, dt.datetime(2026, 11, 23, 17, 30, tzinfo=UTC))
    assert len(world.dms_to(BEN)) == 1 and len(world.dms_to(ANA)) == 1


def test_slack_zones_are_cached_and_asked_again_a_day_later(world: World) -> None:
    world.new_deal(ANA, "Initech", at=CREATED, step_due=OVERDUE)
    world.new_deal(PIERRE, "Airbus", at=CREATED, step_due=OVERDUE)
    monday = dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
    world.run(CHASE, monday)
    world.run(CHASE, monday + dt.timedelta(hours=2))
    assert users_info_asked(world) == [ANA, PIERRE]  # once each, the same day
    world.slack.set_user(PIERRE, tz="America/New_York")  # Pierre moved to New York
    world.run(CHASE, monday + dt.timedelta(days=1))
    assert users_info_asked(world) == [ANA, ANA, PIERRE, PIERRE]
    tuesday = [m for m in world.outbox(CHASE) if m.period == "2026-11-24"]
    assert {m.recipient for m in tuesday} == {ANA, PIERRE}  # 9:30 in New York for both


def test_a_zone_slack_will_not_give_falls_back_to_the_team_then_dealbot_timezone(
    world: World,
) -> None:
    world.slack.set_response("users.info", {"ok": False, "error": "user_not_found"})
    world.new_deal(PIERRE, "Airbus", at=CREATED, step_due=OVERDUE)
    world.new_deal(SOLO, "Umbrella", at=CREATED, step_due=OVERDUE)
    context = world.context(dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC))
    zones = context.owners_in_scope(closed_since=CREATED)
    assert [(owner, str(zone)) for owner, zone in zones] == [
        (PIERRE, "Europe/Paris"),  # his team's
        (SOLO, "UTC"),  # DEALBOT_TIMEZONE
    ]
    context.owners_in_scope(closed_since=CREATED)
    assert users_info_asked(world) == [PIERRE, SOLO]  # the refusal is remembered for the day


def test_slack_unreachable_keeps_the_fallback_zones_and_asks_again_later(
    world: World,
) -> None:
    world.new_deal(ANA, "Initech", at=CREATED, step_due=OVERDUE)
    world.new_deal(PIERRE, "Airbus", at=CREATED, step_due=OVERDUE)
    world.slack.fail_next(100, status=503, method="users.info")
    context = world.context(dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC))
    zones = dict(context.owners_in_scope(closed_since=CREATED))
    assert {owner: str(zone) for owner, zone in zones.items()} == {
        ANA: "America/New_York",
        PIERRE: "Europe/Paris",
    }
    # One owner's failed attempts stop the refresh: an outage is not asked about per rep.
    assert {c.args["user"] for c in world.slack.calls_to("users.info", include_failed=True)} == {
        ANA
    }
    world.slack.reset()
    context.owners_in_scope(closed_since=CREATED)
    assert users_info_asked(world) == [ANA, PIERRE]
