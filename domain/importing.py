"""Deals from a Salesforce or HubSpot CSV export: the whole file checked, then written at once.

An import is all or nothing per file. Every row is read and checked first (its bytes are
UTF-8, its fields fit the CRM's own limits and dealbot's columns, it holds no control
characters, its values mean something), and so is what it would do to the deals already
there; a file with any bad row writes nothing and lists every bad row by line. A good file is
written in one transaction. Re-importing the same export changes nothing; a changed row goes
through `update_deal` and `close_deal`, so the deal's history shows what moved, as if a rep
had typed it.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from domain.changes import DealChanges, DealRef
from domain.clock import Clock
from domain.dates import InvalidDate, parse_date
from domain.deals import Actor, DealService
from domain.errors import DomainError
from domain.money import InvalidAmount, Money, is_currency_code, parse_amount
from domain.stages import (
    DEFAULT_STAGES,
    Stage,
    UnknownForecast,
    UnknownStage,
    match_forecast,
    match_stage,
    stage_by_key,
)
from storage.database import Database
from storage.deals import DealImportRepository, DealRepository, name_key
from storage.models import Deal

Outcome = Literal["imported", "updated", "unchanged", "refused", "left_out"]
DateOrder = Literal["mdy", "dmy"]

# Slack user ids are a few letters and digits; the bound is the column that stores owners.
SLACK_USER_ID: Final = re.compile(r"^[UW][A-Z0-9]{2,31}$")


@dataclass(frozen=True)
class Flavour:
    """One CRM's export: which headers carry which field, and what its stages mean."""

    key: str
    name: str
    # field -> the headers that may carry it (compared without case or extra spaces)
    columns: Mapping[str, tuple[str, ...]]
    # the fields whose headers must all be present for an export to be this flavour
    recognised_by: tuple[str, ...]
    # source stage, squashed (letters and digits only, lower case) -> dealbot stage key
    stages: Mapping[str, str]
    # field -> the longest value the CRM itself lets a user save in it; a longer one is not
    # a real export's. Fields not named here are held to `longest_otherwise`.
    longest: Mapping[str, int]
    longest_otherwise: int

    def expected_headers(self) -> str:
        return " and ".join(f"“{self.columns[name][0]}”" for name in self.recognised_by)


SALESFORCE: Final = Flavour(
    key="salesforce",
    name="Salesforce",
    columns={
        "record_id": ("Opportunity ID", "Opportunity 18 Digit ID", "Id"),
        "title": ("Opportunity Name",),
        "account": ("Account Name",),
        "amount": ("Amount",),
        "currency": ("Opportunity Currency", "Currency", "Amount Currency"),
        "stage": ("Stage",),
        "close_date": ("Close Date",),
        "forecast": ("Forecast Category",),
        "owner_name": ("Opportunity Owner", "Owner Name", "Owner Full Name"),
        "owner_email": ("Owner Email", "Opportunity Owner Email"),
        "next_step": ("Next Step",),
        "loss_reason": ("Loss Reason", "Closed Lost Reason"),
    },
    recognised_by=("title", "stage"),
    stages={
        "qualification": "discovery",
        "needsanalysis": "discovery",
        "valueproposition": "demo",
        "iddecisionmakers": "demo",
        "perceptionanalysis": "demo",
        "proposalpricequote": "proposal",
        "negotiationreview": "negotiation",
        "closedwon": "closed_won",
        "closedlost": "closed_lost",
    },
    # Salesforce's field limits: ids are 15 or 18 characters, Account Name 255, Opportunity
    # Name 120, Next Step 255, an owner's full name 121, an email 80, picklists 255.
    longest={
        "record_id": 18,
        "account": 255,
        "title": 120,
        "next_step": 255,
        "owner_name": 121,
        "owner_email": 80,
    },
    longest_otherwise=255,
)

HUBSPOT: Final = Flavour(
    key="hubspot",
    name="HubSpot",
    columns={
        "record_id": ("Record ID", "Deal ID"),
        "title": ("Deal Name",),
        "account": (
            "Associated Company",
            "Associated Company (Primary)",
            "Company Name",
            "Company",
        ),
        "amount": ("Amount",),
        "currency": ("Currency", "Deal Currency", "Deal Currency Code"),
        "stage": ("Deal Stage",),
        "close_date": ("Close Date",),
        "forecast": ("Forecast Category",),
        "owner_name": ("Deal owner", "Deal Owner Name"),
        "owner_email": ("Deal owner email", "Owner Email"),
        "next_step": ("Next step",),
        "loss_reason": ("Closed lost reason",),
    },
    recognised_by=("title", "stage"),
    stages={
        "appointmentscheduled": "discovery",
        "qualifiedtobuy": "discovery",
        "presentationscheduled": "demo",
        "decisionmakerboughtin": "proposal",
        "contractsent": "negotiation",
        "closedwon": "closed_won",
        "closedlost": "closed_lost",
    },
    # HubSpot's record ids are 64-bit numbers; its text properties hold up to 65,536 characters.
    longest={"record_id": 20},
    longest_otherwise=65_536,
)

