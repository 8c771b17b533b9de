"""The sync engine: pull what changed in the CRM, push what changed in Slack, once each.

Skeleton of the contract the CLI, the `crm-sync` job and the bot code against; the engine
itself is written behind these signatures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from crm.connector import CrmConnector
from domain.clock import Clock
from storage.database import Database


class SlackDirectory(Protocol):
    """Finds the Slack user of a CRM owner by email (`users.lookupByEmail`)."""

    def user_by_email(self, email: str) -> str | None:
        """Return the Slack user id with this email, or None when nobody has it."""
        ...


@dataclass(frozen=True)
class ConflictNotice:
    """Both sides changed one field since the last sync; `kept` won, `lost` is in history."""

    rep: str  # Slack user id of the deal's owner
    deal_id: int
    deal_name: str
    field: str
    kept: str | None
    lost: str | None
    kept_from: str  # "Salesforce", "HubSpot" or "Slack"


@dataclass(frozen=True)
class RefusalNotice:
    """The CRM refused a change a rep made; `message` is the CRM's own words."""

    rep: str
    deal_id: int
    deal_name: str
    fields: tuple[str, ...]
    message: str


class CrmNotices(Protocol):
    """How the engine tells people things; `bot` wires one that DMs through the outbox."""

    def conflict(self, notice: ConflictNotice) -> None: ...

    def refused(self, notice: RefusalNotice) -> None: ...

    def owners_without_slack_user(self, admins: tuple[str, ...], emails: tuple[str, ...]) -> None:
        """Report owners newly found with no Slack match (each reported once, ever)."""
        ...

    def login_refused(self, admins: tuple[str, ...], message: str) -> None:
        """Report a refused or revoked CRM login (once until a login works again)."""
        ...


@dataclass(frozen=True)
class SyncReport:
    pulled: int
    pushed: int
    conflicts: int
    failed: int

    def summary(self) -> str:
        return (
            f"pulled {self.pulled}, pushed {self.pushed}, "
            f"conflicts {self.conflicts}, failed {self.failed}"
        )


@dataclass(frozen=True)
class CrmStatus:
    kind: str
    connected: bool
    message: str | None  # why not connected, in the CRM's or the setting's words
    last_pull_at: dt.datetime | None
    cursor: str | None
    pending_pushes: int
    refused_pushes: int
    owners_without_slack_user: tuple[str, ...]  # emails


class CrmSync:
    """Mirror one CRM both ways. Each public method opens its own sessions."""

    def __init__(
        self,
        *,
        database: Database,
        connector: CrmConnector,
        directory: SlackDirectory,
        notices: CrmNotices,
        clock: Clock,
        admins: tuple[str, ...] = (),
        default_currency: str = "USD",
    ) -> None:
        self.database = database
        self.connector = connector
        self.directory = directory
        self.notices = notices
        self.clock = clock
        self.admins = admins
        self.default_currency = default_currency

    def run(self, *, full: bool = False, dry_run: bool = False) -> SyncReport:
        """Push pending changes, then pull since the cursor (everything when `full`)."""
        raise NotImplementedError

    def push_pending(self) -> SyncReport:
        """Push only: the every-minute pass that gets Slack changes into the CRM."""
        raise NotImplementedError

    def pull_deals(self, ids: Sequence[str]) -> SyncReport:
        """Pull these deals now (a HubSpot webhook named them), as a regular pull would."""
        raise NotImplementedError

    def status(self) -> CrmStatus:
        raise NotImplementedError
