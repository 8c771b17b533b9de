"""The jobs against the fake Slack Web API, with a frozen clock, across timezones and DST."""

from __future__ import annotations

import datetime as dt
import gc
from typing import Any

import pytest
from sqlalchemy import select

from bot.jobs_cli import build_scheduler
from domain.changes import DealRef
from domain.clock import FixedClock
from domain.deals import Actor
from domain.nudges import snooze_deal
from reminders.jobs import JOB_PROCESS_GC_THRESHOLD, collect_garbage_less_often, load_jobs
from reminders.scheduler import trigger_for
from storage.models import AccuracyScore, DealSnapshot, Nudge
from tests.e2e.harness import blocks_text
from tests.reminders.world import ANA, BEN, MARIA, NY_CHANNEL, PARIS_CHANNEL, PIERRE, ZOE, World

UTC = dt.UTC
CREATED = dt.datetime(2026, 10, 1, 12, tzinfo=UTC)
# Monday 23 Nov 2026: 9:30 in New York (EST), 15:30 in Paris (CET).
MONDAY = dt.datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


def seed(world: World) -> None:
    world.new_deal(ANA, "Initech", at=CREATED, step_due=dt.date(2026, 10, 20))  # overdue
    world.new_deal(ANA, "Globex", at=CREATED)  # no next step
    world.new_deal(ANA, "Hooli", at=CREATED, step_due=dt.date(2026, 11, 23))  # due today
    world.new_deal(
        BEN, "Stark", at=CREATED, step_due=dt.date(2026, 11, 25), close=dt.date(2026, 12, 15)
    )
    world.new_deal(
        PIERRE, "Airbus", at=CREATED, step_due=dt.date(2026, 11, 30), close=dt.date(2026, 11, 20)
    )


def text_of(message: dict[str, Any]) -> str:
    return blocks_text(message.get("blocks") or []) + "\n" + message["text"]


def recipients(world: World) -> list[str]:
    return sorted(c.args["channel"] for c in world.slack.calls_to("chat.postMessage"))


