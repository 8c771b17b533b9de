"""`draft-follow-ups`: Gmail (or outbox) drafts for the events that call for an email.

Every 15 minutes: record a trigger for each new stage change, past next step and STALE deal
the rules in templates/email/triggers.yml name, try every pending trigger once, and DM the
rep each draft made (subject, first lines, a link). A rep whose Gmail is not connected, or
whose grant was revoked, gets one connect link a day while their drafts wait; a broken
template is reported to the admins (DEALBOT_ADMINS) once a day and its drafts wait for the
fix. Everything is idempotent: triggers are unique by what caused them, each draft's DM has
its own outbox key, so a rerun announces nothing twice. Events calling for the same draft
within `repeat_window_days` make one (drafts.py); a draft that cannot be made ("no contact")
is said once per deal and reason a day, however many events ran into it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Sequence

from domain.checks import default_checks, fired_checks
from domain.dates import quarter_bounds
from domain.follow_ups import DraftOutcome
from reminders.email.drafts import FollowUps
from reminders.email.google_auth import REVOKED_REASON
from reminders.jobs import (
    Job,
    JobContext,
    OutgoingMessage,
    Schedule,
    day_period,
    message_of,
)
from storage.facts import ReminderRepository

NAME = "draft-follow-ups"
# Drafts made this recently are (re-)announced idempotently, in case a run died between
# making a draft and recording its DM.
ANNOUNCE_WINDOW = dt.timedelta(days=2)

logger = logging.getLogger(__name__)


def plan_follow_ups(context: JobContext) -> list[OutgoingMessage]:
    """Make the drafts due as of `context.now`; return the DMs about them."""
    follow_ups = context.services.follow_ups
    if follow_ups is None:
        return []
    found = follow_ups.find_triggers(context.now, stale_deals=_stale_deals(context))
    outcomes = follow_ups.draft_pending(context.now)
    logger.info("%s: %d new trigger(s), %d attempted", NAME, found, len(outcomes))
    return _messages(context, follow_ups, outcomes)


def _stale_deals(context: JobContext) -> list[tuple[int, str, dt.datetime | None]]:
    """Return (deal, owner, last activity) of open deals the STALE accuracy check fires on."""
    config = default_checks()
    zone = context.settings.timezone
    today = context.now.astimezone(zone).date()
    with context.database.session() as session:
        facts = ReminderRepository(session).deal_facts(quarter=quarter_bounds(today))
    return [
        (deal.deal_id, deal.owner_id, deal.last_activity_at)
        for deal in facts
        if deal.status == "open" and fired_checks(deal, today, config, zone=zone, only=("STALE",))
    ]


def _messages(
    context: JobContext, follow_ups: FollowUps, outcomes: Sequence[DraftOutcome]
) -> list[OutgoingMessage]:
    today = day_period(context.now, context.settings.timezone)
    messages: list[OutgoingMessage] = []
    for drafted in follow_ups.drafted_since(context.now - ANNOUNCE_WINDOW):
        reply = context.render.draft_ready(drafted)
        messages.append(
            message_of(
                reply,
                recipient=drafted.rep_id,
                subject=f"follow-up:{drafted.trigger_id}:drafted",
                period="once",
            )
        )
    waiting: dict[str, list[DraftOutcome]] = defaultdict(list)
    broken: dict[str, str] = {}
    refused: set[str] = set()
    for outcome in outcomes:
        if outcome.status == "connect" and outcome.connect_link:
            waiting[outcome.rep_id].append(outcome)
        elif outcome.status == "skipped":
            # Said once per deal, reason and day: the events that found nobody to write to
            # are one problem to fix, not one DM each (and tomorrow's reminder is another).
            subject = _refusal_subject(outcome)
            if subject in refused:
                continue
            refused.add(subject)
            reply = context.render.draft_skipped(outcome, deal_ref=f"#{outcome.deal_id}")
            messages.append(
                message_of(reply, recipient=outcome.rep_id, subject=subject, period=today)
            )
        elif outcome.status == "template_error":
            broken.setdefault(outcome.template, outcome.problem or "")
    for rep_id, rep_outcomes in waiting.items():
        link = rep_outcomes[0].connect_link or ""
        reply = context.render.connect_gmail(
            link,
            deals=sorted({o.deal_name for o in rep_outcomes}),
            reconnect=any(o.problem == REVOKED_REASON for o in rep_outcomes),
        )
        # One connect link a day per rep, however many drafts wait and however many runs.
        messages.append(message_of(reply, recipient=rep_id, subject="gmail-connect", period=today))
    for template, problem in broken.items():
        reply = context.render.template_broken(template, problem)
        for admin in context.settings.dealbot_admins:
            subject = f"template-broken:{template}"[:120]
            messages.append(message_of(reply, recipient=admin, subject=subject, period=today))
    return messages


def _refusal_subject(outcome: DraftOutcome) -> str:
    """Return the outbox subject of a refusal: the deal and the reason, not the trigger."""
    reason = re.sub(r"[^a-z0-9]+", "-", (outcome.problem or "").casefold()).strip("-")
    return f"follow-up-refused:{outcome.deal_id}:{reason}"[:120]


JOB = Job(
    name=NAME,
    description="Gmail drafts for stage changes, past next steps and quiet deals; DM the link",
    schedule=Schedule(cron={"minute": "*/15"}, timezone="UTC"),
    plan=plan_follow_ups,
)
