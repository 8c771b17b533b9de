"""Pure rules that translate between a CRM's records and dealbot's: no I/O, no session.

Stages map by meaning (closed and won, closed and lost), then by label, then by nearest
probability; values compare as text, the way `crm_links.synced` keeps them, so "the CRM
changed this field" is a string inequality and nothing depends on a client's types.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from crm.records import CrmDeal, CrmStage, CrmTask, DealFields
from domain.stages import Stage

# Backoff of a push the CRM could not take now: 30 s, doubling, at most 30 minutes.
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 30 * 60.0

# The fields whose changes a deal's history keeps (as domain.deals records them).
TRACKED_FIELDS = ("stage", "amount", "close_date", "forecast_category", "status")


def _label_key(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


def dealbot_stage_for(stage: CrmStage, stages: Sequence[Stage]) -> str:
    """Return the dealbot stage key a CRM stage maps to.

    Closed and won → closed_won; closed and lost → closed_lost; an open stage whose label is
    a dealbot stage's label or key (or starts with it: "Proposal/Price Quote") → that stage;
    else the open dealbot stage of nearest probability (the earlier one on a tie).
    """
    closed = [s for s in stages if s.is_closed]
    if stage.is_closed:
        won = [s for s in closed if s.probability >= Decimal(1)] or closed[:1]
        lost = [s for s in closed if s.probability <= Decimal(0)] or closed[-1:]
        if stage.is_won and won:
            return won[0].key
        if not stage.is_won and lost:
            return lost[0].key
    open_stages = sorted((s for s in stages if not s.is_closed), key=lambda s: s.order)
    label = _label_key(stage.label)
    for candidate in open_stages:
        names = {_label_key(candidate.label), _label_key(candidate.key)}
        if label in names:
            return candidate.key
    for candidate in open_stages:
        names = {_label_key(candidate.label), _label_key(candidate.key)}
        if any(label.startswith(name + " ") for name in names):
            return candidate.key
    if not open_stages:
        return stages[0].key
    return min(open_stages, key=lambda s: (abs(s.probability - stage.probability), s.order)).key


def map_stages(crm_stages: Sequence[CrmStage], stages: Sequence[Stage]) -> dict[str, str]:
    """Return each CRM stage id's dealbot stage key."""
    return {stage.id: dealbot_stage_for(stage, stages) for stage in crm_stages}


def crm_stage_for(
    dealbot_stage: str,
    *,
    current: str | None,
    mapping: Mapping[str, str],
    order: Sequence[str],
    rank: Mapping[str, int] | None = None,
) -> str | None:
    """Return the CRM stage id to write for a dealbot stage, None when none maps to it.

    The deal's current CRM stage is kept when it already maps to that dealbot stage (two CRM
    stages may share one dealbot stage); otherwise the one whose id reads as the dealbot
    stage (Salesforce's ids are its stage names: "Proposal/Price Quote" for proposal, not
    "Id. Decision Makers", which only maps there by probability), else the first in pipeline
    order. With `rank` (dealbot stage key -> order), a dealbot stage no CRM stage maps to goes to
    the CRM stage of the nearest dealbot stage, the earlier one on a tie.
    """
    if current is not None and mapping.get(current) == dealbot_stage:
        return current
    candidates = [stage_id for stage_id in order if mapping.get(stage_id) == dealbot_stage]
    named = _label_key(dealbot_stage.replace("_", " "))
    for stage_id in candidates:
        label = _label_key(stage_id)
        if label == named or label.startswith(named + " "):
            return stage_id
    if candidates:
        return candidates[0]
    if rank is None or dealbot_stage not in rank:
        return None
    wanted = rank[dealbot_stage]
    ranked = [
        (abs(rank[mapping[stage_id]] - wanted), rank[mapping[stage_id]], index, stage_id)
        for index, stage_id in enumerate(order)
        if mapping.get(stage_id) in rank
    ]
    return min(ranked)[3] if ranked else None


