"""`manager-digest`: each manager's weekly DM about their team, with a chart.

The quarter's roll-up (won, commit, best case, pipeline against quota, coverage and money
at risk, per rep and for the team, in the team's reporting currency: `domain.roll_up`), the
week over week flow since last week's snapshot, the quarter's closed figures and forecast
accuracy from history (`reminders.forecast_history`), each rep's calibration and, for a team
on learned thresholds, the figures they came from (`reminders.calibration`), the week's wins
and losses with their post-mortems, the nudges and whether reps acted on them, and a chart
(`reminders.chart`). Weekly, Monday 8:00 in the team's timezone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError

from domain.checks import ChecksConfig, DealFacts, RepScore
from domain.dates import quarter_bounds, quarter_of
from domain.fx import RateBook
from domain.money import Money
from domain.nudges import DealLine, Digest
from domain.roll_up import AT_RISK_CATEGORIES, RollUpDeal, roll_up
from reminders.accuracy import TeamScope, scores_by_team, teams_in_scope
from reminders.calibration import learned_thresholds, rep_calibration
from reminders.chart import chart_reps, forecast_chart
from reminders.delivery import ChartFile
from reminders.forecast_history import closed_figures, forecast_accuracy, week_flow
from reminders.jobs import Job, JobContext, OutgoingMessage, Schedule, message_of, week_period
from reminders.trend import weekly_trend
from storage.fx import FxRepository
from storage.models import Team
from storage.nudges import NudgeRepository
from storage.snapshots import ClosedTeamDeal, WeeklyRepository

NAME = "manager-digest"
# How far back "which checks reps ignore" looks.
NUDGE_WINDOW = dt.timedelta(days=28)


def _line(deal: ClosedTeamDeal) -> DealLine:
    """Return the digest's line of a deal won or lost: its post-mortem's reason, else the
    reason given when it closed."""
    name = f"{deal.account} — {deal.title}" if deal.title else deal.account
    amount = Money(deal.amount, deal.currency) if deal.amount is not None else None
    if deal.post_mortem_reason is not None:
        reason = deal.post_mortem_reason
    else:
        reason = deal.close_reason or "no post-mortem yet"
    return DealLine(deal.id, name, deal.owner_id, amount, reason)


@dataclass
class TeamFacts:
    """What one streamed pass over the facts gives a team's digest."""

    scores: dict[str, RepScore] = field(default_factory=dict)
    deals: list[RollUpDeal] = field(default_factory=list)  # the roll-up's rows


def read_facts(
    context: JobContext, teams: Sequence[TeamScope], config: ChecksConfig
) -> dict[int, TeamFacts]:
    """Return each team's rep scores and roll-up rows from one facts query per quarter.

    The accuracy job's scoring pass (`scores_by_team`: the same weighting and the same
    per-team checks), with the roll-up's rows taken on the way, so the digest reads each
    deal's facts once for both. Only the deals a roll-up figure can count are kept (open in
    the quarter, won in it).
    """
    found = {team.team_id: TeamFacts() for team in teams}

    def take_row(
        team_id: int,
        deal: DealFacts,
        quarter: tuple[dt.date, dt.date],
        today: dt.date,
        zone: ZoneInfo,
        team_config: ChecksConfig,
        fired: tuple[str, ...],
    ) -> None:
        row = _roll_up_row(deal, quarter, zone, fired)
        if row is not None:
            found[team_id].deals.append(row)

    scores = scores_by_team(context, teams, config, visit=take_row)
    for team_id, team_scores in scores.items():
        found[team_id].scores = team_scores
    return found


def _roll_up_row(
    deal: DealFacts,
    quarter: tuple[dt.date, dt.date],
    zone: ZoneInfo,
    fired: tuple[str, ...],
) -> RollUpDeal | None:
    """Return the roll-up's row for `deal`, or None if no roll-up figure can count it.

    `fired` are the checks the score tally ran on the deal, with the team's checks as of
    its today: the same the roll-up shows, so they are not run a second time.
    """
    closed_on = deal.closed_at.astimezone(zone).date() if deal.closed_at else None
    if deal.status == "open":
        if deal.close_date is None or not quarter[0] <= deal.close_date <= quarter[1]:
            return None
        # Only commit and best-case money is "at risk": the rest shows no checks.
        checks = fired if deal.forecast_category in AT_RISK_CATEGORIES else ()
    elif deal.status == "won":
        checks = ()
    else:
        return None
    return RollUpDeal(
        deal_id=deal.deal_id,
        name=deal.name,
        owner_id=deal.owner_id,
        amount=deal.amount,
        currency=deal.currency,
        forecast_category=deal.forecast_category,
        status=deal.status,
        close_date=deal.close_date,
        closed_on=closed_on,
        checks=checks,
    )


