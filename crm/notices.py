"""What the sync engine tells people, and how it finds them in Slack.

`CrmSync` decides a notice inside a run and sends it after the commit that decided it; `bot`
wires implementations of these protocols (a directory over `users.lookupByEmail`, notices that
DM through the outbox). Every name here is also importable from `crm.sync`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
