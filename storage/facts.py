"""The set-based reads jobs and lists plan from: the deal-facts statement, listed deals, zones."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import cache
from typing import Any, Final, NamedTuple

from sqlalchemy import Dialect, Select, and_, bindparam, case, func, or_, select, true
from sqlalchemy.orm import Session

from domain.checks import DealFacts
from domain.evidence import EVIDENCE_BITS, cited_kinds
from storage.models import (
    Contact,
    Deal,
    DealChange,
    DealEvidence,
    NextStep,
    PostMortem,
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
    # Each kind cited at least once, as one bit: the sum over distinct (deal, kind) pairs.
    kinds = (
        select(DealEvidence.deal_id.label("deal_id"), DealEvidence.field.label("field"))
        .where(_within(DealEvidence.deal_id, in_scope))
        .distinct()
        .subquery()
    )
    cited = (
        select(
            kinds.c.deal_id.label("deal_id"),
            func.sum(
                case(
                    *((kinds.c.field == kind, bit) for kind, bit in EVIDENCE_BITS.items()), else_=0
                )
            ).label("cited"),
        )
        .group_by(kinds.c.deal_id)
        .subquery()
    )
    wanted = Deal.status == "open"
    if with_closed:
        closed_since = bindparam("closed_since", type_=UTCDateTime())
        wanted = or_(wanted, and_(Deal.status != "open", Deal.closed_at >= closed_since))
    wanted = and_(wanted, Deal.is_live())
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
            Deal.currency,
            Deal.close_date,
            # The later of the two, in SQL: one timestamp per row to convert, not two.
            case(
                (Deal.last_touch_at >= Deal.updated_at, Deal.last_touch_at),
                else_=Deal.updated_at,
            ).label("last_activity_at"),
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
            cited.c.cited,
            Deal.team_stage,
        )
        .outerjoin(steps, steps.c.deal_id == Deal.id)
        .outerjoin(contacts, contacts.c.deal_id == Deal.id)
        .outerjoin(pushes, pushes.c.deal_id == Deal.id)
        .outerjoin(PostMortem, PostMortem.deal_id == Deal.id)
        .outerjoin(cited, cited.c.deal_id == Deal.id)
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
            # ListedDeal's columns after the amount, in its order.
            statement.add_columns(
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


# Rows fetched per round trip when facts are streamed: big enough that fetching costs
# nothing per row, small enough that a batch is a few megabytes.
FACTS_BATCH = 5_000


def deal_facts_query(
    *,
    quarter: tuple[dt.date, dt.date],
    closed_since: dt.datetime | None = None,
    owner_ids: Iterable[str] | None = None,
    deal_ids: Iterable[int] | None = None,
) -> tuple[Select[Any], dict[str, Any]]:
    """Return the facts statement and its parameters (`bench.plan_jobs` times it bare)."""
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
    return statement, parameters


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
        scans however many deals there are. Jobs over every deal use `stream_deal_facts`.
        """
        return list(
            self.stream_deal_facts(
                quarter=quarter, closed_since=closed_since, owner_ids=owner_ids, deal_ids=deal_ids
            )
        )

    def stream_deal_facts(
        self,
        *,
        quarter: tuple[dt.date, dt.date],
        closed_since: dt.datetime | None = None,
        owner_ids: Iterable[str] | None = None,
        deal_ids: Iterable[int] | None = None,
    ) -> Iterator[DealFacts]:
        """Yield `deal_facts`' facts in batches, sorted by owner: memory stays flat in deals.

        Rows come through a server-side cursor on PostgreSQL (SQLite steps its cursor
        lazily anyway), so a weekly job over a million deals holds one batch at a time;
        the sort by owner lets a caller finish one rep before the next starts.
        """
        statement, parameters = deal_facts_query(
            quarter=quarter, closed_since=closed_since, owner_ids=owner_ids, deal_ids=deal_ids
        )
        # Options on this statement only: set on the connection, they would also send the
        # session's later statements (a job's batched inserts) through a server-side cursor.
        result = self.session.connection().execute(
            statement,
            parameters,
            execution_options={"stream_results": True, "max_row_buffer": FACTS_BATCH},
        )
        try:
            # The first batch through SQLAlchemy's rows, which also takes the row it reads
            # ahead on a server-side cursor; after it SQLAlchemy holds none, and the rest come
            # from the driver's cursor as plain tuples, each converted by the same column
            # processors SQLAlchemy would run. Its Row objects cost more per deal than the
            # checks that follow, and a weekly run reads every deal.
            yield from map(_facts_of, result.fetchmany(FACTS_BATCH))
            cursor = result.cursor
            if cursor is None:  # closed already: the first batch was all there was
                return
            typed = _driver_types(statement, result.dialect, cursor.description)
            while rows := cursor.fetchmany(FACTS_BATCH):
                for row in rows:
                    yield _facts_of(row, typed)
        finally:
            result.close()

    def listed_deals(
        self,
        *,
        quarter: tuple[dt.date, dt.date],
        owner_ids: Iterable[str],
        closed_since: dt.datetime | None = None,
    ) -> list[ListedDeal]:
        """Return these owners' open deals as lists show them, sorted by close date.

        The facts and what the list shows come from one statement (the facts query with
        the current next step joined): a /pipeline reads each deal once. With
        `closed_since`, the deals closed since then come too (the App Home's score).
        """
        statement = _deal_facts_statement(
            with_closed=closed_since is not None, by_owner=True, by_deal=False, listed=True
        )
        parameters = _facts_parameters(quarter, closed_since=closed_since)
        parameters["owner_ids"] = list(owner_ids)
        # One rep's deals: fetched at once (one driver call, not one per row).
        rows = self.session.connection().execute(statement, parameters).fetchall()
        return [
            ListedDeal(facts, facts.amount, facts.currency, *row[_LISTED_COLUMNS:])
            for row in rows
            for facts in (_facts_of(row),)
        ]


