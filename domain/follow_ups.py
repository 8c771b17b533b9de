"""What happened to a follow-up draft, as a plain value both the jobs and Slack replies read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DraftOutcome:
    """What happened to one trigger in one attempt."""

    trigger_id: int
    rep_id: str
    deal_name: str
    template: str
    # drafted | connect (the rep must connect Gmail) | skipped (nothing to send it to)
    # | template_error | retry (try next run) | failed (given up) | busy (another worker)
    # | duplicate (a draft like it was made within the window: subject and link are its)
    status: str
    subject: str | None = None
    preview: str | None = None
    link: str | None = None
    problem: str | None = None
    connect_link: str | None = None
    deal_id: int | None = None
    # Who a draft is to (its address, casefolded), once it is made.
    recipient: str | None = None
