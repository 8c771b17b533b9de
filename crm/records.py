"""The plain values a CRM connector reads and writes, the same for Salesforce and HubSpot.

Field names are dealbot's (`title`, `close_date`, `forecast_category`), never a CRM's: each
connector translates at its edge, so the sync engine knows no `StageName` or `dealstage`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

CrmKind = Literal["salesforce", "hubspot"]

CRM_LABELS: Final[dict[str, str]] = {"salesforce": "Salesforce", "hubspot": "HubSpot"}

# The deal fields a connector reads and writes, by dealbot's names. Values in `DealFields`:
#   title: str · account: str · amount: Decimal | None · currency: str (ISO code)
#   close_date: dt.date | None · stage: str (the CRM's stage id) · forecast_category: str
#   (dealbot's key: pipeline / best_case / commit / omitted) · next_step: str | None
#   owner: str (the CRM's owner id)
SYNCED_FIELDS: Final = (
    "title",
    "account",
    "amount",
    "currency",
    "close_date",
    "stage",
    "forecast_category",
    "next_step",
    "owner",
)

DealFields = dict[str, object]


@dataclass(frozen=True)
class CrmStage:
    """One stage of the CRM's pipeline definition (an OpportunityStage, a HubSpot stage)."""

    id: str  # what the CRM stores on the deal: the StageName, HubSpot's stage id
    label: str
    probability: Decimal  # 0..1
    order: int
    is_closed: bool
    is_won: bool
    forecast_category: str | None  # dealbot's key, None when the CRM defines none
    pipeline: str | None = None  # HubSpot's pipeline id; None on Salesforce


@dataclass(frozen=True)
class CrmOwner:
    id: str
    email: str | None
    name: str


@dataclass(frozen=True)
class CrmContact:
    id: str
    name: str
    email: str | None
    role: str | None  # "economic_buyer", "champion" or None (any other role)


@dataclass(frozen=True)
class CrmTask:
    """A next step as the CRM keeps it: a Task on the opportunity or deal."""

    id: str
    subject: str
    due: dt.date | None
    owner: str | None  # the CRM's owner id
    done: bool


@dataclass(frozen=True)
class CrmDeal:
    """One opportunity or deal as pulled, with what hangs off it."""

    id: str
    title: str
    account: str | None
    amount: Decimal | None
    currency: str | None  # None on a single-currency org: the team's currency applies
    close_date: dt.date | None
    stage: str  # a CrmStage.id
    forecast_category: str | None  # dealbot's key
    next_step: str | None
    owner: str | None  # a CrmOwner.id
    modified_at: dt.datetime  # aware, UTC: SystemModstamp / hs_lastmodifieddate
    created_at: dt.datetime | None = None
    contacts: tuple[CrmContact, ...] = ()
    tasks: tuple[CrmTask, ...] = ()


@dataclass(frozen=True)
class CrmFieldChange:
    """One past change of a deal field in the CRM (OpportunityFieldHistory), for backfill."""

    deal_id: str
    field: str  # one of SYNCED_FIELDS
    old: str | None
    new: str | None
    at: dt.datetime
    by: str | None  # the CRM's user or owner id


@dataclass(frozen=True)
class PullBatch:
    """Deals changed since a cursor; `cursor` is safe to store once these are applied."""

    deals: tuple[CrmDeal, ...]
    cursor: str


@dataclass(frozen=True)
class NewTask:
    subject: str
    due: dt.date | None
    owner: str | None  # the CRM's owner id
    done: bool = False


@dataclass(frozen=True)
class ApiUsage:
    """How much of the CRM's request allowance is spent (Sforce-Limit-Info, rate headers)."""

    used: int
    limit: int

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0


class CrmError(Exception):
    """The CRM answered with an error; `str()` is the CRM's own message, fit for the rep."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class CrmRefused(CrmError):
    """The CRM refused this write for good (a validation rule, a required field, a locked
    record, a read-only field): retrying the same values will not help."""

    def __init__(
        self, message: str, *, code: str | None = None, fields: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, code=code)
        self.fields = fields


class CrmAuthFailed(CrmError):
    """The login was refused or revoked (bad key, revoked token, deactivated user)."""


class CrmUnavailable(CrmError):
    """A 5xx, a timeout or a refused connection: try again later."""


class CrmRateLimited(CrmUnavailable):
    """429, or Salesforce's REQUEST_LIMIT_EXCEEDED; `retry_after` in seconds when known."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, code="RATE_LIMITED")
        self.retry_after = retry_after
