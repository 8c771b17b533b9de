"""An in-memory CRM speaking `crm.connector.CrmConnector`, for the sync engine's tests.

It keeps deals, tasks and field history in dicts, pages pulls by modification time the way
both real connectors do (>= the cursor, so the last second comes back), records every call,
and raises the errors a test queues with `fail(method, error)`. The real clients are tested
against their HTTP fakes elsewhere; this double is for the engine's rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal

from crm.records import (
    ApiUsage,
    CrmContact,
    CrmDeal,
    CrmError,
    CrmFieldChange,
    CrmKind,
    CrmOwner,
    CrmStage,
    CrmTask,
    DealFields,
    NewTask,
    PullBatch,
)

SALESFORCE_STAGES = (
    CrmStage("Prospecting", "Prospecting", Decimal("0.10"), 1, False, False, "pipeline"),
    CrmStage("Qualification", "Qualification", Decimal("0.20"), 2, False, False, "pipeline"),
    CrmStage("Needs Analysis", "Needs Analysis", Decimal("0.20"), 3, False, False, "pipeline"),
    CrmStage(
        "Proposal/Price Quote",
        "Proposal/Price Quote",
        Decimal("0.75"),
        4,
        False,
        False,
        "best_case",
    ),
    CrmStage(
        "Negotiation/Review", "Negotiation/Review", Decimal("0.90"), 5, False, False, "commit"
    ),
    CrmStage("Closed Won", "Closed Won", Decimal(1), 6, True, True, "commit"),
    CrmStage("Closed Lost", "Closed Lost", Decimal(0), 7, True, False, "omitted"),
)


class MemoryCrm:
    """One CRM org in memory. `now` is the CRM's clock: writes stamp `modified_at` with it."""

    def __init__(
        self,
        *,
        kind: CrmKind = "salesforce",
        stages: tuple[CrmStage, ...] = SALESFORCE_STAGES,
        owners: tuple[CrmOwner, ...] = (),
        now: dt.datetime,
        batch_size: int = 2,
    ) -> None:
        self.kind = kind
        self._stages = stages
        self._owners = owners
        self.now = now
        self.batch_size = batch_size
        self.records: dict[str, CrmDeal] = {}
        self.history: list[CrmFieldChange] = []
        self.calls: list[tuple[str, object]] = []
        self.failures: dict[str, list[Exception]] = {}
        self.usage_now: ApiUsage | None = None
        self._next_id = 1

    # --- test controls ----------------------------------------------------------------------

    def fail(self, method: str, *errors: Exception) -> None:
        """Make the next calls of `method` raise these errors, one per call."""
        self.failures.setdefault(method, []).extend(errors)

    def put(self, deal: CrmDeal) -> CrmDeal:
        self.records[deal.id] = deal
        return deal

    def change(self, deal_id: str, **values: object) -> CrmDeal:
        """Change a deal as a person in the CRM would, stamped with the CRM's `now`."""
        changed = dataclasses.replace(self.records[deal_id], modified_at=self.now, **values)  # type: ignore[arg-type]
        self.records[deal_id] = changed
        return changed

    def writes(self) -> list[tuple[str, object]]:
        write_methods = {"create_deal", "update_deal", "create_task", "complete_task"}
        return [call for call in self.calls if call[0] in write_methods]

    def _enter(self, method: str, detail: object = None) -> None:
        self.calls.append((method, detail))
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)

    def _new_id(self, prefix: str) -> str:
        made = f"{prefix}{self._next_id:04d}"
        self._next_id += 1
        return made

    # --- CrmConnector -------------------------------------------------------------------------

    def stages(self) -> tuple[CrmStage, ...]:
        self._enter("stages")
        return self._stages

    def owners(self) -> tuple[CrmOwner, ...]:
        self._enter("owners")
        return self._owners

    def pull(self, cursor: str | None) -> Iterator[PullBatch]:
        self._enter("pull", cursor)
        since = dt.datetime.fromisoformat(cursor) if cursor else None
        changed = sorted(
            (d for d in self.records.values() if since is None or d.modified_at >= since),
            key=lambda d: (d.modified_at, d.id),
        )
        for start in range(0, len(changed), self.batch_size):
            self._enter("pull.batch", start)
            batch = tuple(changed[start : start + self.batch_size])
            yield PullBatch(deals=batch, cursor=batch[-1].modified_at.isoformat())

    def deals(self, ids: Sequence[str]) -> tuple[CrmDeal, ...]:
        self._enter("deals", tuple(ids))
        return tuple(self.records[i] for i in ids if i in self.records)

    def field_history(self, deal_ids: Sequence[str]) -> Iterator[CrmFieldChange]:
        self._enter("field_history", tuple(deal_ids))
        wanted = set(deal_ids)
        yield from sorted(
            (c for c in self.history if c.deal_id in wanted), key=lambda change: change.at
        )

    def create_deal(self, fields: DealFields) -> str:
        self._enter("create_deal", dict(fields))
        deal_id = self._new_id("006")
        amount = fields.get("amount")
        close_date = fields.get("close_date")
        self.records[deal_id] = CrmDeal(
            id=deal_id,
            title=str(fields.get("title") or ""),
            account=_text(fields.get("account")),
            amount=amount if isinstance(amount, Decimal) else None,
            currency=_text(fields.get("currency")),
            close_date=close_date if isinstance(close_date, dt.date) else None,
            stage=str(fields.get("stage") or self._stages[0].id),
            forecast_category=_text(fields.get("forecast_category")),
            next_step=_text(fields.get("next_step")),
            owner=_text(fields.get("owner")),
            modified_at=self.now,
            created_at=self.now,
        )
        return deal_id

    def update_deal(self, deal_id: str, fields: DealFields) -> None:
        self._enter("update_deal", (deal_id, dict(fields)))
        if deal_id not in self.records:
            raise CrmError(f"entity is deleted: {deal_id}", code="ENTITY_IS_DELETED")
        self.records[deal_id] = dataclasses.replace(
            self.records[deal_id], modified_at=self.now, **fields
        )  # type: ignore[arg-type]

    def create_task(self, deal_id: str, task: NewTask) -> str:
        self._enter("create_task", (deal_id, task))
        task_id = self._new_id("00T")
        deal = self.records[deal_id]
        made = CrmTask(id=task_id, subject=task.subject, due=task.due, owner=task.owner, done=False)
        self.records[deal_id] = dataclasses.replace(
            deal, tasks=(*deal.tasks, made), modified_at=self.now
        )
        return task_id

    def complete_task(self, task_id: str) -> None:
        self._enter("complete_task", task_id)
        for deal_id, deal in self.records.items():
            if any(task.id == task_id for task in deal.tasks):
                tasks = tuple(
                    dataclasses.replace(task, done=True) if task.id == task_id else task
                    for task in deal.tasks
                )
                self.records[deal_id] = dataclasses.replace(deal, tasks=tasks, modified_at=self.now)

    def record_url(self, deal_id: str) -> str:
        return f"https://example.my.salesforce.com/lightning/r/Opportunity/{deal_id}/view"

    def usage(self) -> ApiUsage | None:
        return self.usage_now


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def opportunity(
    deal_id: str,
    *,
    title: str,
    account: str | None,
    owner: str,
    modified_at: dt.datetime,
    stage: str = "Qualification",
    amount: Decimal | None = Decimal("50000"),
    close_date: dt.date | None = dt.date(2027, 3, 31),
    forecast_category: str | None = "pipeline",
    next_step: str | None = None,
    contacts: tuple[CrmContact, ...] = (),
    tasks: tuple[CrmTask, ...] = (),
    currency: str | None = None,
) -> CrmDeal:
    """Return a CRM deal with plausible defaults, for tests to vary one thing at a time."""
    return CrmDeal(
        id=deal_id,
        title=title,
        account=account,
        amount=amount,
        currency=currency,
        close_date=close_date,
        stage=stage,
        forecast_category=forecast_category,
        next_step=next_step,
        owner=owner,
        modified_at=modified_at,
        created_at=modified_at - dt.timedelta(days=30),
        contacts=contacts,
        tasks=tasks,
    )