def status_of(dealbot_stage: str, stage: CrmStage | None) -> str:
    """Return dealbot's status (open / won / lost) for a deal in this CRM stage."""
    if stage is not None and stage.is_closed:
        return "won" if stage.is_won else "lost"
    if dealbot_stage == "closed_won":
        return "won"
    if dealbot_stage == "closed_lost":
        return "lost"
    return "open"


@dataclass(frozen=True)
class PulledNextStep:
    """The next step a CRM deal shows: its earliest open task, else its NextStep text."""

    what: str
    due: dt.date | None
    owner: str | None  # the CRM owner id
    task_id: str | None

    def as_text(self) -> str:
        """Return the step as one comparable string for `crm_links.synced` (what and when)."""
        due = self.due.isoformat() if self.due else ""
        return f"{self.what}\x1f{due}"


def next_step_of(deal: CrmDeal) -> PulledNextStep | None:
    """Return the deal's next step: the open task due first (undated last), else the text."""
    open_tasks = [task for task in deal.tasks if not task.done]
    if open_tasks:
        task = min(open_tasks, key=_task_order)
        return PulledNextStep(what=task.subject, due=task.due, owner=task.owner, task_id=task.id)
    if deal.next_step and deal.next_step.strip():
        return PulledNextStep(what=deal.next_step.strip(), due=None, owner=None, task_id=None)
    return None


def _task_order(task: CrmTask) -> tuple[bool, dt.date, str]:
    return (task.due is None, task.due or dt.date.max, task.id)


def amount_text(amount: Decimal | None) -> str | None:
    return None if amount is None else f"{Decimal(amount):.2f}"


def remote_values(
    deal: CrmDeal,
    *,
    stage_key: str | None,
    owner_slack_id: str | None,
    default_currency: str,
) -> dict[str, str | None]:
    """Return the CRM deal's synced fields as text, by dealbot's field names.

    Fields the CRM gave no opinion on (no forecast category, an unmapped stage, no account)
    are left out, so they never overwrite a local value.
    """
    values: dict[str, str | None] = {
        "title": deal.title,
        "amount": amount_text(deal.amount),
        "currency": deal.currency or default_currency,
        "close_date": deal.close_date.isoformat() if deal.close_date else None,
    }
    if deal.account:
        values["account"] = deal.account
    if stage_key is not None:
        values["stage"] = stage_key
    if deal.forecast_category:
        values["forecast_category"] = deal.forecast_category
    if owner_slack_id is not None:
        values["owner"] = owner_slack_id
    step = next_step_of(deal)
    values["next_step"] = step.as_text() if step else None
    return values


def push_fields(
    values: Mapping[str, str | None],
    *,
    crm_stage: str | None,
    crm_owner: str | None,
) -> DealFields:
    """Return the connector's DealFields for dealbot's latest text values of some fields.

    `values` holds dealbot field names; the stage and the owner come already translated to
    the CRM's ids (a stage or owner the CRM has no id for is left out).
    """
    fields: DealFields = {}
    for name, value in values.items():
        if name == "amount":
            fields["amount"] = None if value is None else Decimal(value)
        elif name == "close_date":
            fields["close_date"] = None if value is None else dt.date.fromisoformat(value)
        elif name == "stage":
            if crm_stage is not None:
                fields["stage"] = crm_stage
        elif name == "owner":
            if crm_owner is not None:
                fields["owner"] = crm_owner
        elif name in ("title", "account", "currency", "forecast_category") and value is not None:
            fields[name] = value
    return fields


def retry_delay(attempts: int, retry_after: float | None = None) -> dt.timedelta:
    """Return how long a push that failed `attempts` times waits, honouring Retry-After."""
    doublings = min(max(attempts - 1, 0), 16)
    seconds = min(FIRST_RETRY_SECONDS * 2**doublings, MAX_RETRY_SECONDS)
    if retry_after is not None:
        seconds = max(seconds, retry_after)
    return dt.timedelta(seconds=seconds)