def build_digest(
    context: JobContext,
    team: TeamScope,
    config: ChecksConfig,
    facts: TeamFacts | None = None,
    rates: RateBook | None = None,
) -> Digest:
    """Return the digest of `team` for the week ending at `context.now`.

    `facts` are the team's scores and roll-up rows when the caller read every team in one
    pass; `rates` the rate book, read once per run.
    """
    now = context.now
    today = team.today(now)
    quarter = quarter_bounds(today)
    week_start = now - dt.timedelta(days=7)
    if facts is None:
        facts = read_facts(context, [team], config)[team.team_id]
    scores = facts.scores
    with context.database.session() as session:
        if rates is None:
            rates = FxRepository(session).rate_book(context.settings.dealbot_currency)
        weekly = WeeklyRepository(session)
        # The open deals (counted) and the week's wins and losses, with their post-mortems;
        # what else moved is the flow's.
        open_deals = weekly.open_deal_count(owner_ids=team.reps)
        closed_week = weekly.closed_since(owner_ids=team.reps, since=week_start)
        # From history: closed figures, how the quarter's called commit is turning out,
        # what moved since last week's snapshot, how each rep's calls turned out.
        closed = closed_figures(session, reps=team.reps, zone=team.zone, today=today)
        accuracy = forecast_accuracy(
            session,
            reps=team.reps,
            zone=team.zone,
            today=today,
            currency=team.currency,
            rates=rates,
        )
        flow = week_flow(
            session, reps=team.reps, zone=team.zone, now=now, currency=team.currency, rates=rates
        )
        calibration = rep_calibration(session, rep_ids=team.reps, zone=team.zone, today=today)
        learned = (
            learned_thresholds(
                session,
                rep_ids=team.reps,
                zone=team.zone,
                today=today,
                currency=team.currency,
                rates=rates,
            )
            if config.for_team(team.name).thresholds == "learned"
            else None
        )
        NudgeRepository(session).mark_acted(at=now)
        response = NudgeRepository(session).check_response(
            rep_ids=team.reps, since=now - NUDGE_WINDOW
        )
        team_row = session.get(Team, team.team_id)
        period = quarter_of(today)
        quotas = {
            q.user_id: Money(q.amount, q.currency)
            for q in (team_row.quotas if team_row else [])
            if q.period == period
        }
    rolled = roll_up(
        team_name=team.name,
        period=period,
        reps=team.reps,
        deals=facts.deals,
        quotas=quotas,
        rates=rates,
        currency=team.currency,
        quarter=quarter,
        today=today,
    )
    ignored = sorted(
        ((check, nudged, acted) for check, (nudged, acted) in response.items()),
        key=lambda row: (row[2] / row[1] if row[1] else 1, -row[1]),
    )
    return Digest(
        team_name=team.name,
        week=week_period(now, team.zone),
        quarter=period,
        currency=team.currency,
        open_deals=open_deals,
        roll_up=rolled,
        won=tuple(_line(deal) for deal in closed_week if deal.status == "won"),
        lost=tuple(_line(deal) for deal in closed_week if deal.status == "lost"),
        closed=closed,
        accuracy=accuracy,
        flow=flow,
        calibration=tuple(calibration[rep] for rep in team.reps if rep in calibration),
        learned=learned,
        rep_scores=tuple((rep, scores[rep].score if rep in scores else None) for rep in team.reps),
        ignored_checks=tuple(ignored[:5]),
    )


# The chart draws this many reps (the rest are noted on it): names are looked up for those.
CHART_REPS = 25


def rep_names(context: JobContext, rep_ids: Sequence[str]) -> dict[str, str]:
    """Return the names Slack shows for `rep_ids`; a rep Slack cannot name keeps their id."""
    names: dict[str, str] = {}
    for rep in rep_ids:
        try:
            user = context.client.users_info(user=rep)["user"]
        except (SlackApiError, OSError):
            continue  # the chart shows the id: a missing name is no reason to send nothing
        profile = user.get("profile") or {}
        name = profile.get("real_name") or profile.get("display_name") or user.get("name")
        if name:
            names[rep] = name
    return names


def digest_chart(context: JobContext, team: TeamScope, digest: Digest, rates: RateBook) -> bytes:
    """Return the chart a manager would forward: the quarter per rep against quota, and the
    team's weekly commit and won from the snapshots."""
    roll = digest.roll_up
    drawn = sorted(roll.reps, key=lambda rep: rep.won.amount + rep.commit.amount, reverse=True)
    names = rep_names(context, [rep.rep_id for rep in drawn[:CHART_REPS] if rep.rep_id])
    with context.database.session() as session:
        trend = weekly_trend(
            session,
            reps=team.reps,
            zone=team.zone,
            quarter=quarter_bounds(team.today(context.now)),
            currency=team.currency,
            rates=rates,
            now=context.now,
        )
    return forecast_chart(
        title=f"{team.name}: {digest.quarter} forecast, week {digest.week}",
        currency=team.currency,
        reps=chart_reps(roll, names),
        trend=trend,
    )


def plan_digest(context: JobContext, config: ChecksConfig | None = None) -> list[OutgoingMessage]:
    """Return one digest DM per manager of each team in scope, each with its chart."""
    config = config or context.checks()
    messages: list[OutgoingMessage] = []
    teams = [team for team in teams_in_scope(context) if team.managers]
    # Every team scored and rolled up in one streamed pass over the facts.
    all_facts = read_facts(context, teams, config)
    with context.database.session() as session:
        rates = FxRepository(session).rate_book(context.settings.dealbot_currency)
    for team in teams:
        week = week_period(context.now, team.zone)
        with context.database.session() as session:
            WeeklyRepository(session).snapshot_open_deals(
                week=week, owner_ids=team.reps, at=context.now
            )
        digest = build_digest(context, team, config, all_facts[team.team_id], rates)
        reply = context.render.manager_digest(digest)
        chart = ChartFile(
            name=f"forecast-{week}.png",
            title=f"{team.name} forecast, {week}",
            content=digest_chart(context, team, digest, rates),
        )
        for manager in team.managers:
            messages.append(
                message_of(
                    reply,
                    recipient=manager,
                    subject=f"team:{team.team_id}",
                    period=week,
                    file=chart,
                )
            )
    return messages


JOB = Job(
    name=NAME,
    description="DM each manager the team's forecast roll-up vs quota per rep, money at "
    "risk, the week's moves, accuracy per rep and ignored checks, with a chart",
    schedule=Schedule(cron={"day_of_week": "mon", "hour": "8", "minute": "0"}, timezone="team"),
    plan=plan_digest,
)
