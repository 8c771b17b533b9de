"""`pipeline-accuracy`: the weekly post to each team's channel, rep by rep.

A rep's accuracy score is the share of checks passed over their open deals (each enabled
check counts once per open deal), plus one check (`LOST_WITHOUT_REASON`) per deal they closed
this quarter, **weighted by amount**: each deal's checks count with weight = its amount in the
team's reporting currency (`TeamScope.currency`), converted at the rate of its close date, so
a $250k commit failing counts ten times a $25k prospect. A deal without an amount, or whose
currency has no rate, weighs as the median converted amount of the rep's open deals (1 when
none of them has an amount). `domain.checks.ScoreTally` does the sums.

The post gives each rep's score, the change since last week's post, the checks that fired
most, the one fix that would raise the score most (the check whose failing deals weigh
most, worth their weight ÷ the weight checked in score points), the largest deals failing a
check with each check's fix, and commit claimed vs commit evidenced: the open Commit deals'
money against the part whose deals cite evidence for every kind in
`domain.evidence.COMMIT_EVIDENCE`.

Stored scores (`accuracy_scores.passed/checked`, integers) keep the weighted score itself:
`passed` is the score in parts per million and `checked` is `-WEIGHTED_SCALE`, a value a
count-based row (checks passed over checks counted, never negative) cannot hold. A week stored
before the weighting is therefore recognised and not compared: its rep shows no change
rather than a change between two different measures.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from domain.checks import (
    FAILING_DEALS_KEPT,
    ChecksConfig,
    DealFacts,
    RepScore,
    ScoreTally,
)
from domain.dates import quarter_bounds
from domain.fx import RateBook
from domain.money import Money
from domain.nudges import RepAccuracy
from reminders.calibration import checks_for_team
from reminders.jobs import Job, JobContext, OutgoingMessage, Schedule, message_of, week_period
from storage.facts import ReminderRepository
from storage.fx import FxRepository
from storage.models import Team
from storage.snapshots import WeeklyRepository
from storage.stage_limits import StageLimitRepository
from storage.teams import TeamRepository

NAME = "pipeline-accuracy"
# A stored weighted score: passed = the score in parts per million, checked = -WEIGHTED_SCALE.
WEIGHTED_SCALE = 1_000_000


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


def all_teams(context: JobContext) -> list[TeamScope]:
    """Return every team, whatever timezones this firing covers."""
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
        ]


def teams_in_scope(context: JobContext) -> list[TeamScope]:
    return [team for team in all_teams(context) if context.covers(team.zone.key)]


def team_checks(
    session: Session, config: ChecksConfig, team: TeamScope, now: dt.datetime, rates: RateBook
) -> ChecksConfig:
    """Return the checks `team`'s deals are held to as of `now`.

    The file's settings with the team's own (`teams:` in the checks file, by team name key),
    so one team can opt in to `thresholds: learned` alone. With `learned`,
    STALLED_IN_STAGE's limits are those the team's won deals teach. The weekly post and the
    chase DM both ask here, so they hold a deal to one limit. The limits learned are kept for
    the team (replacing what it had), for the deal card, /pipeline and App Home to hold a
    deal to them without learning them per request.
    """
    team_config, learned = checks_for_team(
        session,
        config.for_team(team.name),
        rep_ids=team.reps,
        zone=team.zone,
        today=team.today(now),
        currency=team.currency,
        rates=rates,
    )
    if learned is not None:
        StageLimitRepository(session).save_for_team(
            team.team_id,
            learned.stalled_days,
            learned_on=team.today(now),
            won_deals=dict(learned.stalled_won),
        )
    elif config.learns_anywhere:
        # A team on fixed limits while others learn (or back on them): limits kept from
        # before must not hold on its cards.
        StageLimitRepository(session).save_for_team(
            team.team_id, (), learned_on=team.today(now), won_deals={}
        )
    return team_config


def previous_week(now: dt.datetime, zone: ZoneInfo) -> str:
    return week_period(now - dt.timedelta(days=7), zone)


class FactVisitor(Protocol):
    """Called with each fact a team's score counts, the checks that team is held to and the
    checks the fact fired (as scored: a visitor need not run them again)."""

    def __call__(
        self,
        team_id: int,
        deal: DealFacts,
        quarter: tuple[dt.date, dt.date],
        today: dt.date,
        zone: ZoneInfo,
        config: ChecksConfig,
        fired: tuple[str, ...],
    ) -> None: ...


def scores_by_team(
    context: JobContext,
    teams: Sequence[TeamScope],
    config: ChecksConfig,
    *,
    visit: FactVisitor | None = None,
) -> dict[int, dict[str, RepScore]]:
    """Return each team's rep scores as of `context.now`, from one facts query per quarter.

    Teams are grouped by the quarter their own today falls in (one group, except around a
    quarter's turn), so scoring every team costs one set-based query, not one per team.
    The facts are streamed into per-team tallies: memory grows with reps, not deals.
    `visit` sees each fact as it is counted (the digest takes its roll-up rows on the way).
    """
    groups: dict[tuple[dt.date, dt.date], list[TeamScope]] = defaultdict(list)
    for team in teams:
        groups[quarter_bounds(team.today(context.now))].append(team)
    scores: dict[int, dict[str, RepScore]] = {}
    for quarter, members in groups.items():
        tallies: dict[int, ScoreTally] = {}
        configs: dict[int, ChecksConfig] = {}
        with context.database.session() as session:
            rates = FxRepository(session).rate_book(context.settings.dealbot_currency)
            for team in members:
                team_config = team_checks(session, config, team, context.now, rates)
                configs[team.team_id] = team_config
                tallies[team.team_id] = ScoreTally(
                    config=team_config, currency=team.currency, rates=rates
                )
        # rep -> (team, counted from, today, zone) for each team of this group the rep is on
        scopes: dict[str, list[tuple[int, dt.datetime, dt.date, ZoneInfo]]] = {}
        starts = {t.team_id: dt.datetime.combine(quarter[0], dt.time(), t.zone) for t in members}
        for team in members:
            start = starts[team.team_id]
            scope = (team.team_id, start, team.today(context.now), team.zone)
            for rep in team.reps:
                scopes.setdefault(rep, []).append(scope)
        with context.database.session() as session:
            facts = ReminderRepository(session).stream_deal_facts(
                quarter=quarter,
                closed_since=min(starts.values()),
                owner_ids=list(scopes),
            )
            for deal in facts:
                for team_id, start, today, zone in scopes[deal.owner_id]:
                    if deal.status == "open" or (
                        deal.closed_at is not None and deal.closed_at >= start
                    ):
                        fired = tallies[team_id].add(deal, today, zone)
                        if visit is not None:
                            visit(team_id, deal, quarter, today, zone, configs[team_id], fired)
        for team in members:
            scores[team.team_id] = tallies[team.team_id].scores()
    return scores


def stored_score(score: RepScore) -> tuple[int, int]:
    """Return (passed, checked) as `accuracy_scores` keeps a weighted score (see the top)."""
    if not score.checked:
        return 0, 0  # nothing checked: no score to compare next week
    parts = (score.passed / score.checked * WEIGHTED_SCALE).to_integral_value()
    return int(parts), -WEIGHTED_SCALE


def score_of_stored(passed: int, checked: int) -> Decimal | None:
    """Return a stored weighted score, or None for a row not comparable with one.

    A row from before the weighting (`checked` ≥ 0, checks counted) measured something
    else: comparing it with a weighted score would report a change no one made.
    """
    if checked != -WEIGHTED_SCALE:
        return None
    return Decimal(passed) / WEIGHTED_SCALE


def rep_accuracy(
    rep: str, score: RepScore | None, before: Decimal | None, currency: str
) -> RepAccuracy:
    """Return a rep's line in the post from their score and last week's (if comparable)."""
    if score is None:
        return RepAccuracy(rep, None, None, 0, (), None)
    change = None
    if before is not None and score.score is not None:
        change = (score.score - before).quantize(Decimal("0.01"))
    return RepAccuracy(
        rep_id=rep,
        score=score.score,
        change=change,
        deals=score.deals,
        top_failures=tuple(Counter(score.failures).most_common(3)),
        best_fix=score.best_fix(),
        failing_deals=score.failing_deals[:FAILING_DEALS_KEPT],
        more_failing=max(score.deals_failing - FAILING_DEALS_KEPT, 0),
        commit_claimed=Money(score.commit_claimed, currency),
        commit_evidenced=Money(score.commit_evidenced, currency),
        commit_unpriced=score.commit_unpriced,
    )


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
                scores=[(s.rep_id, *stored_score(s)) for s in scores.values()],
                at=context.now,
            )
            last_week = weekly.scores(week=previous_week(context.now, team.zone), rep_ids=team.reps)
        rows = [
            rep_accuracy(
                rep,
                scores.get(rep),
                score_of_stored(*last_week[rep]) if rep in last_week else None,
                team.currency,
            )
            for rep in team.reps
        ]
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
            currency=team.currency,
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