def test_chase_dms_each_rep_their_deals_that_need_a_next_step(world: World) -> None:
    seed(world)
    summary = world.run("chase-next-steps", MONDAY)
    assert summary.line() == "sent 2, pending 0, failed 0"
    assert recipients(world) == [ANA, PIERRE]  # Ben's only deal is in order
    (ana,) = world.dms_to(ANA)
    assert "Initech" in text_of(ana) and "Globex" in text_of(ana)
    assert "Hooli" not in text_of(ana)  # due today is not overdue
    assert "next step was due Tue 20 Oct" in text_of(ana)
    (pierre,) = world.dms_to(PIERRE)
    assert "close date Fri 20 Nov has passed" in text_of(pierre)
    buttons = [
        element["text"]["text"]
        for block in ana["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert buttons.count("Log next step") == 2 and buttons.count("Snooze 1 week") == 2
    assert buttons.count("Mark done") == 1  # only Initech has a step to mark done


def test_chase_records_every_nudge_when_it_writes_them_in_batches(
    any_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch per rep: the stream of facts and the nudge inserts interleave on one session.
    # On both backends: PostgreSQL writes a batch as one statement over column arrays.
    world = any_world
    monkeypatch.setattr("reminders.chase.NUDGES_BATCH", 1)
    monkeypatch.setattr("storage.facts.FACTS_BATCH", 1)
    seed(world)
    assert world.run("chase-next-steps", MONDAY).line() == "sent 2, pending 0, failed 0"
    with world.database.session() as session:
        nudged = sorted((n.rep_id, n.deal_id) for n in session.scalars(select(Nudge)))
    ids = world.deal_ids
    assert nudged == sorted([(ANA, ids["Initech"]), (ANA, ids["Globex"]), (PIERRE, ids["Airbus"])])


def test_one_chase_per_rep_per_day_however_often_it_runs(any_world: World) -> None:
    world = any_world  # a nudge recorded twice is ignored on both backends
    seed(world)
    world.run("chase-next-steps", MONDAY)
    again = world.run("chase-next-steps", MONDAY + dt.timedelta(hours=3))
    assert again.sent == 0
    assert recipients(world) == [ANA, PIERRE]
    world.run("chase-next-steps", MONDAY + dt.timedelta(days=1))
    assert recipients(world) == [ANA, ANA, PIERRE, PIERRE]


def test_quiet_hours_and_weekends_are_each_reps_own(world: World) -> None:
    seed(world)
    # 07:30 UTC: 08:30 in Paris, 02:30 in New York.
    world.run("chase-next-steps", dt.datetime(2026, 11, 23, 7, 30, tzinfo=UTC))
    assert recipients(world) == [PIERRE]
    # 19:30 UTC: 14:30 in New York, 20:30 in Paris (quiet; and Pierre had his today).
    world.run("chase-next-steps", dt.datetime(2026, 11, 23, 19, 30, tzinfo=UTC))
    assert recipients(world) == [ANA, PIERRE]
    # Saturday noon everywhere: nobody.
    world.run("chase-next-steps", dt.datetime(2026, 11, 21, 15, tzinfo=UTC))
    assert recipients(world) == [ANA, PIERRE]


def test_the_morning_follows_new_york_across_the_end_of_daylight_saving(world: World) -> None:
    seed(world)
    # 12:30 UTC is 08:30 EDT on Friday 30 Oct, but 07:30 EST (quiet) on Monday 2 Nov.
    world.run("chase-next-steps", dt.datetime(2026, 10, 30, 12, 30, tzinfo=UTC))
    assert ANA in recipients(world)
    world.slack.reset()
    world.run("chase-next-steps", dt.datetime(2026, 11, 2, 12, 30, tzinfo=UTC))
    assert recipients(world) == []
    world.run("chase-next-steps", dt.datetime(2026, 11, 2, 13, 30, tzinfo=UTC))  # 08:30 EST
    assert recipients(world) == [ANA]
    # The scheduler's 9:00 New York trigger moves from 13:00 UTC to 14:00 UTC.
    trigger = trigger_for(load_jobs()["chase-next-steps"], "America/New_York")
    before = trigger.get_next_fire_time(None, dt.datetime(2026, 10, 30, tzinfo=UTC))
    after = trigger.get_next_fire_time(None, dt.datetime(2026, 10, 31, tzinfo=UTC))
    assert before == dt.datetime(2026, 10, 30, 13, tzinfo=UTC)
    assert after == dt.datetime(2026, 11, 2, 14, tzinfo=UTC)


def test_periods_are_the_reps_local_day(world: World) -> None:
    seed(world)
    world.run("chase-next-steps", dt.datetime(2026, 11, 23, 22, 30, tzinfo=UTC))
    # 17:30 Monday in New York; Paris is past its quiet hour.
    assert [(m.recipient, m.period) for m in world.outbox()] == [(ANA, "2026-11-23")]


def test_a_snoozed_deal_is_left_out_until_the_snooze_ends(world: World) -> None:
    seed(world)
    services = world.context(MONDAY).services
    snooze_deal(
        deals=services.deals,
        database=services.database,
        clock=services.clock,
        actor=services.actor(ANA),
        deal_id=world.deal_ids["Globex"],
        days=1,
    )
    world.run("chase-next-steps", MONDAY)
    (ana,) = world.dms_to(ANA)
    assert "Globex" not in text_of(ana) and "Initech" in text_of(ana)
    world.run("chase-next-steps", MONDAY + dt.timedelta(days=1))
    assert "Globex" in text_of(world.dms_to(ANA)[-1])


def test_nothing_to_chase_sends_nothing(world: World) -> None:
    world.new_deal(BEN, "Stark", at=CREATED, step_due=dt.date(2026, 11, 25))
    assert world.run("chase-next-steps", MONDAY).line() == "sent 0, pending 0, failed 0"
    assert world.slack.calls_to("chat.postMessage") == []


def test_nudges_record_whether_the_rep_acted(world: World) -> None:
    seed(world)
    world.run("chase-next-steps", MONDAY)
    world.clock.at = MONDAY + dt.timedelta(hours=1)
    world.deals.add_next_step(
        Actor(user_id=ANA),
        DealRef(name=None, deal_id=world.deal_ids["Globex"]),
        what="Discovery call",
        due=dt.date(2026, 11, 25),
        owner_id=ANA,
    )
    world.run("manager-digest", MONDAY + dt.timedelta(hours=2))
    with world.database.session() as session:
        acted = {
            n.deal_id: n.action for n in session.scalars(select(Nudge).where(Nudge.rep_id == ANA))
        }
    assert acted == {world.deal_ids["Globex"]: "next_step", world.deal_ids["Initech"]: None}
    (digest,) = world.dms_to(MARIA)
    assert "next step overdue (acted on 0 of 1)" in text_of(digest)
    assert "no dated next step (acted on 1 of 1)" in text_of(digest)


def test_post_mortem_prompt_comes_once_two_days_after_the_close(world: World) -> None:
    seed(world)
    world.clock.at = dt.datetime(2026, 11, 20, 15, tzinfo=UTC)
    world.deals.close_deal(
        Actor(user_id=BEN), DealRef(name="Stark", deal_id=None), won=False, reason="budget"
    )
    world.run("chase-next-steps", dt.datetime(2026, 11, 20, 16, tzinfo=UTC))
    assert world.dms_to(BEN) == []  # too early
    world.run("chase-next-steps", MONDAY)
    world.run("chase-next-steps", MONDAY + dt.timedelta(days=1))
    (prompt,) = world.dms_to(BEN)
    assert "Stark" in text_of(prompt) and "post-mortem" in text_of(prompt)
    assert prompt["blocks"][1]["elements"][0]["action_id"] == "open_post_mortem"


def test_pipeline_accuracy_posts_each_teams_scores_to_its_channel(world: World) -> None:
    seed(world)
    world.run("pipeline-accuracy", MONDAY)
    posts = {c.args["channel"]: c.args for c in world.slack.calls_to("chat.postMessage")}
    assert set(posts) == {NY_CHANNEL, PARIS_CHANNEL}
    east = text_of(posts[NY_CHANNEL])
    assert "Pipeline accuracy · East · 2026-W48" in east
    assert f"<@{ANA}>" in east and f"<@{BEN}>" in east
    assert ":bulb:" in east and "pts" in east
    with world.database.session() as session:
        weeks = set(session.scalars(select(DealSnapshot.week)))
        scores = {s.rep_id: s.week for s in session.scalars(select(AccuracyScore))}
    assert weeks == {"2026-W48"} and scores == {
        ANA: "2026-W48",
        BEN: "2026-W48",
        PIERRE: "2026-W48",
    }
    # A week later Ana has fixed Globex: the post shows the change.
    world.clock.at = MONDAY + dt.timedelta(days=6)
    world.deals.add_next_step(
        Actor(user_id=ANA),
        DealRef(name=None, deal_id=world.deal_ids["Globex"]),
        what="Discovery call",
        due=dt.date(2026, 12, 1),
        owner_id=ANA,
    )
    world.run("pipeline-accuracy", MONDAY + dt.timedelta(days=7))
    latest = text_of(world.slack.calls_to("chat.postMessage")[-2].args) + text_of(
        world.slack.calls_to("chat.postMessage")[-1].args
    )
    assert "since last week" in latest


def test_manager_digest_dms_each_manager_with_a_chart(world: World) -> None:
    seed(world)
    world.clock.at = MONDAY - dt.timedelta(days=2)
    world.deals.close_deal(
        Actor(user_id=BEN), DealRef(name="Stark", deal_id=None), won=True, reason="ROI case"
    )
    summary = world.run("manager-digest", MONDAY)
    assert summary.line() == "sent 2, pending 0, failed 0"
    (maria,) = world.dms_to(MARIA)
    text = text_of(maria)
    assert "East · week 2026-W48" in text
    assert "Won (1)" in text and "Stark" in text and "ROI case" in text
    # Stark's $50,000 won is Ben's (no quota); Ana's quota is the team's: 25% attained.
    assert f"<@{BEN}>: won *$50,000*" in text and "no quota set" in text
    assert "quota $200,000 · attainment *0%*" in text  # Ana's
    assert "quota $200,000 · attainment *25%*" in text  # the team's
    assert "win rate *100%*" in text
    assert len(world.dms_to(ZOE)) == 1
    uploads = world.slack.calls_to("files.completeUploadExternal")
    assert sorted(c.args["channel_id"] for c in uploads) == [f"D{MARIA}", f"D{ZOE}"]
    charts = list(world.slack.uploads.values())
    assert len(charts) == 2 and all(f.content.startswith(b"\x89PNG") for f in charts)


def test_scheduler_lists_each_job_with_its_next_run(world: World) -> None:
    seed(world)
    scheduler = build_scheduler(
        world.settings,
        database=world.database,
        client=world.client,
        clock=FixedClock(at=MONDAY),
    )
    assert set(scheduler.jobs) >= {"chase-next-steps", "pipeline-accuracy", "manager-digest"}
    assert scheduler.refresh_zones() == 3  # Ana, Ben and Pierre own deals
    chase = scheduler.jobs["chase-next-steps"]
    # Paris's 9:00 on Tuesday comes before New York's.
    assert scheduler.next_run(chase) == dt.datetime(2026, 11, 24, 8, tzinfo=UTC)
    assert scheduler.zones_for(chase) == ["America/New_York", "Europe/Paris"]


def test_a_missed_firing_is_caught_up_once_after_downtime(world: World) -> None:
    seed(world)
    scheduler = build_scheduler(
        world.settings, database=world.database, client=world.client, clock=FixedClock(at=MONDAY)
    )
    caught = scheduler.catch_up()
    assert {(f.job, f.scope) for f in caught} >= {("chase-next-steps", "America/New_York")}
    assert scheduler.catch_up() == []  # the firing rows say it already ran
    chases = [(m.recipient, m.status) for m in world.outbox("chase-next-steps")]
    assert chases == [(ANA, "sent")]  # Paris's 9:00 is outside the catch-up window
    assert len(world.dms_to(ANA)) == len({m.id for m in world.outbox() if m.recipient == ANA})


def test_the_scheduler_keeps_one_trigger_per_job_and_team_timezone(world: World) -> None:
    seed(world)
    scheduler = build_scheduler(
        world.settings, database=world.database, client=world.client, clock=FixedClock(at=MONDAY)
    )
    scheduler.jobs = {
        name: job for name, job in scheduler.jobs.items() if name != "draft-follow-ups"
    }
    scheduler.start()
    try:
        assert scheduler._scheduler is not None
        ids = {job.id for job in scheduler._scheduler.get_jobs()}
        assert {"chase-next-steps@America/New_York", "chase-next-steps@Europe/Paris"} <= ids
        assert "manager-digest@Europe/Paris" in ids and "refresh-triggers" in ids
        assert "deliver-pending" in ids
        defaults = scheduler._scheduler._job_defaults
        assert defaults["coalesce"] is True and defaults["max_instances"] == 1
    finally:
        scheduler.shutdown()


def test_a_process_running_jobs_collects_garbage_less_often_never_more() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        collect_garbage_less_often()
        assert gc.get_threshold() == (JOB_PROCESS_GC_THRESHOLD, 10, 10)
        gc.set_threshold(JOB_PROCESS_GC_THRESHOLD * 2, 10, 10)
        collect_garbage_less_often()  # an operator's higher setting stays
        assert gc.get_threshold() == (JOB_PROCESS_GC_THRESHOLD * 2, 10, 10)
    finally:
        gc.set_threshold(*saved)