FLAVOURS: Final = (SALESFORCE, HUBSPOT)

# Forecast categories as the CRMs name them, squashed, where dealbot's own names differ.
_FORECAST_SYNONYMS: Final = {"notforecasted": "omitted", "omit": "omitted"}
_ISO_DATETIME: Final = re.compile(r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2})[ T]")
_SLASHED: Final = re.compile(r"^([0-9]{1,2})[/.]([0-9]{1,2})[/.]([0-9]{4})$")
# Where each stored field lands, so a value the database would refuse is refused here, by line.
_COLUMNS: Final = {
    "account": Deal.__table__.c.account,
    "title": Deal.__table__.c.title,
    "record_id": Deal.__table__.c.external_ref,
}
# Fields stored in a TEXT column: only the CRM's own limit applies.
_STORED_AS_TEXT: Final = frozenset({"next_step", "loss_reason"})
# Stages, amounts, dates, owners are looked up, never stored: no real one is longer.
_LONGEST_LOOKED_UP: Final = 255
# Rows written per transaction: big enough that a batch's INSERTs dominate its round trips,
# small enough that a batch's lookups and parameters stay modest on both backends.
WRITE_BATCH_ROWS: Final = 1_000
# A quoted value longer than this is cut in a message: the line is for reading, not the value.
_SHOWN_CHARACTERS: Final = 40


class UnknownFlavour(ValueError):
    """The headers are neither a Salesforce nor a HubSpot export; `str()` names both."""


class RowRefused(Exception):
    """A row that cannot be imported as it is; `str()` says why, for the person importing."""


