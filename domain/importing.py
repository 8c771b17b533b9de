"""Deals from a Salesforce or HubSpot CSV export: each row checked, then created or updated.

Every row is its own transaction: a refused row writes nothing, and the others still go in.
Re-importing the same export changes nothing; a changed row goes through `update_deal` and
`close_deal`, so the deal's history shows what moved, as if a rep had typed it.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TextIO
from zoneinfo import ZoneInfo

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
from storage.models import Deal
from storage.repositories import DealRepository, name_key

Outcome = Literal["imported", "updated", "unchanged", "skipped", "left_out"]
DateOrder = Literal["mdy", "dmy"]

SLACK_USER_ID: Final = re.compile(r"^[UW][A-Z0-9]{2,}$")


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
)

FLAVOURS: Final = (SALESFORCE, HUBSPOT)

# Forecast categories as the CRMs name them, squashed, where dealbot's own names differ.
_FORECAST_SYNONYMS: Final = {"notforecasted": "omitted", "omit": "omitted"}
_ISO_DATETIME: Final = re.compile(r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2})[ T]")
_SLASHED: Final = re.compile(r"^([0-9]{1,2})[/.]([0-9]{1,2})[/.]([0-9]{4})$")


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
    for number, cells in enumerate(csv.reader(lines), start=1):
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if len(cells) < 2 or not cells[0]:
            raise ValueError(f"line {number}: expected `owner name or email,SlackUserId`")
        if not SLACK_USER_ID.match(cells[1]):
            if number == 1:
                continue  # a header
            raise ValueError(f"line {number}: `{cells[1]}` is not a Slack user id (U…)")
        owners[name_key(cells[0])] = cells[1]
    return owners


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
        shown = " / ".join(part for part in (name, email) if part)
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


@dataclass
class ImportReport:
    flavour: Flavour
    dry_run: bool
    results: list[RowResult] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome == outcome)

    @property
    def skipped(self) -> list[RowResult]:
        return [result for result in self.results if result.outcome == "skipped"]

    def summary_line(self) -> str:
        """Return `imported 42, updated 3, unchanged 10, skipped 2 (see above)`."""
        line = (
            f"imported {self.count('imported')}, updated {self.count('updated')}, "
            f"unchanged {self.count('unchanged')}, skipped {self.count('skipped')}"
        )
        if self.skipped:
            line += " (see above)"
        if left_out := self.count("left_out"):
            line += f", closed left out {left_out}"
        return ("dry run, nothing written: " + line) if self.dry_run else line


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
        export: TextIO,
        *,
        owners: OwnerDirectory,
        open_only: bool = False,
        dry_run: bool = False,
        date_order: DateOrder | None = None,
    ) -> ImportReport:
        """Return what happened to each row of the export (raises UnknownFlavour first)."""
        rows = _numbered_rows(export)
        header = next(rows, None)
        if header is None:
            raise UnknownFlavour("the file is empty: expected a CSV export with a header line")
        flavour, positions = detect_flavour(header[1])
        report = ImportReport(flavour=flavour, dry_run=dry_run)
        today = self.clock.now().astimezone(self.default_timezone).date()
        seen: dict[str, int] = {}
        for line, cells in rows:
            values = {name: _cell(cells, index) for name, index in positions.items()}
            label = _label(values)
            try:
                deal = self._checked(flavour, line, values, owners, today, date_order)
            except RowRefused as refusal:
                report.results.append(RowResult(line, "skipped", label, str(refusal)))
                continue
            if deal.outcome is not None and open_only:
                report.results.append(RowResult(line, "left_out", deal.label))
                continue
            if deal.match_key in seen:
                reason = f"the same deal as line {seen[deal.match_key]}"
                report.results.append(RowResult(line, "skipped", deal.label, reason))
                continue
            seen[deal.match_key] = line
            report.results.append(self._import_one(deal, commit=not dry_run))
        return report

    # --- one row --------------------------------------------------------------------------

    def _import_one(self, deal: SourceDeal, *, commit: bool) -> RowResult:
        try:
            with self.database.one_transaction(commit=commit) as database:
                outcome, deal_id = self._write(deal, database)
        except (RowRefused, DomainError) as refusal:
            reason = refusal.problem if isinstance(refusal, DomainError) else str(refusal)
            return RowResult(deal.line, "skipped", deal.label, reason)
        return RowResult(deal.line, outcome, deal.label, deal_id=deal_id)

    def _write(self, source: SourceDeal, database: Database) -> tuple[Outcome, int]:
        deals = DealService(
            database=database,
            clock=self.clock,
            default_timezone=self.default_timezone,
            default_currency=self.default_currency,
            stages=self.stages,
        )
        # The import speaks for the operator running it, who may change any deal; the row's
        # owner is who the history names and who owns a new deal.
        actor = Actor(user_id=source.owner_id, is_admin=lambda: True)
        with database.session() as session:
            existing = _existing(DealRepository(session), source)
            if existing is None:
                changes: DealChanges | None = None
            else:
                deal_id, status = existing.id, existing.status
                changes = _differences(existing, source.changes)
        if changes is None:
            view = deals.create_deal(actor, source.account, source.changes)
            ref = DealRef(name=None, deal_id=view.id)
            if source.external_ref is not None:
                with database.session() as session:
                    created = DealRepository(session).get(view.id)
                    assert created is not None
                    created.external_ref = source.external_ref
            if source.next_step and source.outcome is None:
                deals.add_next_step(actor, ref, what=source.next_step, due=None, owner_id=None)
            self._close(deals, actor, ref, source)
            return "imported", view.id
        if status != "open":
            if source.outcome == status:
                return "unchanged", deal_id
            raise RowRefused(
                f"deal #{deal_id} is already {status} in dealbot; closed deals keep their record"
            )
        ref = DealRef(name=None, deal_id=deal_id)
        if not changes.is_empty():
            deals.update_deal(actor, ref, changes)
        self._close(deals, actor, ref, source)
        moved = not changes.is_empty() or source.outcome is not None
        return ("updated" if moved else "unchanged"), deal_id

    @staticmethod
    def _close(deals: DealService, actor: Actor, ref: DealRef, source: SourceDeal) -> None:
        if source.outcome is not None:
            deals.close_deal(actor, ref, won=source.outcome == "won", reason=source.loss_reason)

    # --- checking a row -------------------------------------------------------------------

    def _checked(
        self,
        flavour: Flavour,
        line: int,
        values: Mapping[str, str],
        owners: OwnerDirectory,
        today: dt.date,
        date_order: DateOrder | None,
    ) -> SourceDeal:
        """Return the row as dealbot values; raises RowRefused listing every problem."""
        problems: list[str] = []

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
                f"stage “{text}” is not one dealbot knows ({flavour.name}'s standard stages "
                f"are mapped, as are dealbot's own: {known})"
            ) from None

    def _amount(self, text: str, currency_text: str) -> Money | None:
        digits = re.sub(r"[^0-9]", "", text)
        if not text or (digits and set(digits) == {"0"}):
            # "0" or "USD 0.00" in an export means nobody entered an amount, not a free deal.
            return None
        currency = currency_text.strip().upper() or self.default_currency
        if not is_currency_code(currency):
            raise RowRefused(f"currency “{currency_text}” is not an ISO 4217 code")
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
                f"close date `{text}` could be month or day first: say which with --date-order"
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


def _numbered_rows(export: TextIO) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line number, cells) of each non-blank record; quoted fields may span lines."""
    reader = csv.reader(export)
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise UnknownFlavour(f"line {line}: not readable as CSV ({error})") from None
        if any(cell.strip() for cell in cells):
            yield line, cells


def _cell(cells: list[str], index: int) -> str:
    return " ".join(cells[index].split()) if index < len(cells) else ""


def _label(values: Mapping[str, str]) -> str:
    account, title = values.get("account", ""), values.get("title", "")
    return " — ".join(part for part in (account, title) if part) or "(no name)"


__all__ = [
    "FLAVOURS",
    "HUBSPOT",
    "SALESFORCE",
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
