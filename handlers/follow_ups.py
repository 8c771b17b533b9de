"""On-demand follow-up drafts: `/deal followup <deal> [template]` and the deal card's button."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from slack_sdk import WebClient

from domain.changes import DealRef
from domain.deals import Actor
from domain.errors import InvalidChange
from domain.follow_ups import DraftOutcome
from handlers import blocks, follow_up_blocks

if TYPE_CHECKING:
    from bot.app import Services

logger = logging.getLogger(__name__)

# On-demand DMs go through the jobs' delivery outbox, under the job's name.
JOB_NAME = "draft-follow-ups"


def follow_up_reply(
    services: Services,
    client: WebClient,
    actor: Actor,
    ref: DealRef,
    template: str | None,
    *,
    today: dt.date,
    after: int | None = None,
    again_value: Callable[[DraftOutcome], str] | None = None,
) -> blocks.Reply:
    """Return the reply to a request for a draft; a Gmail draft's link follows by DM.

    A deal with a fresh draft like the one asked for (same template, same recipient, within
    the rules' window) gets a link to it and a question, unless the rep already answered
    "Make another" (`after`, the fresh draft's trigger): `again_value` is that button's value.
    """
    follow_ups = services.follow_ups
    if follow_ups is None:
        raise InvalidChange("Follow-up drafts are not switched on in this workspace.")
    if after is None and again_value is not None:
        fresh = follow_ups.fresh_draft(actor, ref, template, today=today)
        if fresh is not None and fresh.deal_id is not None:
            return follow_up_blocks.fresh_draft_question(
                fresh, value=again_value(fresh), window_days=follow_ups.rules.repeat_window_days
            )
    trigger_id = follow_ups.request(actor, ref, template, today=today, after=after)
    done = follow_ups.outcome_of(trigger_id)
    if done is not None:
        return follow_up_blocks.draft_ready(done)
    _, email = services.directory.name_and_email(actor.user_id)
    link = follow_ups.connect_link_for(actor.user_id, slack_email=email)
    if link is not None:
        # The request is kept: the job drafts it once Gmail is connected.
        return follow_up_blocks.connect_gmail(link, deals=(), reconnect=False)
    if follow_ups.drafts_inline:
        return _reply_for(follow_ups.draft(trigger_id), ref)
    name = follow_ups.deals.show_deal(actor, ref, today=today).name
    return dataclasses.replace(
        follow_up_blocks.drafting_started(name, template or "follow-up"),
        pending_draft=blocks.PendingDraft(trigger_id=trigger_id, deal=ref),
    )


def draft_and_dm(services: Services, client: WebClient, pending: blocks.PendingDraft) -> None:
    """Make the draft a reply promised, then DM its outcome; run after the reply has gone."""
    if services.follow_ups is None:  # switched off since the reply: nothing to draft with
        return
    try:
        outcome = services.follow_ups.draft(pending.trigger_id)
        _dm(services, client, outcome, pending.deal)
    except Exception:
        logger.exception("on-demand follow-up %s failed", pending.trigger_id)


def _reply_for(outcome: DraftOutcome, ref: DealRef) -> blocks.Reply:
    if outcome.status in ("drafted", "duplicate"):  # a duplicate is the draft made already
        return follow_up_blocks.draft_ready(outcome)
    if outcome.status == "connect" and outcome.connect_link:
        return follow_up_blocks.connect_gmail(outcome.connect_link, deals=(), reconnect=True)
    return follow_up_blocks.follow_up_problem(outcome, deal_ref=_ref(ref))


def _ref(ref: DealRef) -> str:
    return f"#{ref.deal_id}" if ref.deal_id is not None else (ref.name or "")


def _dm(services: Services, client: WebClient, outcome: DraftOutcome, ref: DealRef) -> None:
    """DM the outcome of a background draft through the jobs' delivery (idempotent)."""
    reply = _reply_for(outcome, ref)
    summary = services.send_dm(
        client,
        job=JOB_NAME,
        recipient=outcome.rep_id,
        subject=f"follow-up:{outcome.trigger_id}:{outcome.status}",
        period="on-demand",
        text=reply.text,
        blocks=reply.block_dicts(),
    )
    logger.info("on-demand follow-up %s: %s", outcome.trigger_id, summary)