class ListedDeal(NamedTuple):
    """An open deal in a list: the checks' facts and the columns only a list shows."""

    facts: DealFacts
    amount: Decimal | None
    currency: str
    step_id: int | None  # the current next step: the open one due soonest
    step_what: str | None
    step_owner_id: str | None
    step_due_date: dt.date | None


# A listed row ends with ListedDeal's columns after the currency (the facts carry amount and
# currency).
_LISTED_COLUMNS = 3 - len(ListedDeal._fields)


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


def _same(value: Any) -> Any:
    return value


class _TypedColumns(NamedTuple):
    """How `_facts_of` converts the facts' columns a driver may return in another type."""

    amount: Callable[[Any], Decimal | None] = _same
    close_date: Callable[[Any], dt.date | None] = _same
    last_activity_at: Callable[[Any], dt.datetime | None] = _same
    stage_entered_at: Callable[[Any], dt.datetime | None] = _same
    closed_at: Callable[[Any], dt.datetime | None] = _same
    next_due: Callable[[Any], dt.date | None] = _same


# SQLAlchemy's rows, converted already.
_AS_READ: Final = _TypedColumns()


def _driver_types(
    statement: Select[Any], dialect: Dialect, description: Sequence[Sequence[Any]]
) -> _TypedColumns:
    """Return the result processors SQLAlchemy would run on a driver's row of the facts
    statement (SQLite's text dates parsed, its numbers made Decimal, timestamps made
    UTC-aware), for `_facts_of` to run on the columns that have one."""
    processors = {
        column.key: processor
        for column, described in zip(statement.selected_columns, description, strict=True)
        # The dialect's own type, as SQLAlchemy's result takes it (SQLite's DATETIME parses).
        if (processor := column.type.dialect_impl(dialect).result_processor(dialect, described[1]))
        is not None
    }
    unconverted = set(processors) - set(_TypedColumns._fields)
    if unconverted:
        raise RuntimeError(f"facts columns {sorted(unconverted)} need converting: see _facts_of")
    return _TypedColumns(**processors)


def _facts_of(row: Sequence[Any], typed: _TypedColumns = _AS_READ) -> DealFacts:
    """Return the facts in a row of _deal_facts_statement (a listed row's first columns),
    its typed columns converted by `typed` (a driver's row: see `_driver_types`).

    Positional, in DealFacts' field order: keyword arguments cost a visible share of a
    million-deal run.
    """
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
        currency,
        close_date,
        last_activity_at,
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
        cited,
        team_stage,
        *_listed,
    ) = row
    return DealFacts(
        deal_id,
        owner_id,
        account,
        stage,
        status,
        forecast_category,
        amount is not None,  # has_amount
        typed.close_date(close_date),
        open_steps or 0,
        dated or 0,  # open_steps_dated
        unowned or 0,  # open_steps_without_owner
        typed.next_due(next_due),  # next_step_due
        typed.last_activity_at(last_activity_at),
        typed.stage_entered_at(stage_entered_at),
        contacts or 0,
        bool(buyer),  # has_economic_buyer
        bool(buying_criteria),
        bool(buying_process),
        bool(paper_process),
        pushes or 0,  # close_date_pushes_this_quarter
        bool(pushed_out),  # pushed_out_of_quarter
        post_mortem_id is not None,  # has_post_mortem
        bool(close_reason),  # has_close_reason
        typed.closed_at(closed_at),
        title,
        typed.amount(amount),
        currency,
        cited_kinds(cited),
        team_stage,
    )