def _squashed(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def detect_flavour(headers: Iterable[str]) -> tuple[Flavour, dict[str, int]]:
    """Return the export's flavour and the column index of each field it carries."""
    present = {name_key(header.lstrip("\ufeff")): index for index, header in enumerate(headers)}
    for flavour in FLAVOURS:
        positions: dict[str, int] = {}
        for field_name, headers_for_field in flavour.columns.items():
            found = next(
                (present[k] for h in headers_for_field if (k := name_key(h)) in present), None
            )
            if found is not None:
                positions[field_name] = found
        if all(name in positions for name in flavour.recognised_by):
            return flavour, positions
    expected = "; ".join(f"{f.name}: {f.expected_headers()}" for f in FLAVOURS)
    raise UnknownFlavour(f"not a Salesforce or HubSpot export: expected the headers {expected}")


def read_owner_map(lines: Iterable[str]) -> dict[str, str]:
    """Return source owner (name or email, as a lookup key) -> Slack user id, from a CSV.

    Two columns, an optional header. Raises ValueError naming the line of a bad entry.
    """
    owners: dict[str, str] = {}
    reader = csv.reader(lines)
    while True:
        number = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return owners
        except csv.Error as error:
            raise ValueError(f"line {number}: not readable as CSV ({error})") from None
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if len(cells) < 2 or not cells[0]:
            raise ValueError(f"line {number}: expected `owner name or email,SlackUserId`")
        if not SLACK_USER_ID.match(cells[1]):
            if number == 1:
                continue  # a header
            raise ValueError(f"line {number}: `{_shown(cells[1])}` is not a Slack user id (U…)")
        owners[name_key(cells[0])] = cells[1]


@dataclass(frozen=True)
class OwnerDirectory:
    """Who owns an imported deal in Slack: the owners file first, then the default owner."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    default: str | None = None

    def resolve(self, name: str | None, email: str | None) -> str:
        """Return the Slack user id for this source owner; raises RowRefused, never guesses."""
        for key in (email, name):
            if key and name_key(key) in self.mapping:
                return self.mapping[name_key(key)]
        if self.default is not None:
            return self.default
        shown = " / ".join(_shown(part) for part in (name, email) if part)
        if not shown:
            raise RowRefused("no owner in the row; give one with --owner")
        raise RowRefused(f"owner “{shown}” is not in the owners file")


@dataclass(frozen=True)
class SourceDeal:
    """One export row, checked: everything the import needs, as dealbot values."""

    line: int
    external_ref: str | None
    account: str
    title: str | None
    owner_id: str
    changes: DealChanges
    outcome: Literal["won", "lost"] | None
    loss_reason: str | None
    next_step: str | None

    @property
    def label(self) -> str:
        return f"{self.account} — {self.title}" if self.title else self.account

    @property
    def match_key(self) -> str:
        return self.external_ref or f"{name_key(self.account)}\x00{name_key(self.title or '')}"


@dataclass(frozen=True)
class RowResult:
    line: int
    outcome: Outcome
    label: str
    reason: str | None = None
    deal_id: int | None = None


@dataclass(frozen=True)
class CheckedExport:
    """An export read and checked row by row, before the database is asked anything."""

    flavour: Flavour
    rows: int
    deals: tuple[SourceDeal, ...]
    # rows refused as they stand, and closed rows left out with --open-only
    set_aside: tuple[RowResult, ...]


@dataclass
class ImportReport:
    flavour: Flavour
    dry_run: bool
    rows: int = 0
    results: list[RowResult] = field(default_factory=list)
    # Some batches were written before a batch failed at writing (see DealImporter.write).
    partial: bool = False

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome == outcome)

    @property
    def refused(self) -> list[RowResult]:
        """Return the bad rows, by line; when there is any, nothing was written."""
        return sorted(
            (result for result in self.results if result.outcome == "refused"),
            key=lambda result: result.line,
        )

    def summary_line(self) -> str:
        """Return `imported 42, updated 3, unchanged 10`, or why nothing was written."""
        if self.partial:
            written = sum(1 for r in self.results if r.outcome in ("imported", "updated"))
            return (
                f"stopped: {written:,} rows written, the rest not (see above); re-importing "
                "changes nothing already in, so fix it and import the whole file again"
            )
        if refused := len(self.refused):
            rows = "row" if self.rows == 1 else "rows"
            return (
                f"nothing written: {refused:,} of {self.rows:,} {rows} refused (see above); "
                "fix them and import the whole file again"
            )
        line = (
            f"imported {self.count('imported')}, updated {self.count('updated')}, "
            f"unchanged {self.count('unchanged')}"
        )
        if left_out := self.count("left_out"):
            line += f", closed left out {left_out}"
        return ("dry run, nothing written: " + line) if self.dry_run else line


class _NothingToKeep(Exception):
    """Raised inside the import's transaction so that it rolls back: some row was refused."""


@dataclass(frozen=True)
class _Plan:
    """What a checked row does to the deals there: the outcome, and the deal and its changes."""

    outcome: Literal["imported", "updated", "unchanged"]
    deal_id: int | None = None
    changes: DealChanges | None = None


class DealImporter:
    def __init__(
        self,
        *,
        database: Database,
        clock: Clock,
        default_timezone: ZoneInfo,
        default_currency: str = "USD",
        stages: tuple[Stage, ...] = DEFAULT_STAGES,
    ) -> None:
        self.database = database
        self.clock = clock
        self.default_timezone = default_timezone
        self.default_currency = default_currency
        self.stages = stages

    def import_csv(
        self,
        export: Iterable[bytes],
        *,
        owners: OwnerDirectory,
        open_only: bool = False,
        dry_run: bool = False,
        date_order: DateOrder | None = None,
    ) -> ImportReport:
        """Return what the export did, or would do, row by row (raises UnknownFlavour first)."""
        checked = self.check(export, owners=owners, open_only=open_only, date_order=date_order)
        return self.write(checked, dry_run=dry_run)

    def check(
        self,
        export: Iterable[bytes],
        *,
        owners: OwnerDirectory,
        open_only: bool = False,
        date_order: DateOrder | None = None,
    ) -> CheckedExport:
        """Return every row of the export read and checked; raises UnknownFlavour first.

        `export` is the file's bytes, line by line (a file opened in binary mode): a byte
        that is not UTF-8 refuses its row, by line, instead of ending the read there.
        """
        records = _records(export)
        header = next(records, None)
        if header is None:
            raise UnknownFlavour("the file is empty: expected a CSV export with a header line")
        if header.problem is not None and not header.cells:
            raise UnknownFlavour(f"line {header.line}: {header.problem}")
        flavour, positions = detect_flavour(header.cells)
        headers = {name: header.cells[index].lstrip("\ufeff") for name, index in positions.items()}
        today = self.clock.now().astimezone(self.default_timezone).date()
        deals: list[SourceDeal] = []
        set_aside: list[RowResult] = []
        if header.problem is not None:
            set_aside.append(RowResult(header.line, "refused", "(the header)", header.problem))
        seen: dict[str, int] = {}
        rows = 0
        for record in records:
            rows += 1
            values = {name: _cell(record.cells, index) for name, index in positions.items()}
            label = _label(values)
            if record.problem is not None:
                set_aside.append(RowResult(record.line, "refused", label, record.problem))
                continue
            try:
                deal = self._checked(
                    flavour, record.line, values, headers, owners, today, date_order
                )
            except RowRefused as refusal:
                set_aside.append(RowResult(record.line, "refused", label, str(refusal)))
                continue
            if deal.outcome is not None and open_only:
                set_aside.append(RowResult(record.line, "left_out", deal.label))
                continue
            if deal.match_key in seen:
                reason = f"the same deal as line {seen[deal.match_key]}"
                set_aside.append(RowResult(record.line, "refused", deal.label, reason))
                continue
            seen[deal.match_key] = record.line
            deals.append(deal)
        return CheckedExport(
            flavour=flavour, rows=rows, deals=tuple(deals), set_aside=tuple(set_aside)
        )

    def write(
        self,
        checked: CheckedExport,
        *,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
        batch_rows: int = WRITE_BATCH_ROWS,
    ) -> ImportReport:
        """Return what each row did: all of the file is written, or, if any row is bad, none.

        Every row is first checked against the deals already there (a closed deal, two deals
        a row could be), looking them up a batch at a time, so that every bad row is listed,
        not just the first, before anything is written. A good file is then written
        `batch_rows` rows to a transaction, new deals with one INSERT per table per batch.
        `progress` is called with the number of rows just done.

        A file of at most one batch, and rows that meet each other's deals (one row's deal
        found by another's account and title, a deal two rows would change), take the
        row-by-row path instead: one transaction for the whole file, each row's write seen
        before the next row is read, exactly as a rep typing them would. Larger files trade
        that for batches, so that an import of 100,000 rows takes seconds and never holds
        the database's write lock long enough to stall the running bot; a batch failing at
        writing (only a concurrent writer can make it) keeps the batches before it, which a
        re-import leaves as they are.
        """
        if len(checked.deals) <= batch_rows:
            return self.write_row_by_row(checked, dry_run=dry_run, progress=progress)
        report = ImportReport(
            flavour=checked.flavour,
            dry_run=dry_run,
            rows=checked.rows,
            results=list(checked.set_aside),
        )
        planned = self._plan_in_batches(checked.deals, batch_rows)
        if planned is None:
            return self.write_row_by_row(checked, dry_run=dry_run, progress=progress)
        refusals = [
            RowResult(source.line, "refused", source.label, plan)
            for source, plan in planned
            if isinstance(plan, str)
        ]
        report.results.extend(refusals)
        if refusals or report.refused or dry_run:
            if not report.refused:
                report.results.extend(
                    RowResult(source.line, plan.outcome, source.label, deal_id=plan.deal_id)
                    for source, plan in planned
                    if isinstance(plan, _Plan)
                )
            if progress is not None:
                progress(len(planned))
            report.results.sort(key=lambda result: result.line)
            return report
        for start in range(0, len(planned), batch_rows):
            batch = planned[start : start + batch_rows]
            try:
                with self.database.one_transaction() as database:
                    written = self._write_batch(database, batch)  # type: ignore[arg-type]
            except (RowRefused, DomainError, IntegrityError) as refusal:
                # Checked rows should not get here (a deal created meanwhile by someone
                # else might); the batches before this one stay written.
                report.partial = True
                report.results.append(_stopped_at(batch[0][0], refusal))
                break
            report.results.extend(written)
            if progress is not None:
                progress(len(batch))
        with self.database.session() as session:
            DealImportRepository(session).refresh_statistics()
        report.results.sort(key=lambda result: result.line)
        return report

    def write_row_by_row(
        self,
        checked: CheckedExport,
        *,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Return what each row did, written one row at a time through the deal service.

        All in one transaction: a refusal anywhere, or a dry run, rolls all of it back.
        Slower by an order of magnitude; `write` uses it only for files whose rows meet each
        other's deals, and the import benchmark as its baseline.
        """
        report = ImportReport(
            flavour=checked.flavour,
            dry_run=dry_run,
            rows=checked.rows,
            results=list(checked.set_aside),
        )
        refused = any(result.outcome == "refused" for result in checked.set_aside)
        written: list[RowResult] = []
        current: SourceDeal | None = None
        try:
            # One transaction: a refusal anywhere, or --dry-run, rolls all of it back.
            with self.database.one_transaction(commit=not dry_run) as database:
                deals = self._deal_service(database)
                for current in checked.deals:
                    plan = self._plan(database, current)
                    if isinstance(plan, str):
                        refused = True
                        report.results.append(
                            RowResult(current.line, "refused", current.label, plan)
                        )
                    elif not refused:
                        deal_id = self._write(deals, current, plan)
                        written.append(
                            RowResult(current.line, plan.outcome, current.label, deal_id=deal_id)
                        )
                    if progress is not None:
                        progress(1)
                if refused:
                    raise _NothingToKeep
        except _NothingToKeep:
            pass
        except (RowRefused, DomainError) as refusal:
            # Checked rows should not get here; if one does, the transaction is gone with it.
            assert current is not None
            reason = refusal.problem if isinstance(refusal, DomainError) else str(refusal)
            report.results.append(RowResult(current.line, "refused", current.label, reason))
            refused = True
        if not refused:
            report.results.extend(written)
        report.results.sort(key=lambda result: result.line)
        return report

    # --- many rows -------------------------------------------------------------------------

    def _plan_in_batches(
        self, sources: tuple[SourceDeal, ...], batch_rows: int
    ) -> list[tuple[SourceDeal, _Plan | str]] | None:
        """Return each row with what it would do, or None when rows meet each other's deals.

        The deals rows could be are looked up a batch at a time in one read-only session.
        """
        by_ref_key = {_keys(s.account, s.title) for s in sources if s.external_ref is not None}
        if any(s.external_ref is None and _keys(s.account, s.title) in by_ref_key for s in sources):
            return None  # a row found by name may be a deal an earlier row creates or renames
        planned: list[tuple[SourceDeal, _Plan | str]] = []
        with self.database.session() as session:
            deals = DealImportRepository(session)
            for start in range(0, len(sources), batch_rows):
                batch = sources[start : start + batch_rows]
                by_ref = deals.by_external_refs(
                    [s.external_ref for s in batch if s.external_ref is not None]
                )
                by_name = deals.by_account_and_title_keys(
                    [_keys(s.account, s.title) for s in batch if s.external_ref is None]
                )
                for source in batch:
                    if source.external_ref is not None:
                        existing = by_ref.get(source.external_ref)
                    else:
                        matches = by_name.get(_keys(source.account, source.title), [])
                        if len(matches) > 1:
                            planned.append((source, _several(matches)))
                            continue
                        existing = matches[0] if matches else None
                    planned.append((source, _plan_against(existing, source)))
                # What a batch loaded is not needed by the next one.
                session.expunge_all()
        touched = [plan.deal_id for _, plan in planned if isinstance(plan, _Plan) and plan.deal_id]
        if len(touched) != len(set(touched)):
            return None  # two rows would change one deal: the second must see the first
        return planned

    def _write_batch(
        self, database: Database, batch: list[tuple[SourceDeal, _Plan]]
    ) -> list[RowResult]:
        """Return the batch's results, its new deals inserted a table at a time."""
        now = self.clock.now()
        today = self._import_day()
        first_stage = min(self.stages, key=lambda stage: stage.order).key
        new = [(source, plan) for source, plan in batch if plan.deal_id is None]
        results: list[RowResult] = []
        with database.session() as session:
            repository = DealImportRepository(session)
            ids = repository.insert_deals(
                [
                    _new_deal_row(source, first_stage, self.default_currency, now, today)
                    for source, _ in new
                ]
            )
            changes: list[dict[str, Any]] = []
            steps: list[dict[str, Any]] = []
            for (source, plan), deal_id in zip(new, ids, strict=True):
                changes.extend(
                    _new_deal_history(
                        source, deal_id, first_stage, self.default_currency, now, today
                    )
                )
                if source.next_step and source.outcome is None:
                    steps.append(_next_step_row(source, deal_id, now))
                results.append(RowResult(source.line, plan.outcome, source.label, deal_id=deal_id))
            repository.insert_changes(changes)
            repository.insert_next_steps(steps)
        service = self._deal_service(database)
        for source, plan in batch:
            if plan.deal_id is not None:
                deal_id = self._write(service, source, plan)
                results.append(RowResult(source.line, plan.outcome, source.label, deal_id=deal_id))
        return results

    # --- one row --------------------------------------------------------------------------

    def _deal_service(self, database: Database) -> DealService:
        return DealService(
            database=database,
            clock=self.clock,
            default_timezone=self.default_timezone,
            default_currency=self.default_currency,
            stages=self.stages,
        )

    @staticmethod
    def _plan(database: Database, source: SourceDeal) -> _Plan | str:
        """Return what the row would do to the deals there, or why it cannot be imported."""
        # Refusals are returned, not raised: an error leaving a session would roll the whole
        # import's transaction back, and the rows after this one still need checking.
        with database.session() as session:
            try:
                existing = _existing(DealRepository(session), source)
            except RowRefused as refusal:
                return str(refusal)
            return _plan_against(existing, source)

    def _write(self, deals: DealService, source: SourceDeal, plan: _Plan) -> int:
        """Return the id of the deal the row created or brought up to date."""
        # The import speaks for the operator running it, who may change any deal; the row's
        # owner is who the history names and who owns a new deal.
        actor = Actor(user_id=source.owner_id, is_admin=lambda: True)
        if plan.deal_id is None:
            # An export is the CRM's record: a Commit there needs no evidence cited here.
            view = deals.create_deal(actor, source.account, source.changes, evidence_gate=False)
            ref = DealRef(name=None, deal_id=view.id)
            if source.external_ref is not None:
                with deals.database.session() as session:
                    created = DealRepository(session).get(view.id)
                    assert created is not None
                    created.external_ref = source.external_ref
            if source.next_step and source.outcome is None:
                deals.add_next_step(actor, ref, what=source.next_step, due=None, owner_id=None)
            self._close(deals, actor, ref, source, self._import_day())
            return view.id
        if plan.changes is None:
            return plan.deal_id  # closed in dealbot as in the export
        ref = DealRef(name=None, deal_id=plan.deal_id)
        if not plan.changes.is_empty():
            deals.update_deal(actor, ref, plan.changes, evidence_gate=False)
        self._close(deals, actor, ref, source, self._import_day())
        return plan.deal_id

    def _import_day(self) -> dt.date:
        """Return the day a closed row without a close date closed: the import's, as the
        operator running it sees it (the workspace zone), the same on both write paths."""
        return self.clock.now().astimezone(self.default_timezone).date()

    @staticmethod
    def _close(
        deals: DealService, actor: Actor, ref: DealRef, source: SourceDeal, today: dt.date
    ) -> None:
        if source.outcome is not None:
            deals.close_deal(
                actor,
                ref,
                won=source.outcome == "won",
                reason=source.loss_reason,
                closed_on=_closed_on(source, today),
            )

    # --- checking a row -------------------------------------------------------------------

    def _checked(
        self,
        flavour: Flavour,
        line: int,
        values: Mapping[str, str],
        headers: Mapping[str, str],
        owners: OwnerDirectory,
        today: dt.date,
        date_order: DateOrder | None,
    ) -> SourceDeal:
        """Return the row as dealbot values; raises RowRefused listing every problem."""
        problems = [
            problem
            for name, value in values.items()
            if (problem := _unfit(flavour, name, headers[name], value)) is not None
        ]
        if problems:
            # What a value means is not worth asking while it cannot even be stored.
            raise RowRefused("; ".join(problems))

        account = values.get("account", "")
        title = values.get("title") or None
        if not account:
            problems.append("no account name")
        stage: Stage | None = None
        try:
            stage = self._stage(flavour, values.get("stage", ""))
        except RowRefused as problem:
            problems.append(str(problem))
        amount = None
        try:
            amount = self._amount(values.get("amount", ""), values.get("currency", ""))
        except RowRefused as problem:
            problems.append(str(problem))
        close_date = None
        try:
            close_date = _close_date(values.get("close_date", ""), today, date_order)
        except RowRefused as problem:
            problems.append(str(problem))
        forecast = None
        if stage is not None and not stage.is_closed:
            try:
                forecast = _forecast(values.get("forecast", ""))
            except RowRefused as problem:
                problems.append(str(problem))
        owner_id = None
        try:
            owner_id = owners.resolve(values.get("owner_name"), values.get("owner_email"))
        except RowRefused as problem:
            problems.append(str(problem))
        if problems or stage is None or owner_id is None:
            raise RowRefused("; ".join(problems))
        record_id = values.get("record_id")
        outcome: Literal["won", "lost"] | None = None
        if stage.is_closed:
            outcome = "won" if stage.key == "closed_won" else "lost"
        return SourceDeal(
            line=line,
            external_ref=f"{flavour.key}:{record_id}" if record_id else None,
            account=account,
            title=title,
            owner_id=owner_id,
            changes=DealChanges(
                stage=None if stage.is_closed else stage.key,
                close_date=close_date,
                amount=amount,
                forecast=forecast,
                title=title,
            ),
            outcome=outcome,
            loss_reason=(values.get("loss_reason") or f"Closed lost in {flavour.name}")
            if outcome == "lost"
            else None,
            next_step=values.get("next_step") or None,
        )

    def _stage(self, flavour: Flavour, text: str) -> Stage:
        if not text:
            raise RowRefused("no stage")
        mapped = flavour.stages.get(_squashed(text))
        if mapped is not None:
            return stage_by_key(mapped, self.stages)
        try:
            return match_stage(text, self.stages)
        except UnknownStage:
            known = ", ".join(stage.key for stage in self.stages)
            raise RowRefused(
                f"stage “{_shown(text)}” is not one dealbot knows ({flavour.name}'s standard "
                f"stages are mapped, as are dealbot's own: {known})"
            ) from None

    def _amount(self, text: str, currency_text: str) -> Money | None:
        digits = re.sub(r"[^0-9]", "", text)
        if not text or (digits and set(digits) == {"0"}):
            # "0" or "USD 0.00" in an export means nobody entered an amount, not a free deal.
            return None
        currency = currency_text.strip().upper() or self.default_currency
        if not is_currency_code(currency):
            raise RowRefused(f"currency “{_shown(currency_text)}” is not an ISO 4217 code")
        try:
            return parse_amount(text, default_currency=currency)
        except InvalidAmount as error:
            raise RowRefused(f"amount: {error}") from None


def _close_date(text: str, today: dt.date, date_order: DateOrder | None) -> dt.date | None:
    if not text:
        return None
    if match := _ISO_DATETIME.match(text):
        text = match[1]
    if match := _SLASHED.match(text):
        if date_order is None:
            raise RowRefused(
                f"close date `{_shown(text)}` could be month or day first: "
                "say which with --date-order"
            )
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        month, day = (first, second) if date_order == "mdy" else (second, first)
        text = f"{year:04d}-{month:02d}-{day:02d}"
    try:
        return parse_date(text, today=today)
    except InvalidDate as error:
        raise RowRefused(f"close date: {error}") from None


def _forecast(text: str) -> str | None:
    if not text:
        return None
    squashed = _squashed(text)
    if squashed in _FORECAST_SYNONYMS:
        return _FORECAST_SYNONYMS[squashed]
    try:
        return match_forecast(text)
    except UnknownForecast as error:
        raise RowRefused(f"forecast category: {error}") from None


def _keys(account: str, title: str | None) -> tuple[str, str | None]:
    """Return the (account key, title key) by which a row without a record id is found."""
    return name_key(account), name_key(title) if title else None


def _several(matches: list[Deal]) -> str:
    ids = ", ".join(f"#{deal.id}" for deal in matches)
    return f"several deals have this account and title ({ids}); add the record id"


def _plan_against(existing: Deal | None, source: SourceDeal) -> _Plan | str:
    """Return what the row would do to `existing` (None: no such deal), or why it cannot."""
    if existing is None:
        return _Plan("imported")
    if existing.status != "open":
        if source.outcome == existing.status:
            return _Plan("unchanged", existing.id)
        return (
            f"deal #{existing.id} is already {existing.status} in dealbot; "
            "closed deals keep their record"
        )
    changes = _differences(existing, source.changes)
    moved = not changes.is_empty() or source.outcome is not None
    return _Plan("updated" if moved else "unchanged", existing.id, changes)


def _closed_on(source: SourceDeal, today: dt.date) -> dt.date:
    """Return the day a closed row's deal closed: an export's close date for a closed deal
    is the day it closed (as a CRM sets it); without one, the import's day."""
    return source.changes.close_date or today


def _new_deal_row(
    source: SourceDeal,
    first_stage: str,
    default_currency: str,
    now: dt.datetime,
    today: dt.date,
) -> dict[str, Any]:
    """Return the `deals` columns of the row's new deal, as created and closed by hand.

    The same values `DealService.create_deal`, then `close_deal` for a closed row, store:
    the row-by-row path and this one are held equal by a test.
    """
    amount = source.changes.amount
    closed = source.outcome is not None
    return {
        "account": source.account,
        "account_key": name_key(source.account),
        "title": source.title,
        "title_key": name_key(source.title) if source.title else None,
        "owner_id": source.owner_id,
        "amount": amount.amount if amount else None,
        "currency": amount.currency if amount else default_currency,
        "stage": f"closed_{source.outcome}" if closed else source.changes.stage or first_stage,
        "stage_entered_at": now,
        "close_date": _closed_on(source, today) if closed else source.changes.close_date,
        "forecast_category": source.changes.forecast or "pipeline",
        "status": source.outcome or "open",
        "close_reason": source.loss_reason if closed else None,
        "closed_at": now if closed else None,
        "created_by": source.owner_id,
        "created_at": now,
        "updated_at": now,
        "last_touch_at": now,
        "external_ref": source.external_ref,
    }


def _new_deal_history(
    source: SourceDeal,
    deal_id: int,
    first_stage: str,
    default_currency: str,
    now: dt.datetime,
    today: dt.date,
) -> list[dict[str, Any]]:
    """Return the `deal_changes` rows of a new deal: its starting values, then its closing."""
    amount = source.changes.amount
    stage = source.changes.stage or first_stage
    tracked: list[tuple[str, str | None, str | None]] = [
        ("stage", None, stage),
        ("amount", None, f"{amount.amount:.2f} {amount.currency}" if amount else None),
        (
            "close_date",
            None,
            source.changes.close_date.isoformat() if source.changes.close_date else None,
        ),
        ("forecast_category", None, source.changes.forecast or "pipeline"),
        ("status", None, "open"),
    ]
    if source.outcome is not None:
        # In the order `close_deal` writes them; a row with no close date gets the import's day.
        tracked.append(("stage", stage, f"closed_{source.outcome}"))
        if source.changes.close_date is None:
            tracked.append(("close_date", None, today.isoformat()))
        tracked.append(("status", "open", source.outcome))
    return [
        {
            "deal_id": deal_id,
            "field": name,
            "old_value": old,
            "new_value": new,
            "changed_by": source.owner_id,
            "changed_at": now,
        }
        for name, old, new in tracked
        if new is not None
    ]


def _next_step_row(source: SourceDeal, deal_id: int, now: dt.datetime) -> dict[str, Any]:
    return {
        "deal_id": deal_id,
        "what": source.next_step,
        "owner_id": source.owner_id,
        "due_date": None,
        "done": False,
        "done_at": None,
        "created_by": source.owner_id,
        "created_at": now,
    }


def _stopped_at(first: SourceDeal, error: Exception) -> RowResult:
    """Return the result naming the batch that failed at writing, and why."""
    if isinstance(error, DomainError):
        reason = error.problem
    elif isinstance(error, IntegrityError):
        reason = "a deal with one of these record ids was written meanwhile; import again"
    else:
        reason = str(error)
    return RowResult(first.line, "refused", "(this row's batch, not written)", reason)


def _existing(deals: DealRepository, source: SourceDeal) -> Deal | None:
    """Return the deal this row is, by record id, else by account and title when unique."""
    if source.external_ref is not None:
        return deals.by_external_ref(source.external_ref)
    matches = deals.by_account_and_title(source.account, source.title)
    if len(matches) > 1:
        ids = ", ".join(f"#{deal.id}" for deal in matches)
        raise RowRefused(f"several deals have this account and title ({ids}); add the record id")
    return matches[0] if matches else None


def _differences(deal: Deal, wanted: DealChanges) -> DealChanges:
    """Return the changes that would make `deal` look like the row (empty when it does)."""
    amount = wanted.amount
    same_amount = amount is None or (deal.amount, deal.currency) == (amount.amount, amount.currency)
    return DealChanges(
        stage=wanted.stage if wanted.stage not in (None, deal.stage) else None,
        amount=None if same_amount else amount,
        close_date=wanted.close_date if wanted.close_date not in (None, deal.close_date) else None,
        forecast=wanted.forecast if wanted.forecast not in (None, deal.forecast_category) else None,
        title=wanted.title if wanted.title not in (None, deal.title) else None,
    )


@dataclass(frozen=True)
class _Record:
    """One CSV record: its first line, its cells, and why it cannot be read, if it cannot."""

    line: int
    cells: list[str]
    problem: str | None = None


def _records(export: Iterable[bytes]) -> Iterator[_Record]:
    """Yield each non-blank record with its first line number; quoted fields may span lines.

    A line that is not UTF-8, or a field longer than the CSV reader takes, spoils only its
    own record: the reading goes on, so that every bad row of a file is found in one go.
    """
    undecodable: dict[int, str] = {}

    def decoded_lines() -> Iterator[str]:
        for number, raw in enumerate(export, start=1):
            if number == 1:
                # Salesforce and Excel start their CSV files with a byte-order mark.
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as error:
                column = len(raw[: error.start].decode("utf-8", errors="replace")) + 1
                undecodable[number] = (
                    f"line {number}, column {column}: byte 0x{raw[error.start]:02X} is not "
                    "UTF-8; export the file as UTF-8"
                )
                # Decoded anyway, so the records after this one are still read and checked.
                yield raw.decode("utf-8", errors="replace")

    reader = csv.reader(decoded_lines())
    while True:
        first = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            # The reader starts afresh on the next line, so reading can go on.
            yield _Record(first, [], _unreadable(error))
            continue
        spoilt = [undecodable.pop(n) for n in range(first, reader.line_num + 1) if n in undecodable]
        if spoilt:
            yield _Record(first, cells, "; ".join(spoilt))
        elif any(cell.strip() for cell in cells):
            yield _Record(first, cells)


def _unreadable(error: csv.Error) -> str:
    """Return what a CSV reader's error means for the person importing."""
    if "field limit" in str(error):
        return (
            f"a field is longer than {csv.field_size_limit():,} characters, the most the CSV "
            "reader takes"
        )
    return f"not readable as CSV ({error})"


def _unfit(flavour: Flavour, name: str, header: str, value: str) -> str | None:
    """Return why `value` cannot be stored as it stands in the `header` column, else None."""
    if control := next((ch for ch in value if unicodedata.category(ch) == "Cc"), None):
        return f"“{header}” holds a control character (U+{ord(control):04X}); remove it"
    crm_limit = flavour.longest.get(name, flavour.longest_otherwise)
    if name not in flavour.longest and name not in _COLUMNS and name not in _STORED_AS_TEXT:
        # Looked up, never stored: a stage, an amount, a date, an owner.
        crm_limit = min(crm_limit, _LONGEST_LOOKED_UP)
    column_limit = _column_limit(flavour, name)
    if column_limit is not None and column_limit < crm_limit and len(value) > column_limit:
        return (
            f"“{header}” is {len(value):,} characters long; dealbot keeps at most "
            f"{column_limit:,} ({flavour.name} allows {crm_limit:,})"
        )
    if len(value) > crm_limit:
        return (
            f"“{header}” is {len(value):,} characters long; {flavour.name} allows at most "
            f"{crm_limit:,}"
        )
    return None


def _column_limit(flavour: Flavour, name: str) -> int | None:
    """Return the longest value dealbot's column for this field holds (None: no limit)."""
    column = _COLUMNS.get(name)
    length = getattr(column.type, "length", None) if column is not None else None
    if length is None:
        return None
    # A record id is stored as `salesforce:006…`.
    return length - len(f"{flavour.key}:") if name == "record_id" else length


def _shown(text: str) -> str:
    """Return `text` short enough to quote in a one-line problem."""
    if len(text) <= _SHOWN_CHARACTERS:
        return text
    return text[: _SHOWN_CHARACTERS - 1] + "…"


def _cell(cells: list[str], index: int) -> str:
    return " ".join(cells[index].split()) if index < len(cells) else ""


def _label(values: Mapping[str, str]) -> str:
    account, title = values.get("account", ""), values.get("title", "")
    return " — ".join(_shown(part) for part in (account, title) if part) or "(no name)"


__all__ = [
    "FLAVOURS",
    "HUBSPOT",
    "SALESFORCE",
    "CheckedExport",
    "DealImporter",
    "Flavour",
    "ImportReport",
    "OwnerDirectory",
    "RowRefused",
    "RowResult",
    "SourceDeal",
    "UnknownFlavour",
    "detect_flavour",
    "read_owner_map",
]
