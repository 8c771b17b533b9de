"""SQL behind the scheduled jobs: firings, the outbox, and the set-based reminder queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, bindparam, case, func, literal, or_, select, true, update
from sqlalchemy.orm import Session, selectinload

from domain.checks import DealFacts
from storage.database import dialect_insert, insert_ignoring_conflicts
from storage.models import (
    AccuracyScore,
    Contact,
    Deal,
    DealChange,
    DealSnapshot,
    DealSnooze,
    JobRun,
    NextStep,
    Nudge,
    OutboxMessage,
    PostMortem,
    RepZone,
    Team,
    TeamMember,
    UTCDateTime,
)


def _within(column: Any, scope: Select[tuple[int]] | None) -> Any:
    """Return `column IN (scope)`, or a condition that always holds when there is no scope."""
    return column.in_(scope) if scope is not None else true()


@cache
def _deal_facts_statement(
    *, with_closed: bool, by_owner: bool, by_deal: bool, listed: bool = False
) -> Select[Any]:
    """Return the facts query, built once per shape: /pipeline and App Home run it per request.

    Values arrive as bound parameters, so building the statement (which costs more than
    running it for one rep's deals) happens once per process. The `listed` shape adds what
    a list shows beyond the facts (currency, current next step) and sorts as lists do.
    """
    # Asked about a few owners or deals (a /pipeline, App Home), aggregate only their
    # rows: an unfiltered GROUP BY would scan every next step and contact in the table.
    in_scope: Select[tuple[int]] | None = None
    if by_owner or by_deal:
        in_scope = select(Deal.id)
        if by_owner:
            in_scope = in_scope.where(Deal.owner_id.in_(bindparam("owner_ids", expanding=True)))
        if by_deal:
            in_scope = in_scope.where(Deal.id.in_(bindparam("deal_ids", expanding=True)))
    steps = (
        select(
            NextStep.deal_id.label("deal_id"),
            func.count().label("open_steps"),
            func.count(NextStep.due_date).label("dated"),
            func.sum(case((NextStep.owner_id.is_(None), 1), else_=0)).label("unowned"),
            func.min(NextStep.due_date).label("next_due"),
        )
        .where(NextStep.done.is_(False), _within(NextStep.deal_id, in_scope))
        .group_by(NextStep.deal_id)
        .subquery()
    )
    contacts = (
        select(
            Contact.deal_id.label("deal_id"),
            func.count().label("contacts"),
            func.max(case((Contact.role == "economic_buyer", 1), else_=0)).label("buyer"),
        )
        .where(_within(Contact.deal_id, in_scope))
        .group_by(Contact.deal_id)
        .subquery()
    )
    start_text, end_text = bindparam("start_text"), bindparam("end_text")
    quarter_start_at = bindparam("quarter_start_at", type_=UTCDateTime())
    pushes = (
        select(
            DealChange.deal_id.label("deal_id"),
            func.sum(case((DealChange.changed_at >= quarter_start_at, 1), else_=0)).label("pushes"),
            func.max(
                case(
                    (
                        and_(
                            DealChange.old_value >= start_text,
                            DealChange.old_value <= end_text,
                            DealChange.new_value > end_text,
                        ),
                        1,
                    ),
                    else_=0,
                )
            ).label("pushed_out"),
        )
        .where(
            _within(DealChange.deal_id, in_scope),
            DealChange.field == "close_date",
            DealChange.old_value.is_not(None),
            # ISO dates compare as text in date order.
            DealChange.new_value > DealChange.old_value,
        )
        .group_by(DealChange.deal_id)
        .subquery()
    )
    wanted = Deal.status == "open"
    if with_closed:
        closed_since = bindparam("closed_since", type_=UTCDateTime())
        wanted = or_(wanted, and_(Deal.status != "open", Deal.closed_at >= closed_since))
    statement = (
        select(
            Deal.id,
            Deal.owner_id,
            Deal.account,
            Deal.title,
            Deal.stage,
            Deal.status,
            Deal.forecast_category,
            Deal.amount,
            Deal.close_date,
            Deal.last_touch_at,
            Deal.updated_at,
            Deal.stage_entered_at,
            Deal.buying_criteria,
            Deal.buying_process,
            Deal.paper_process,
            Deal.close_reason,
            Deal.closed_at,
            steps.c.open_steps,
            steps.c.dated,
            steps.c.unowned,
            steps.c.next_due,
            contacts.c.contacts,
            contacts.c.buyer,
            pushes.c.pushes,
            pushes.c.pushed_out,
            PostMortem.id.label("post_mortem_id"),
        )
        .outerjoin(steps, steps.c.deal_id == Deal.id)
        .outerjoin(contacts, contacts.c.deal_id == Deal.id)
        .outerjoin(pushes, pushes.c.deal_id == Deal.id)
        .outerjoin(PostMortem, PostMortem.deal_id == Deal.id)
        .where(wanted)
        .order_by(Deal.owner_id, Deal.close_date.is_(None), Deal.close_date, Deal.id)
    )
    if by_owner:
        statement = statement.where(Deal.owner_id.in_(bindparam("owner_ids", expanding=True)))
    if by_deal:
        statement = statement.where(Deal.id.in_(bindparam("deal_ids", expanding=True)))
    if listed:
        # The current step is the open one due soonest (undated ones last).
        current_step = (
            select(NextStep.id)
            .where(NextStep.deal_id == Deal.id, NextStep.done.is_(False))
            .order_by(NextStep.due_date.is_(None), NextStep.due_date, NextStep.id)
            .limit(1)
            .correlate(Deal)
            .scalar_subquery()
        )
        statement = (
            # ListedDeal's columns, in its order (the amount again: the facts keep a flag).
            statement.add_columns(
                Deal.amount.label("listed_amount"),
                Deal.currency,
                NextStep.id.label("step_id"),
                NextStep.what.label("step_what"),
                NextStep.owner_id.label("step_owner_id"),
                NextStep.due_date.label("step_due_date"),
            )
            .outerjoin(NextStep, NextStep.id == current_step)
            .order_by(None)
            .order_by(Deal.close_date.is_(None), Deal.close_date, Deal.account_key, Deal.id)
        )
    return statement


class JobRunRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim_firing(
        self, *, job: str, scope: str, fire_time: dt.datetime, runner: str, at: dt.datetime
    ) -> int | None:
        """Return the new run's id if this process won the firing, None if another did."""
        statement = insert_ignoring_conflicts(
            self.session, JobRun.__table__, ["job", "scope", "fire_time"]
        ).values(
            job=job,
            scope=scope,
            fire_time=fire_time,
            status="running",
            runner=runner,
            started_at=at,
        )
        result = self.session.execute(statement.returning(JobRun.__table__.c.id))
        return result.scalar()

    def has_firing(self, *, job: str, scope: str, fire_time: dt.datetime) -> bool:
        statement = select(JobRun.id).where(
            JobRun.job == job, JobRun.scope == scope, JobRun.fire_time == fire_time
        )
        return self.session.scalar(statement) is not None

    def finish(self, run_id: int, *, status: str, summary: str, at: dt.datetime) -> None:
        self.session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=status, summary=summary[:200], finished_at=at)
        )

    def last_finished(self, job: str) -> JobRun | None:
        statement = (
            select(JobRun)
            .where(JobRun.job == job, JobRun.finished_at.is_not(None))
            .order_by(JobRun.finished_at.desc())
            .limit(1)
        )
        return self.session.scalars(statement).first()


