"""What makes an open deal need attention today: the checks file's `attention` subset.

The predicates live in `reminders.checks`, the one source of truth shared with App Home,
the chase DM and the weekly accuracy score; this module only turns a loaded Deal into the
plain facts they read.
"""

from __future__ import annotations

import datetime as dt

from reminders.checks import DealFacts, default_checks, fired_checks
from storage.models import Deal


def facts_from_deal(deal: Deal) -> DealFacts:
    """Return the check facts of a Deal whose next steps and contacts are loaded."""
    open_steps = [step for step in deal.next_steps if not step.done]
    dated = [step.due_date for step in open_steps if step.due_date is not None]
    return DealFacts(
        deal_id=deal.id,
        owner_id=deal.owner_id,
        account=deal.account,
        title=deal.title,
        stage=deal.stage,
        status=deal.status,
        forecast_category=deal.forecast_category,
        has_amount=deal.amount is not None,
        close_date=deal.close_date,
        open_steps=len(open_steps),
        open_steps_dated=len(dated),
        open_steps_without_owner=sum(1 for step in open_steps if step.owner_id is None),
        next_step_due=min(dated) if dated else None,
        stage_entered_at=deal.stage_entered_at,
        contacts=len(deal.contacts),
        has_economic_buyer=any(c.role == "economic_buyer" for c in deal.contacts),
        has_buying_criteria=bool(deal.buying_criteria),
        has_buying_process=bool(deal.buying_process),
        has_paper_process=bool(deal.paper_process),
        has_close_reason=bool(deal.close_reason),
    )


def attention_reasons(deal: Deal, today: dt.date) -> tuple[str, ...]:
    """Return the ids of the attention checks this open deal fails as of `today`."""
    if deal.status != "open":
        return ()
    config = default_checks()
    return fired_checks(facts_from_deal(deal), today, config, only=config.attention)
