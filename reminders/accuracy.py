"""`pipeline-accuracy`: the weekly post to each team's channel, rep by rep.

A rep's accuracy score is the share of checks passed over their open deals (each enabled
check counts once per open deal), plus one check (`LOST_WITHOUT_REASON`) per deal they closed
this quarter. The post gives each rep's score, the change since last week's post, the checks
that fired most, and the one fix that would raise the score most: the check failing on the
most deals, worth (deals fixed ÷ checks counted) in score points.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.checks import ChecksConfig, RepScore, ScoreTally
from domain.dates import quarter_bounds
from domain.nudges import RepAccuracy
from reminders.jobs import Job, JobContext, OutgoingMessage, Schedule, message_of, week_period
from storage.facts import ReminderRepository
from storage.models import Team
from storage.snapshots import WeeklyRepository
from storage.teams import TeamRepository

NAME = "pipeline-accuracy"


@dataclass(frozen=True)
class TeamScope:
    """A team this firing covers, with its reps and its own calendar."""

    team_id: int
    name: str
    channel_id: str
    zone: ZoneInfo
    reps: tuple[str, ...]
    managers: tuple[str, ...]
    currency: str  # the team's reporting currency

    def today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(self.zone).date()


def teams_in_scope(context: JobContext) -> list[TeamScope]:
    with context.database.session() as session:
        teams: Sequence[Team] = TeamRepository(session).all()
        return [
            TeamScope(
                team_id=team.id,
                name=team.name,
                channel_id=team.channel_id,
                zone=ZoneInfo(team.timezone),
                reps=tuple(m.user_id for m in team.members if m.role == "rep"),
                managers=tuple(m.user_id for m in team.members if m.role == "manager"),
                currency=team.currency or context.settings.dealbot_currency,
            )
            for team in teams
            if context.covers(team.timezone)
        ]


def previous_week(now: dt.datetime, zone: ZoneInfo) -> str:
    return week_period(now - dt.timedelta(days=7), zone)


def scores_by_team(
    context: JobContext, teams: Sequence[TeamScope], config: ChecksConfig
) -> dict[int, dict[str, RepScore]]:
    """Return each team's rep scores as of `context.now`, from one facts query per quarter.

    Teams are grouped by the quarter their own today falls in (one group, except around a
    quarter's turn), so scoring every team costs one set-based query, not one per team.
    The facts are streamed into per-team tallies: memory grows with reps, not deals.
    """
    groups: dict[tuple[dt.date, dt.date], list[TeamScope]] = defaultdict(list)
    for team in teams:
        groups[quarter_bounds(team.today(context.now))].append(team)
    scores: dict[int, dict[str, RepScore]] = {}
    for quarter, members in groups.items():
        tallies = {team.team_id: ScoreTally(config=config) for team in members}
        # rep -> (tally, counted from, today, zone) for each team of this group the rep is on
        scopes: dict[str, list[tuple[ScoreTally, dt.datetime, dt.date, ZoneInfo]]] = {}
        starts = {t.team_id: dt.datetime.combine(quarter[0], dt.time(), t.zone) for t in members}
        for team in members:
            start = starts[team.team_id]
            scope = (tallies[team.team_id], start, team.today(context.now), team.zone)
            for rep in team.reps:
                scopes.setdefault(rep, []).append(scope)
        with context.database.session() as session:
            facts = ReminderRepository(session).stream_deal_facts(
                quarter=quarter,
                closed_since=min(starts.values()),
                owner_ids=list(scopes),
            )
            for deal in facts:
                for tally, start, today, zone in scopes[deal.owner_id]:
                    if deal.status == "open" or (
                        deal.closed_at is not None and deal.closed_at >= start
                    ):
                        tally.add(deal, today, zone)
        for team in members:
            scores[team.team_id] = tallies[team.team_id].scores()
    return scores


def plan_accuracy(context: JobContext, config: ChecksConfig | None = None) -> list[OutgoingMessage]:
    """Return one accuracy post per team in scope; snapshot the week and keep the scores."""
    config = config or context.checks()
    messages: list[OutgoingMessage] = []
    teams = [team for team in teams_in_scope(context) if team.reps]
    all_scores = scores_by_team(context, teams, config)
    for team in teams:
        week = week_period(context.now, team.zone)
        scores = all_scores[team.team_id]
        with context.database.session() as session:
            weekly = WeeklyRepository(session)
            weekly.snapshot_open_deals(week=week, owner_ids=team.reps, at=context.now)
            weekly.save_scores(
                week=week,
                scores=[(s.rep_id, s.passed, s.checked) for s in scores.values()],
                at=context.now,
            )
            last_week = weekly.scores(week=previous_week(context.now, team.zone), rep_ids=team.reps)
        rows = []
        for rep in team.reps:
            score = scores.get(rep)
            if score is None:
                rows.append(RepAccuracy(rep, None, None, 0, (), None))
                continue
            change = None
            if rep in last_week and last_week[rep][1] and score.score is not None:
                before = Decimal(last_week[rep][0]) / Decimal(last_week[rep][1])
                change = (score.score - before).quantize(Decimal("0.01"))
            top = tuple(Counter(score.failures).most_common(3))
            rows.append(
                RepAccuracy(
                    rep_id=rep,
                    score=score.score,
                    change=change,
                    deals=score.deals,
                    top_failures=top,
                    best_fix=score.best_fix(),
                )
            )
        rows.sort(key=lambda r: (r.score is None, r.score or 0))
        passed = sum(s.passed for s in scores.values())
        checked = sum(s.checked for s in scores.values())
        team_score = (
            (Decimal(passed) / Decimal(checked)).quantize(Decimal("0.01")) if checked else None
        )
        failing: Counter[str] = Counter()
        for score in scores.values():
            failing.update(score.failures)
        reply = context.render.accuracy_post(
            team_name=team.name,
            week=week,
            team_score=team_score,
            reps=rows,
            top_checks=failing.most_common(3),
        )
        messages.append(
            message_of(
                reply, recipient=team.channel_id, subject=f"team:{team.team_id}", period=week
            )
        )
    return messages


JOB = Job(
    name=NAME,
    description="post each rep's accuracy score, its evidence and the best fix to the "
    "team's channel",
    schedule=Schedule(cron={"day_of_week": "mon", "hour": "9", "minute": "30"}, timezone="team"),
    plan=plan_accuracy,
)