_OUTBOX = OutboxMessage.__table__


def _of_job(job: str | None) -> Any:
    """Return `job = :job`, or a condition that always holds for every job (the sweeper)."""
    return OutboxMessage.job == job if job is not None else true()


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_new(self, rows: list[dict[str, Any]]) -> int:
        """Insert rows whose idempotency key is new; return how many were inserted."""
        statement = insert_ignoring_conflicts(
            self.session, _OUTBOX, ["job", "period", "recipient", "subject"]
        ).values(status="pending", attempts=0, file_sent=False)
        inserted = 0
        # One statement per row keeps rowcount exact on both backends; a run sends at most
        # a few thousand messages, and each is then a Slack call anyway.
        for row in rows:
            inserted += self.session.execute(statement, row).rowcount or 0
        return inserted

    def release_lapsed_claims(self, *, now: dt.datetime, job: str | None = None) -> int:
        """Hand "sending" rows whose lease ran out back to "pending"; return how many.

        A live sender renews its lease, so a lapsed one means its process died (or hung
        longer than the lease) somewhere between claiming the row and recording the answer.
        """
        result = self.session.execute(
            update(OutboxMessage)
            .where(
                _of_job(job),
                OutboxMessage.status == "sending",
                or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
            )
            .values(status="pending", claimed_by=None, lease_until=None)
        )
        return result.rowcount or 0

    def expire(self, *, now: dt.datetime, job: str | None = None) -> int:
        """Mark pending messages whose moment has passed as expired; return how many."""
        result = self.session.execute(
            update(OutboxMessage)
            .where(
                _of_job(job),
                OutboxMessage.status == "pending",
                OutboxMessage.not_after.is_not(None),
                OutboxMessage.not_after < now,
            )
            .values(status="expired")
        )
        return result.rowcount or 0

    def pending_ids(
        self, *, job: str | None = None, due_by: dt.datetime | None = None
    ) -> list[int]:
        """Return the ids of pending rows, oldest first; with `due_by`, only those due by then."""
        statement = (
            select(OutboxMessage.id)
            .where(_of_job(job), OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
        )
        if due_by is not None:
            statement = statement.where(
                or_(
                    OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= due_by
                )
            )
        return list(self.session.scalars(statement))

    def claim(
        self, message_id: int, *, at: dt.datetime, owner: str, lease_until: dt.datetime
    ) -> dict[str, Any] | None:
        """Return the row, now "sending" under `owner`'s lease, or None when another holds it.

        PostgreSQL: lock the row with FOR UPDATE SKIP LOCKED, so a competing claim skips it
        instead of waiting. SQLite compiles FOR UPDATE to nothing, so the conditional UPDATE
        and its rowcount decide (SQLite serializes writers, so exactly one sees rowcount 1).
        """
        if self.session.get_bind().dialect.name == "postgresql":
            locked = self.session.scalar(
                select(OutboxMessage.id)
                .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending")
                .with_for_update(skip_locked=True)
            )
            if locked is None:
                return None
        result = self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending")
            .values(
                status="sending",
                claimed_at=at,
                claimed_by=owner,
                lease_until=lease_until,
                attempts=OutboxMessage.attempts + 1,
            )
        )
        if result.rowcount != 1:
            return None
        row = self.session.execute(select(_OUTBOX).where(_OUTBOX.c.id == message_id)).one()
        return dict(row._mapping)

    def renew_leases(
        self, message_ids: Iterable[int], *, owner: str, lease_until: dt.datetime
    ) -> int:
        """Extend `owner`'s leases on these rows while it still holds them; return how many."""
        ids = list(message_ids)
        if not ids:
            return 0
        result = self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.claimed_by == owner,
                OutboxMessage.status == "sending",
            )
            .values(lease_until=lease_until)
        )
        return result.rowcount or 0

    def mark_posted(self, message_id: int, *, channel: str, ts: str) -> None:
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(slack_channel=channel, slack_ts=ts)
        )

    def mark_sent(self, message_id: int, *, at: dt.datetime) -> None:
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(status="sent", sent_at=at, file_sent=True, last_error=None, lease_until=None)
        )

    def mark_failed_attempt(
        self,
        message_id: int,
        *,
        error: str,
        permanent: bool,
        max_attempts: int,
        retry_at: Callable[[int], dt.datetime],
    ) -> str:
        """Return the row's new status: "failed" if hopeless, else "pending" for a retry.

        A retried row waits until `retry_at(attempts so far)` before the sweeper tries again.
        """
        attempts = (
            self.session.scalar(
                select(OutboxMessage.attempts).where(OutboxMessage.id == message_id)
            )
            or 0
        )
        status = "failed" if permanent or attempts >= max_attempts else "pending"
        self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(
                status=status,
                last_error=error,
                lease_until=None,
                next_attempt_at=retry_at(attempts) if status == "pending" else None,
            )
        )
        return status

    def count_pending(self, *, now: dt.datetime, job: str | None = None) -> int:
        """Return how many messages wait to be sent: pending, or held by a lapsed claim.

        A row another live run is sending right now is that run's business, not pending.
        """
        statement = select(func.count()).where(
            _of_job(job),
            or_(
                OutboxMessage.status == "pending",
                and_(
                    OutboxMessage.status == "sending",
                    or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
                ),
            ),
        )
        return self.session.scalar(statement) or 0

    def messages(self, job: str | None = None) -> list[OutboxMessage]:
        statement = select(OutboxMessage).order_by(OutboxMessage.id)
        if job is not None:
            statement = statement.where(OutboxMessage.job == job)
        return list(self.session.scalars(statement))


