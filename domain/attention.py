"""What makes an open deal need attention today: the everyday subset of the accuracy checks."""

from __future__ import annotations

import datetime as dt

from storage.models import Deal

NO_NEXT_STEP = "NO_NEXT_STEP"
NEXT_STEP_NO_OWNER = "NEXT_STEP_NO_OWNER"
NEXT_STEP_OVERDUE = "NEXT_STEP_OVERDUE"
CLOSE_DATE_PAST = "CLOSE_DATE_PAST"
NO_AMOUNT = "NO_AMOUNT"

CHECK_IDS = (NO_NEXT_STEP, NEXT_STEP_NO_OWNER, NEXT_STEP_OVERDUE, CLOSE_DATE_PAST, NO_AMOUNT)


def attention_reasons(deal: Deal, today: dt.date) -> tuple[str, ...]:
    """Return the ids of the checks this open deal fails as of `today` (empty when healthy)."""
    if deal.status != "open":
        return ()
    reasons: list[str] = []
    open_steps = [step for step in deal.next_steps if not step.done]
    if not any(step.due_date is not None for step in open_steps):
        reasons.append(NO_NEXT_STEP)
    if any(step.owner_id is None for step in open_steps):
        reasons.append(NEXT_STEP_NO_OWNER)
    # Due today is not overdue: the rep still has the day to do it.
    if any(step.due_date is not None and step.due_date < today for step in open_steps):
        reasons.append(NEXT_STEP_OVERDUE)
    if deal.close_date is not None and deal.close_date < today:
        reasons.append(CLOSE_DATE_PAST)
    if deal.amount is None:
        reasons.append(NO_AMOUNT)
    return tuple(reasons)
