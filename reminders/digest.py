"""`manager-digest`: each manager's weekly DM about their team, with a chart.

Everything is computed from evidence: the deal history (`deal_changes`), the weekly
snapshots (what was committed at the start of the quarter), the nudges and whether reps
acted on them. Weekly, Monday 8:00 in the team's timezone.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal

from domain.checks import ChecksConfig, RepScore
from domain.dates import quarter_bounds, quarter_of
from domain.money import Money, format_money_short
from domain.nudges import DealLine, Digest
from domain.stages import DEFAULT_STAGES, FORECAST_LABELS
from reminders.accuracy import TeamScope, scores_by_team, teams_in_scope
from reminders.chart import bar_chart
from reminders.delivery import ChartFile
from reminders.jobs import Job, JobContext, OutgoingMessage, Schedule, message_of, week_period
from storage.models import Team
from storage.nudges import NudgeRepository
from storage.snapshots import TeamDeal, WeeklyRepository

NAME = "manager-digest"
STAGES = {stage.key: stage for stage in DEFAULT_STAGES}
# How far back "which checks reps ignore" looks.
NUDGE_WINDOW = dt.timedelta(days=28)


def _ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.01"))


def _line(deal: TeamDeal, note: str = "") -> DealLine:
    name = f"{deal.account} — {deal.title}" if deal.title else deal.account
    amount = Money(deal.amount, deal.currency) if deal.amount is not None else None
    return DealLine(deal.id, name, deal.owner_id, amount, note)


def build_digest(
    context: JobContext,
    team: TeamScope,
    config: ChecksConfig,
    scores: dict[str, RepScore] | None = None,
) -> Digest:
    """Return the digest of `team` for the week ending at `context.now`.

    `scores` are the team's rep scores when the caller scored every team in one pass.
    """
    now = context.now
    today = team.today(now)
    quarter = quarter_bounds(today)
    quarter_start = dt.datetime.combine(quarter[0], dt.time(), team.zone)
    week_start = now - dt.timedelta(days=7)
    if scores is None:
        scores = scores_by_team(context, [team], config)[team.team_id]
    with context.database.session() as session:
        weekly = WeeklyRepository(session)
        deals = weekly.team_deals(
            owner_ids=team.reps,
            closed_since=min(quarter_start, week_start),
            created_since=week_start,
        )
        changes = weekly.changes_since(owner_ids=team.reps, since=week_start)
        pushed = weekly.close_date_pushes_since(owner_ids=team.reps, since=quarter_start)
        first_week = weekly.earliest_week_since(
            first_week=week_period(quarter_start, team.zone), owner_ids=team.reps
        )
        committed = (
            weekly.committed_in(week=first_week, owner_ids=team.reps, quarter=quarter)
            if first_week
            else []
        )
        NudgeRepository(session).mark_acted(at=now)
        response = NudgeRepository(session).check_response(
            rep_ids=team.reps, since=now - NUDGE_WINDOW
        )
        team_row = session.get(Team, team.team_id)
        period = quarter_of(today)
        quotas = [q for q in (team_row.quotas if team_row else []) if q.period == period]
    open_deals = [d for d in deals if d.status == "open"]
    currencies = Counter(d.currency for d in open_deals if d.amount is not None)
    currency = currencies.most_common(1)[0][0] if currencies else context.settings.dealbot_currency

    def probability(deal: TeamDeal) -> Decimal:
        # A deal in its team's own stage is weighed by that stage's probability.
        stage = config.deal_stage(deal.stage, deal.team_stage)
        return stage.probability if stage is not None else Decimal(1)

    def total(items: list[TeamDeal], weight: bool = False) -> Money:
        amount = sum(
            (
                d.amount * (probability(d) if weight else 1)
                for d in items
                if d.amount is not None and d.currency == currency
            ),
            Decimal(0),
        )
        return Money(Decimal(amount).quantize(Decimal("0.01")), currency)

    in_quarter = [
        d for d in open_deals if d.close_date and quarter[0] <= d.close_date <= quarter[1]
    ]
    forecast = tuple(
        (label, total([d for d in in_quarter if d.forecast_category == key]))
        for key, label in FORECAST_LABELS.items()
        if key != "omitted"
    )
    closed_quarter = [d for d in deals if d.closed_at and d.closed_at >= quarter_start]
    won_quarter = [d for d in closed_quarter if d.status == "won"]
    lost_quarter = [d for d in closed_quarter if d.status == "lost"]
    won_total = total(won_quarter)
    quota_amount = sum((q.amount for q in quotas if q.currency == currency), Decimal(0))
    quota = Money(quota_amount, currency) if quotas else None
    remaining = quota_amount - won_total.amount
    open_forecast = sum((m.amount for _, m in forecast), Decimal(0))
    coverage = _ratio(open_forecast, remaining) if quota and remaining > 0 else None
    by_id = {d.id: d for d in deals}
    moved: list[DealLine] = []
    slipped: list[DealLine] = []
    for change in changes:
        deal = by_id.get(change.deal_id)
        if deal is None:
            continue
        if change.field == "stage" and change.old_value in STAGES and change.new_value in STAGES:
            before, after = STAGES[change.old_value], STAGES[change.new_value]
            if after.is_closed:
                continue
            note = f"{before.label} → {after.label}"
            (moved if after.order > before.order else slipped).append(_line(deal, note))
        elif change.field == "close_date" and (change.new_value or "") > (change.old_value or ""):
            slipped.append(_line(deal, f"close date {change.old_value} → {change.new_value}"))

    def reason(deal: TeamDeal) -> str:
        if deal.post_mortem_reason is not None:
            return deal.post_mortem_reason
        return deal.close_reason or "no post-mortem yet"

    won_week = [d for d in deals if d.status == "won" and d.closed_at and d.closed_at >= week_start]
    lost_week = [
        d for d in deals if d.status == "lost" and d.closed_at and d.closed_at >= week_start
    ]
    days_to_close = [(d.closed_at - d.created_at).days for d in won_quarter if d.closed_at]
    committed_amount = sum((amount or Decimal(0) for _, amount in committed), Decimal(0))
    committed_won = sum(
        (
            amount or Decimal(0)
            for deal_id, amount in committed
            if deal_id in by_id and by_id[deal_id].status == "won"
        ),
        Decimal(0),
    )
    by_stage_amounts: dict[str, list[TeamDeal]] = defaultdict(list)
    for deal in open_deals:
        by_stage_amounts[deal.stage].append(deal)
    ignored = sorted(
        ((check, nudged, acted) for check, (nudged, acted) in response.items()),
        key=lambda row: (row[2] / row[1] if row[1] else 1, -row[1]),
    )
    return Digest(
        team_name=team.name,
        week=week_period(now, team.zone),
        quarter=quarter_of(today),
        currency=currency,
        open_deals=len(open_deals),
        pipeline=total(open_deals),
        weighted=total(open_deals, weight=True),
        forecast=forecast,
        won_this_quarter=won_total,
        quota=quota,
        coverage=coverage,
        created=tuple(_line(d) for d in deals if d.created_at >= week_start),
        moved=tuple(moved),
        slipped=tuple(slipped),
        won=tuple(_line(d, reason(d)) for d in won_week),
        lost=tuple(_line(d, reason(d)) for d in lost_week),
        win_rate=_ratio(len(won_quarter), len(won_quarter) + len(lost_quarter)),
        average_days_to_close=round(sum(days_to_close) / len(days_to_close))
        if days_to_close
        else None,
        slip_rate=_ratio(pushed, len(open_deals) + len(closed_quarter)),
        forecast_accuracy=_ratio(committed_won, committed_amount) if committed else None,
        rep_scores=tuple((rep, scores[rep].score if rep in scores else None) for rep in team.reps),
        ignored_checks=tuple(ignored[:5]),
        by_stage=tuple(
            (STAGES[key].label, total(by_stage_amounts[key]))
            for key in STAGES
            if key in by_stage_amounts
        ),
    )


def digest_chart(digest: Digest) -> bytes:
    bars = [(label, float(m.amount), format_money_short(m)) for label, m in digest.by_stage]
    target = None
    if digest.quota is not None:
        target = (
            "Quota " + digest.quarter[-2:],
            float(digest.quota.amount),
            format_money_short(digest.quota),
        )
    return bar_chart(f"{digest.team_name}: open pipeline by stage", bars, target=target)


def plan_digest(context: JobContext, config: ChecksConfig | None = None) -> list[OutgoingMessage]:
    """Return one digest DM per manager of each team in scope, each with its chart."""
    config = config or context.checks()
    messages: list[OutgoingMessage] = []
    teams = [team for team in teams_in_scope(context) if team.managers]
    # Every team scored in one streamed pass over the facts, not one query per team.
    all_scores = scores_by_team(context, teams, config)
    for team in teams:
        week = week_period(context.now, team.zone)
        with context.database.session() as session:
            WeeklyRepository(session).snapshot_open_deals(
                week=week, owner_ids=team.reps, at=context.now
            )
        digest = build_digest(context, team, config, all_scores[team.team_id])
        reply = context.render.manager_digest(digest)
        chart = ChartFile(
            name=f"pipeline-{week}.png",
            title=f"{team.name} pipeline by stage, {week}",
            content=digest_chart(digest),
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
    description="DM each manager the team's pipeline, forecast vs quota, the week's moves, "
    "win rate, accuracy per rep and ignored checks, with a chart",
    schedule=Schedule(cron={"day_of_week": "mon", "hour": "8", "minute": "0"}, timezone="team"),
    plan=plan_digest,
)
