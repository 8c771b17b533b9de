"""`chase-next-steps`: each rep's morning DM of open deals that need a next step.

Weekdays at 9:00 in each rep's timezone, for every owner of open deals, on a team or not.
A rep's zone is their Slack profile's, else their team's, else DEALBOT_TIMEZONE
(`reminders/rep_zones.py`). A rep gets at most one chase a day (the outbox key is the rep's
local day), never in quiet hours or at weekends of their own zone (the checks file's
`nudges`), and only about deals that fire a `chase` check and are not snoozed. The same
job sends the post-mortem prompt for a deal closed two days ago without one, once per deal.

A rep's deals are checked as their team's are in the weekly accuracy post: with
`thresholds: learned`, STALLED_IN_STAGE's limits are the ones their team's won deals teach
(`reminders.accuracy.team_checks`), learned once per team per run. A rep on no team is
held to the checks file's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping
from zoneinfo import ZoneInfo

from domain.checks import ChecksConfig, DealFacts, fired_checks
from domain.dates import quarter_bounds
from domain.nudges import ChaseItem
from reminders.accuracy import TeamScope, all_teams, team_checks
from reminders.jobs import (
    REP_TIMEZONE,
    Job,
    JobContext,
    OutgoingMessage,
    Schedule,
    day_period,
    message_of,
)
from storage.facts import ReminderRepository
from storage.fx import FxRepository
from storage.nudges import NudgeRepository

NAME = "chase-next-steps"
POST_MORTEM_AFTER = dt.timedelta(days=2)
# A deal closed longer ago than this is not worth a first prompt any more.
POST_MORTEM_WINDOW = dt.timedelta(days=14)
# Nudges written per INSERT while a run streams (a million-deal run records ~600,000).
NUDGES_BATCH = 10_000


def _stop_sending_at(local_now: dt.datetime, config: ChecksConfig) -> dt.datetime:
    """Return when today's chase is no longer worth sending: quiet hours or the day's end."""
    zone = local_now.tzinfo
    end_of_day = dt.datetime.combine(local_now.date() + dt.timedelta(days=1), dt.time(), zone)
    quiet = dt.datetime.combine(local_now.date(), config.nudges.quiet_start, zone)
    return min(quiet, end_of_day) if quiet > local_now else end_of_day


def checks_by_rep(
    context: JobContext, config: ChecksConfig, reps: Collection[str]
) -> Mapping[str, ChecksConfig]:
    """Return the checks each of `reps` on a team is held to; a rep absent keeps `config`.

    Only `thresholds: learned` (the file's, or a team's under `teams:`) makes a team's
    checks differ from the file's, so with `fixed` everywhere nothing is read. Each team's
    limits are learned once, however many deals.
    """
    if not config.learns_anywhere:
        return {}
    # A rep is on one team at most (domain/teams.py refuses a second).
    team_of: dict[str, TeamScope] = {
        rep: team for team in all_teams(context) for rep in team.reps if rep in reps
    }
    needed = {team.team_id: team for team in team_of.values()}
    with context.database.session() as session:
        rates = FxRepository(session).rate_book(context.settings.dealbot_currency)
        learned = {
            team_id: team_checks(session, config, team, context.now, rates)
            for team_id, team in needed.items()
        }
    return {rep: learned[team.team_id] for rep, team in team_of.items()}


def plan_chase(
    context: JobContext, config: ChecksConfig | None = None
) -> Iterator[OutgoingMessage]:
    """Yield the chase DMs and post-mortem prompts due as of `context.now`; record nudges.

    A generator: at a million deals the DMs are tens of thousands, and `run_job` records
    them in batches as they come rather than holding every rendered message at once.
    """
    config = config or context.checks()
    closed_since = context.now - POST_MORTEM_WINDOW - dt.timedelta(days=1)
    awake: dict[str, ZoneInfo] = {
        rep: zone
        for rep, zone in context.owners_in_scope(closed_since=closed_since)
        if config.nudges.allows(context.now.astimezone(zone))
    }
    if not awake:
        return
    today_of = {rep: context.now.astimezone(zone).date() for rep, zone in awake.items()}
    rep_config = checks_by_rep(context, config, awake)
    prompts: list[DealFacts] = []
    nudges: list[dict[str, object]] = []

    def chase_rep(rep: str, items: list[ChaseItem]) -> OutgoingMessage:
        local_now = context.now.astimezone(awake[rep])
        period = day_period(context.now, awake[rep])
        nudges.extend(
            {
                "period": period,
                "rep_id": rep,
                "deal_id": item.deal.deal_id,
                "checks": ",".join(item.checks),
                "nudged_at": context.now,
            }
            for item in items
        )
        if len(nudges) >= NUDGES_BATCH:
            record(nudges)
        return message_of(
            context.render.chase_message(items, local_now.date()),
            recipient=rep,
            subject="chase",
            period=period,
            not_after=_stop_sending_at(local_now, config),
        )

    def record(rows: list[dict[str, object]]) -> None:
        # A short write of its own: the read below stays a plain read, and on SQLite the
        # outbox can be written while the facts are still streaming.
        with context.database.session() as writer:
            NudgeRepository(writer).record_nudges(rows)
        rows.clear()

    with context.database.session() as session:
        NudgeRepository(session).mark_acted(at=context.now)
        snoozed = NudgeRepository(session).snoozed_until()
    with context.database.session() as session:
        # Facts arrive sorted by owner: each rep's DM is rendered, and their facts dropped,
        # as soon as the next owner's rows start (memory grows with one rep's deals).
        facts = ReminderRepository(session).stream_deal_facts(
            quarter=quarter_bounds(context.now.date()),
            closed_since=closed_since,
            owner_ids=list(awake),
        )
        rep, items = "", []
        window_start = context.now - POST_MORTEM_WINDOW
        window_end = context.now - POST_MORTEM_AFTER
        chase_only = config.chase
        for deal in facts:
            if deal.owner_id != rep:
                if items:
                    yield chase_rep(rep, items)
                rep, items = deal.owner_id, []
                today, zone = today_of[rep], awake[rep]
                checks = rep_config.get(rep, config)
            if deal.status == "open":
                if deal.deal_id in snoozed and snoozed[deal.deal_id] > today:
                    continue
                fired = fired_checks(deal, today, checks, zone=zone, only=chase_only)
                if fired:
                    items.append(ChaseItem(deal=deal, checks=fired))
            elif (
                not deal.has_post_mortem
                and deal.closed_at is not None
                and window_start <= deal.closed_at <= window_end
            ):
                prompts.append(deal)
        if items:
            yield chase_rep(rep, items)
    record(nudges)
    for deal in prompts:
        yield message_of(
            context.render.post_mortem_prompt(deal),
            recipient=deal.owner_id,
            # "once": the key is the deal, so the prompt is sent one time, ever.
            subject=f"post-mortem:{deal.deal_id}",
            period="once",
        )


JOB = Job(
    name=NAME,
    description="DM each rep their open deals with no next step, an overdue one, or a past "
    "close date (and a post-mortem prompt two days after a close)",
    schedule=Schedule(
        cron={"day_of_week": "mon-fri", "hour": "9", "minute": "0"}, timezone=REP_TIMEZONE
    ),
    plan=plan_chase,
)
