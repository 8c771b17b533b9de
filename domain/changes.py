"""What a rep asks to change on a deal, as plain values: the domain's input, from any surface."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from domain.money import Money


@dataclass(frozen=True)
class ContactRef:
    """A person on the buyer's side: a name, an email, a Slack user, or a mix."""

    name: str | None
    email: str | None
    user_id: str | None


@dataclass(frozen=True)
class DealRef:
    """A deal as the rep named it: `#42` gives `deal_id`, anything else `name`."""

    name: str | None
    deal_id: int | None


@dataclass(frozen=True)
class DealChanges:
    """The fields a command sets on a deal; None (or no contacts) leaves a field alone."""

    stage: str | None = None
    # With `stage`, on a team with its own stages: `<team name key>:<stage key>`.
    team_stage: str | None = None
    close_date: date | None = None
    amount: Money | None = None
    forecast: str | None = None
    economic_buyer: ContactRef | None = None
    champion: ContactRef | None = None
    contacts: tuple[ContactRef, ...] = ()
    buying_criteria: str | None = None
    buying_process: str | None = None
    paper_process: str | None = None
    pain: str | None = None
    metrics: str | None = None
    competition: str | None = None
    title: str | None = None
    # Renaming the account and handing the deal to someone else (`account:`, `owner:`).
    account: str | None = None
    owner_id: str | None = None

    def is_empty(self) -> bool:
        """Return whether the changes set nothing at all."""
        return self == DealChanges()

    def only_renames_or_reassigns(self) -> bool:
        """Return whether the changes touch only the deal's names and owner.

        Those may change on a closed deal too: a typo in a won deal's account is a mistake
        to correct, not a change to the deal's record.
        """
        identity = DealChanges(title=self.title, account=self.account, owner_id=self.owner_id)
        return not self.is_empty() and self == identity
