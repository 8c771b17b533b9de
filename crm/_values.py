"""Values and helpers that both sides of the sync engine use (`crm.push`, `crm.pull`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from storage.models import Deal, NextStep

# Above this share of the CRM's allowance, pulls slow down (`crm.pull.SLOW_PULL_INTERVAL`).
SLOW_SHARE = 0.8

T = TypeVar("T")


class Caller(Protocol):
    """Makes one connector call; a refused login tells admins (once) and re-raises."""

    def __call__(self, call: Callable[[], T]) -> T: ...


@dataclass
class Tally:
    """What a run did so far (mutable while it runs; `crm.sync` freezes it into a report)."""

    pulled: int = 0
    pushed: int = 0
    conflicts: int = 0
    failed: int = 0
    later: list[Callable[[], None]] = field(default_factory=list)  # notices, after commit


def local_text(deal: Deal, name: str) -> str | None:
    """Return one of the deal's synced fields as text, as `remote_values` writes the CRM's."""
    if name == "title":
        return deal.title if deal.title is not None else deal.account
    if name == "account":
        return deal.account
    if name == "amount":
        return None if deal.amount is None else f"{deal.amount:.2f}"
    if name == "currency":
        return deal.currency
    if name == "close_date":
        return deal.close_date.isoformat() if deal.close_date else None
    if name == "stage":
        return deal.stage
    if name == "forecast_category":
        return deal.forecast_category
    if name == "owner":
        return deal.owner_id
    if name == "next_step":
        step = current_open_step(deal)
        if step is None:
            return None
        return f"{step.what}\x1f{step.due_date.isoformat() if step.due_date else ''}"
    return None


def current_open_step(deal: Deal) -> NextStep | None:
    open_steps = [step for step in deal.next_steps if not step.done]
    if not open_steps:
        return None
    return min(
        open_steps,
        key=lambda s: (s.due_date is None, s.due_date or dt.date.max, s.id or 0),
    )


def deal_name(deal: Deal) -> str:
    return f"{deal.account} — {deal.title}" if deal.title else deal.account


def usage_share(used: int | None, limit: int | None) -> float | None:
    if used is None or not limit:
        return None
    return used / limit