class ReminderRepository:
    """The set-based reads the jobs plan from."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def team_timezones(self) -> set[str]:
        return set(self.session.scalars(select(Team.timezone).distinct()))

    def rep_timezones(self, default_timezone: str) -> list[tuple[str, str]]:
        """Return (rep id, timezone of the rep's first team) for every rep in a team."""
        first_team = (
            select(TeamMember.user_id, func.min(TeamMember.team_id).label("team_id"))
            .where(TeamMember.role == "rep")
            .group_by(TeamMember.user_id)
            .subquery()
        )
        statement = (
            select(first_team.c.user_id, Team.timezone)
            .join(Team, Team.id == first_team.c.team_id)
            .order_by(first_team.c.user_id)
        )
        return [
            (user_id, zone or default_timezone) for user_id, zone in self.session.execute(statement)
        ]

    def deal_facts(
        self,
        *,
        quarter: tuple[dt.date, dt.date],
        closed_since: dt.datetime | None = None,
        owner_ids: Iterable[str] | None = None,
        deal_ids: Iterable[int] | None = None,
    ) -> list[DealFacts]:
        """Return the facts the checks need for open deals (and deals closed since a time).

        One statement: each per-deal aggregate (open next steps, contacts, close-date pushes
        this quarter) is a grouped subquery joined to the deals, so the cost is a few index
        scans however many deals there are.
        """
        statement = _deal_facts_statement(
            with_closed=closed_since is not None,
            by_owner=owner_ids is not None,
            by_deal=deal_ids is not None,
        )
        parameters = _facts_parameters(quarter, closed_since=closed_since)
        if owner_ids is not None:
            parameters["owner_ids"] = list(owner_ids)
        if deal_ids is not None:
            parameters["deal_ids"] = list(deal_ids)
        # Core rows straight from the connection, unpacked as tuples: no ORM result machinery
        # and no by-name column lookups per row (a weekly run reads 100,000 of them).
        return [_facts_of(row) for row in self.session.connection().execute(statement, parameters)]

    def listed_deals(
        self, *, quarter: tuple[dt.date, dt.date], owner_ids: Iterable[str]
    ) -> list[ListedDeal]:
        """Return these owners' open deals as lists show them, sorted by close date.

        The facts and what the list shows come from one statement (the facts query with
        the current next step joined): a /pipeline reads each deal once.
        """
        statement = _deal_facts_statement(
            with_closed=False, by_owner=True, by_deal=False, listed=True
        )
        parameters = _facts_parameters(quarter, closed_since=None)
        parameters["owner_ids"] = list(owner_ids)
        return [
            ListedDeal(_facts_of(row), *row[_LISTED_COLUMNS:])
            for row in self.session.connection().execute(statement, parameters)
        ]


class RepZoneRepository:
    """Deal owners and the timezone each one's Slack profile gave (cached for a day)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def stale_owners(self, *, fetched_before: dt.datetime, closed_since: dt.datetime) -> list[str]:
        """Return the owners in scope whose Slack zone is unknown or was fetched before then."""
        owners = _active_owners(closed_since)
        statement = (
            select(owners.c.owner_id)
            .outerjoin(RepZone, RepZone.user_id == owners.c.owner_id)
            .where(or_(RepZone.fetched_at.is_(None), RepZone.fetched_at <= fetched_before))
            .order_by(owners.c.owner_id)
        )
        return list(self.session.scalars(statement))

    def save(self, user_id: str, *, tz: str | None, at: dt.datetime) -> None:
        """Remember the zone Slack gave for `user_id` (None: it gave none) as of `at`."""
        values = {"user_id": user_id, "tz": tz, "fetched_at": at}
        table = RepZone.__table__
        statement = (
            dialect_insert(self.session, table)
            .values(values)
            .on_conflict_do_update(index_elements=["user_id"], set_={"tz": tz, "fetched_at": at})
        )
        self.session.execute(statement)

    def owner_timezones(
        self, *, default_timezone: str, closed_since: dt.datetime
    ) -> list[tuple[str, str]]:
        """Return (owner id, zone) for every owner of an open deal or one closed since then.

        The zone is the owner's Slack profile's, else their team's (as a rep first), else
        `default_timezone`: a rep who logs deals before anyone builds a team still has one.
        """
        owners = _active_owners(closed_since)
        team_of = (
            select(
                TeamMember.user_id,
                func.coalesce(
                    func.min(case((TeamMember.role == "rep", TeamMember.team_id))),
                    func.min(TeamMember.team_id),
                ).label("team_id"),
            )
            .group_by(TeamMember.user_id)
            .subquery()
        )
        statement = (
            select(owners.c.owner_id, RepZone.tz, Team.timezone)
            .outerjoin(RepZone, RepZone.user_id == owners.c.owner_id)
            .outerjoin(team_of, team_of.c.user_id == owners.c.owner_id)
            .outerjoin(Team, Team.id == team_of.c.team_id)
            .order_by(owners.c.owner_id)
        )
        return [
            (owner, own or team or default_timezone)
            for owner, own, team in self.session.execute(statement)
        ]


def _active_owners(closed_since: dt.datetime) -> Any:
    """Return a subquery of the owners of open deals and of deals closed since then."""
    return (
        select(Deal.owner_id)
        .where(or_(Deal.status == "open", Deal.closed_at >= closed_since))
        .distinct()
        .subquery()
    )


class ListedDeal(NamedTuple):
    """An open deal in a list: the checks' facts and the columns only a list shows."""

    facts: DealFacts
    amount: Decimal | None
    currency: str
    step_id: int | None  # the current next step: the open one due soonest
    step_what: str | None
    step_owner_id: str | None
    step_due_date: dt.date | None


# A listed row ends with ListedDeal's columns after the facts.
_LISTED_COLUMNS = 1 - len(ListedDeal._fields)


def _facts_parameters(
    quarter: tuple[dt.date, dt.date], *, closed_since: dt.datetime | None
) -> dict[str, Any]:
    quarter_start, quarter_end = quarter
    parameters: dict[str, Any] = {
        "quarter_start_at": dt.datetime.combine(quarter_start, dt.time(), tzinfo=dt.UTC),
        "start_text": quarter_start.isoformat(),
        "end_text": quarter_end.isoformat(),
    }
    if closed_since is not None:
        parameters["closed_since"] = closed_since
    return parameters


def _facts_of(row: Sequence[Any]) -> DealFacts:
    """Return the facts in a row of _deal_facts_statement (a listed row's first columns)."""
    # The names follow the columns of _deal_facts_statement, in its order.
    (
        deal_id,
        owner_id,
        account,
        title,
        stage,
        status,
        forecast_category,
        amount,
        close_date,
        last_touch_at,
        updated_at,
        stage_entered_at,
        buying_criteria,
        buying_process,
        paper_process,
        close_reason,
        closed_at,
        open_steps,
        dated,
        unowned,
        next_due,
        contacts,
        buyer,
        pushes,
        pushed_out,
        post_mortem_id,
        *_listed,
    ) = row
    return DealFacts(
        deal_id=deal_id,
        owner_id=owner_id,
        account=account,
        title=title,
        stage=stage,
        status=status,
        forecast_category=forecast_category,
        has_amount=amount is not None,
        close_date=close_date,
        open_steps=open_steps or 0,
        open_steps_dated=dated or 0,
        open_steps_without_owner=unowned or 0,
        next_step_due=next_due,
        last_activity_at=max(last_touch_at, updated_at),
        stage_entered_at=stage_entered_at,
        contacts=contacts or 0,
        has_economic_buyer=bool(buyer),
        has_buying_criteria=bool(buying_criteria),
        has_buying_process=bool(buying_process),
        has_paper_process=bool(paper_process),
        close_date_pushes_this_quarter=pushes or 0,
        pushed_out_of_quarter=bool(pushed_out),
        has_post_mortem=post_mortem_id is not None,
        has_close_reason=bool(close_reason),
        closed_at=closed_at,
    )


_NUDGES = Nudge.__table__


class NudgeRepository:
    """Snoozes, nudges and whether reps acted on them."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def snoozed_until(self, deal_ids: Iterable[int] | None = None) -> dict[int, dt.date]:
        statement = select(DealSnooze.deal_id, DealSnooze.until)
        if deal_ids is not None:
            statement = statement.where(DealSnooze.deal_id.in_(list(deal_ids)))
        return {deal_id: until for deal_id, until in self.session.execute(statement)}

    def snooze(self, *, deal_id: int, until: dt.date, by: str, at: dt.datetime) -> None:
        existing = self.session.scalar(select(DealSnooze).where(DealSnooze.deal_id == deal_id))
        if existing is None:
            self.session.add(DealSnooze(deal_id=deal_id, until=until, snoozed_by=by, snoozed_at=at))
        else:
            existing.until, existing.snoozed_by, existing.snoozed_at = until, by, at
        self.session.flush()

    def record_nudges(self, rows: list[dict[str, Any]]) -> None:
        """Insert the (period, rep, deal) nudges not yet recorded, in one batch."""
        if rows:
            statement = insert_ignoring_conflicts(
                self.session, _NUDGES, ["period", "rep_id", "deal_id"]
            )
            self.session.execute(statement, rows)

    def mark_acted(self, *, at: dt.datetime) -> int:
        """Record, set-based, which open nudges the rep acted on since; return how many."""
        later_step = (
            select(NextStep.id)
            .where(NextStep.deal_id == Nudge.deal_id, NextStep.created_at > Nudge.nudged_at)
            .exists()
        )
        later_change = (
            select(DealChange.id)
            .where(
                DealChange.deal_id == Nudge.deal_id,
                DealChange.changed_at > Nudge.nudged_at,
                DealChange.field.in_(("close_date", "stage", "amount", "forecast_category")),
            )
            .exists()
        )
        closed = (
            select(Deal.id)
            .where(Deal.id == Nudge.deal_id, Deal.closed_at > Nudge.nudged_at)
            .exists()
        )
        touched = 0
        for action, condition in (
            ("closed", closed),
            ("next_step", later_step),
            ("change", later_change),
        ):
            result = self.session.execute(
                update(Nudge)
                .where(Nudge.acted_at.is_(None), condition)
                .values(acted_at=at, action=action)
                .execution_options(synchronize_session=False)
            )
            touched += result.rowcount or 0
        return touched

    def check_response(
        self, *, rep_ids: Iterable[str], since: dt.datetime
    ) -> dict[str, tuple[int, int]]:
        """Return check id -> (deals nudged, deals acted on) for sent nudges since `since`."""
        sent = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.job == "chase-next-steps",
                OutboxMessage.period == Nudge.period,
                OutboxMessage.recipient == Nudge.rep_id,
                OutboxMessage.status == "sent",
            )
            .exists()
        )
        statement = select(Nudge.checks, Nudge.acted_at).where(
            Nudge.rep_id.in_(list(rep_ids)), Nudge.nudged_at >= since, sent
        )
        response: dict[str, tuple[int, int]] = {}
        for checks, acted_at in self.session.execute(statement):
            for check in checks.split(","):
                nudged, acted = response.get(check, (0, 0))
                response[check] = (nudged + 1, acted + (acted_at is not None))
        return response


class WeeklyRepository:
    """Weekly snapshots of open deals and reps' accuracy scores."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def snapshot_open_deals(self, *, week: str, owner_ids: Iterable[str], at: dt.datetime) -> int:
        """Snapshot these owners' open deals for `week` (once: later calls add nothing)."""
        owners = list(owner_ids)
        if not owners:
            return 0
        source = select(
            literal(week),
            Deal.id,
            Deal.owner_id,
            Deal.stage,
            Deal.amount,
            Deal.currency,
            Deal.forecast_category,
            Deal.close_date,
            literal(at, UTCDateTime()),
        ).where(Deal.status == "open", Deal.owner_id.in_(owners))
        columns = [
            "week",
            "deal_id",
            "owner_id",
            "stage",
            "amount",
            "currency",
            "forecast_category",
            "close_date",
            "taken_at",
        ]
        table = DealSnapshot.__table__
        statement = insert_ignoring_conflicts(self.session, table, ["week", "deal_id"])
        statement = statement.from_select(columns, source)
        return self.session.execute(statement).rowcount or 0

    def snapshots(self, *, weeks: Iterable[str], owner_ids: Iterable[str]) -> list[DealSnapshot]:
        statement = select(DealSnapshot).where(
            DealSnapshot.week.in_(list(weeks)), DealSnapshot.owner_id.in_(list(owner_ids))
        )
        return list(self.session.scalars(statement))

    def earliest_week_since(self, *, first_week: str, owner_ids: Iterable[str]) -> str | None:
        statement = select(func.min(DealSnapshot.week)).where(
            DealSnapshot.week >= first_week, DealSnapshot.owner_id.in_(list(owner_ids))
        )
        return self.session.scalar(statement)

    def save_scores(
        self, *, week: str, scores: Iterable[tuple[str, int, int]], at: dt.datetime
    ) -> None:
        """Keep the first score computed for each rep and week (the one that was posted)."""
        rows = [
            {"week": week, "rep_id": rep, "passed": passed, "checked": checked, "computed_at": at}
            for rep, passed, checked in scores
        ]
        if rows:
            statement = insert_ignoring_conflicts(
                self.session, AccuracyScore.__table__, ["week", "rep_id"]
            )
            self.session.execute(statement, rows)

    def scores(self, *, week: str, rep_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        statement = select(AccuracyScore.rep_id, AccuracyScore.passed, AccuracyScore.checked).where(
            AccuracyScore.week == week, AccuracyScore.rep_id.in_(list(rep_ids))
        )
        return {rep: (passed, checked) for rep, passed, checked in self.session.execute(statement)}

    def team_deals(
        self, *, owner_ids: Iterable[str], closed_since: dt.datetime, created_since: dt.datetime
    ) -> list[Deal]:
        """Return the owners' open deals, deals closed or created since the given times."""
        statement = (
            select(Deal)
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                or_(
                    Deal.status == "open",
                    Deal.closed_at >= closed_since,
                    Deal.created_at >= created_since,
                ),
            )
            .options(selectinload(Deal.post_mortem))
            .order_by(Deal.id)
        )
        return list(self.session.scalars(statement))

    def changes_since(self, *, owner_ids: Iterable[str], since: dt.datetime) -> list[DealChange]:
        """Return stage and close-date changes to the owners' deals since `since`."""
        statement = (
            select(DealChange)
            .join(Deal)
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                DealChange.changed_at >= since,
                DealChange.field.in_(("stage", "close_date")),
                DealChange.old_value.is_not(None),
            )
            .order_by(DealChange.id)
        )
        return list(self.session.scalars(statement))

    def close_date_pushes_since(self, *, owner_ids: Iterable[str], since: dt.datetime) -> int:
        """Return how many of the owners' deals had their close date pushed since `since`."""
        statement = (
            select(func.count(func.distinct(DealChange.deal_id)))
            .join(Deal)
            .where(
                Deal.owner_id.in_(list(owner_ids)),
                DealChange.field == "close_date",
                DealChange.changed_at >= since,
                DealChange.old_value.is_not(None),
                DealChange.new_value > DealChange.old_value,
            )
        )
        return self.session.scalar(statement) or 0
