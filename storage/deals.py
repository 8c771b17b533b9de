"""Deals: finding them by id, source record or name, their changes and next steps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Date,
    Select,
    String,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from storage.models import Deal, DealChange, NextStep, PostMortem

# How many candidates an ambiguous reference offers; more than this is a prompt to type more.
MAX_CANDIDATES = 5
# Ids are INTEGER columns: 32-bit signed on PostgreSQL, the narrowest backend.
MAX_ROW_ID = 2**31 - 1
# Bound parameters per IN list: well under SQLite's and PostgreSQL's limits.
IN_LIST_CHUNK = 500


def name_key(text: str) -> str:
    """Return the case- and space-insensitive key that deal and team lookups compare."""
    return " ".join(text.casefold().split())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class DealRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, deal_id: int) -> Deal | None:
        """Return the live deal with this id, or None (none such, or deleted)."""
        deal = self.get_even_deleted(deal_id)
        return None if deal is None or deal.deleted_at is not None else deal

    def get_even_deleted(self, deal_id: int) -> Deal | None:
        """Return the deal with this id, deleted or not, or None; an id past the column's
        range names none. Only what deals with deleted deals (restore, "was deleted") asks."""
        # `#10^30` typed by a rep, or forged into a button, would overflow the driver.
        if not 0 < deal_id <= MAX_ROW_ID:
            return None
        return self.session.get(Deal, deal_id)

    def open_deals_of_account(self, account: str) -> list[Deal]:
        """Return the live open deals of exactly this account (case and spaces aside), by id."""
        statement = (
            select(Deal)
            .where(Deal.account_key == name_key(account), Deal.status == "open", Deal.is_live())
            .order_by(Deal.id)
            .limit(MAX_CANDIDATES + 1)
        )
        return list(self.session.scalars(statement))

    def add(self, deal: Deal) -> Deal:
        self.session.add(deal)
        self.session.flush()
        return deal

    def by_external_ref(self, external_ref: str) -> Deal | None:
        """Return the deal imported from this source record, if any."""
        return self.session.scalars(select(Deal).where(Deal.external_ref == external_ref)).first()

    def by_account_and_title(self, account: str, title: str | None) -> list[Deal]:
        """Return the deals with exactly this account and title (case and spaces aside)."""
        title_matches = (
            Deal.title_key.is_(None) if title is None else Deal.title_key == name_key(title)
        )
        statement = (
            select(Deal)
            .where(Deal.account_key == name_key(account), title_matches, Deal.is_live())
            .order_by(Deal.id)
            .limit(MAX_CANDIDATES + 1)
        )
        return list(self.session.scalars(statement))

    def find_by_reference(self, text: str) -> list[Deal]:
        """Return live deals whose account or title is `text`, else those starting with it.

        Open deals win over closed ones, so "Initech" finds this year's open deal rather
        than asking about last year's lost one.
        """
        key = name_key(text)
        exact = self._matching(or_(Deal.account_key == key, Deal.title_key == key))
        if exact:
            return exact
        prefix = _escape_like(key) + "%"
        return self._matching(
            or_(
                Deal.account_key.like(prefix, escape="\\"),
                Deal.title_key.like(prefix, escape="\\"),
            )
        )

    def _matching(self, condition: object) -> list[Deal]:
        statement = (
            select(Deal)
            .where(condition, Deal.is_live())  # type: ignore[arg-type]
            .order_by((Deal.status == "open").desc(), Deal.account_key, Deal.id)
            .limit(MAX_CANDIDATES * 4)
        )
        deals = list(self.session.scalars(statement))
        open_deals = [deal for deal in deals if deal.status == "open"]
        return (open_deals or deals)[: MAX_CANDIDATES + 1]

    def record_change(
        self,
        deal: Deal,
        *,
        field: str,
        old: str | None,
        new: str | None,
        by: str,
        at: dt.datetime,
    ) -> None:
        deal.changes.append(
            DealChange(field=field, old_value=old, new_value=new, changed_by=by, changed_at=at)
        )

    def add_post_mortem(self, post_mortem: PostMortem) -> None:
        self.session.add(post_mortem)
        self.session.flush()

    def open_next_steps_overdue_for(self, owner_id: str, today: dt.date) -> list[OverdueStep]:
        """Return open next steps this user owns (or whose deal they own) due before today.

        Two searches, one per way a step is the user's, each on its own index: a step they
        own (by owner), an unowned step of a deal they own (by deal). Asked as one OR,
        SQLite answers the second half by reading every unowned overdue step in the table,
        3 ms of an App Home at 100,000 deals; `coalesce` keeps it off the owner index.
        Columns only: the App Home shows a step and its deal's account, nothing more.
        """
        parameters = {"owner_id": owner_id, "today": today}
        return [OverdueStep(*row) for row in self.session.execute(_overdue_statement(), parameters)]


@cache
def _overdue_statement() -> Select[Any]:
    """Return the overdue-steps query, built once: building it costs more than running it."""
    owner_id = bindparam("owner_id", type_=String())
    today = bindparam("today", type_=Date())
    columns = (
        NextStep.id,
        NextStep.deal_id,
        NextStep.what,
        NextStep.owner_id,
        NextStep.due_date,
        Deal.account,
    )
    owned = (
        select(*columns)
        .join(Deal, Deal.id == NextStep.deal_id)
        .where(
            NextStep.owner_id == owner_id,
            NextStep.done.is_(False),
            NextStep.due_date < today,
            Deal.status == "open",
            Deal.is_live(),
        )
    )
    unowned = (
        select(*columns)
        .select_from(Deal)
        .join(NextStep, NextStep.deal_id == Deal.id)
        .where(
            Deal.owner_id == owner_id,
            Deal.status == "open",
            Deal.is_live(),
            NextStep.done.is_(False),
            NextStep.due_date < today,
            func.coalesce(NextStep.owner_id, "") == "",
        )
    )
    steps = union_all(owned, unowned).subquery()
    return select(steps).order_by(steps.c.due_date, steps.c.id)


class OverdueStep(NamedTuple):
    """An open next step past its due date, with the account of its deal."""

    id: int
    deal_id: int
    what: str
    owner_id: str | None
    due_date: dt.date
    account: str


class DealImportRepository:
    """Deals looked up and written many at a time, for an import of thousands of rows.

    One query per few hundred rows instead of one per row, and a batch's rows sent in one
    statement (a multi-row INSERT; COPY on PostgreSQL): what takes an import of 100,000
    rows from minutes to seconds.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def by_external_refs(self, external_refs: Collection[str]) -> dict[str, Deal]:
        """Return external ref -> deal, for those of `external_refs` already imported."""
        found: dict[str, Deal] = {}
        for chunk in _chunks(sorted(set(external_refs))):
            statement = select(Deal).where(Deal.external_ref.in_(chunk))
            for deal in self.session.scalars(statement):
                assert deal.external_ref is not None
                found[deal.external_ref] = deal
        return found

    def by_account_and_title_keys(
        self, keys: Collection[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], list[Deal]]:
        """Return (account key, title key) -> the deals with exactly those keys, by id.

        Each list is cut at MAX_CANDIDATES + 1, as `DealRepository.by_account_and_title`.
        """
        wanted = set(keys)
        found: dict[tuple[str, str | None], list[Deal]] = {}
        for chunk in _chunks(sorted({account for account, _ in wanted})):
            statement = (
                select(Deal).where(Deal.account_key.in_(chunk), Deal.is_live()).order_by(Deal.id)
            )
            for deal in self.session.scalars(statement):
                key = (deal.account_key, deal.title_key)
                if key in wanted:
                    found.setdefault(key, []).append(deal)
        return {key: deals[: MAX_CANDIDATES + 1] for key, deals in found.items()}

    def insert_deals(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Return the ids of the new deals, in the order of `rows` (one column dict each)."""
        if not rows:
            return []
        table = Deal.__table__
        if self._copies():
            # Ids drawn from the deals' own sequence first, so that COPY can carry them.
            ids = list(
                self.session.scalars(
                    text(
                        "SELECT nextval(pg_get_serial_sequence('deals', 'id')) "
                        "FROM generate_series(1, :n)"
                    ),
                    {"n": len(rows)},
                )
            )
            self._copy(table, [{"id": id_, **row} for id_, row in zip(ids, rows, strict=True)])
            return [int(id_) for id_ in ids]
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(self.session.scalars(statement, list(rows)))

    def insert_changes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store history rows (`deal_changes` column dicts), in the order given."""
        self._insert(DealChange.__table__, rows)

    def insert_next_steps(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store next steps (`next_steps` column dicts)."""
        self._insert(NextStep.__table__, rows)

    def refresh_statistics(self) -> None:
        """Have PostgreSQL's planner count the rows just loaded (ANALYZE).

        After a bulk load its statistics still describe the table before it, and lookups by
        record id or name may then scan the whole table instead of using their index: a
        re-import of 100,000 rows spent 35 s on its lookups without, 14 s with. SQLite plans
        without statistics.
        """
        if self._copies():
            self.session.execute(text("ANALYZE deals, deal_changes, next_steps"))

    def _insert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        if self._copies():
            self._copy(table, rows)
        else:
            self.session.execute(insert(table), list(rows))

    def _copies(self) -> bool:
        """Return whether rows go in by COPY: PostgreSQL's bulk path, several times faster
        there than a multi-row INSERT, which spends its time adapting parameters."""
        return self.session.get_bind().dialect.name == "postgresql"

    def _copy(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """COPY `rows` into `table` inside the session's transaction, through the columns'
        own bind processing (times to UTC), raising SQLAlchemy's errors as an INSERT would."""
        connection = self.session.connection()
        dialect = connection.dialect
        columns = list(rows[0])
        processors = [table.c[name].type.bind_processor(dialect) for name in columns]
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        driver = connection.connection.driver_connection
        assert driver is not None
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(
                        [
                            value if process is None else process(value)
                            for process, value in zip(
                                processors, (row[name] for name in columns), strict=True
                            )
                        ]
                    )
        except dialect.loaded_dbapi.Error as error:
            raise DBAPIError.instance(
                statement, None, error, dialect.loaded_dbapi.Error, dialect=dialect
            ) from error


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[start : start + IN_LIST_CHUNK] for start in range(0, len(values), IN_LIST_CHUNK)]
