"""What a CRM connector does; `crm.salesforce` and `crm.hubspot` implement it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from crm.records import (
    ApiUsage,
    CrmDeal,
    CrmFieldChange,
    CrmKind,
    CrmOwner,
    CrmStage,
    DealFields,
    NewTask,
    PullBatch,
)


class CrmConnector(Protocol):
    """One connected CRM, through its official client.

    Every method raises `CrmRefused`, `CrmAuthFailed`, `CrmUnavailable` or `CrmRateLimited`
    (all `CrmError`) rather than a client's own exception. A connector throttles itself to
    the CRM's documented request rate and honours `Retry-After`; it does not retry writes
    itself beyond what its client's transport does (the sync engine's outbox retries).
    """

    kind: CrmKind

    def stages(self) -> tuple[CrmStage, ...]:
        """Return the stages of the deal pipeline(s), in order."""
        ...

    def owners(self) -> tuple[CrmOwner, ...]:
        """Return every user that can own a deal, with their email."""
        ...

    def pull(self, cursor: str | None) -> Iterator[PullBatch]:
        """Yield the deals changed since `cursor` (all deals when None), oldest first.

        A deal may appear twice across batches (second-precision cursors are read with >=);
        the engine keeps the later. The last batch's cursor is where the next pull starts.
        """
        ...

    def deals(self, ids: Sequence[str]) -> tuple[CrmDeal, ...]:
        """Return these deals as they are now (after a conflict, or to re-read a push)."""
        ...

    def field_history(self, deal_ids: Sequence[str]) -> Iterator[CrmFieldChange]:
        """Yield past changes of these deals' tracked fields, oldest first (first sync)."""
        ...

    def create_deal(self, fields: DealFields) -> str:
        """Create a deal from dealbot's values; return its CRM id."""
        ...

    def update_deal(self, deal_id: str, fields: DealFields) -> None:
        """Write these fields of one deal (only these)."""
        ...

    def create_task(self, deal_id: str, task: NewTask) -> str:
        """Add a next step as a task on the deal; return the task's id."""
        ...

    def complete_task(self, task_id: str) -> None:
        """Mark a task done."""
        ...

    def record_url(self, deal_id: str) -> str:
        """Return the deal's page in the CRM, for the deal card's link."""
        ...

    def usage(self) -> ApiUsage | None:
        """Return the request allowance spent so far, as last reported by the CRM."""
        ...
