"""Follow-up drafts: find the events that call for one, render the template, make the draft.

The work is Slack-free: it takes how to learn a rep's name and email, and reports outcomes
as plain values; the `draft-follow-ups` job (reminders/follow_ups.py) turns them into DMs.

Each trigger yields at most one draft. A trigger is a row keyed by what caused it (a stage
change's id, a next step's id, a deal's quiet spell), inserted with ON CONFLICT DO NOTHING,
so a rerun or a second instance finds nothing new. Drafting claims the row for a lease and
counts the attempt before calling the backend; the draft's Message-ID is derived from the
trigger, so a retry after a crash finds the draft Google already has instead of adding one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.changes import DealRef
from domain.clock import Clock
from domain.dates import format_day
from domain.deals import Actor, DealService
from domain.errors import DomainError, InvalidChange
from domain.follow_up_triggers import CHECK, NEXT_STEP, ON_DEMAND, STAGE_CHANGE, TriggerRules
from domain.follow_ups import DraftOutcome
from domain.money import format_money
from domain.views import ContactView, DealView
from reminders.email.backends import (
    EmailBackend,
    EmailBackendError,
    MailboxUnavailable,
    TransientEmailError,
)
from reminders.email.message import DraftMessage, Party, message_id_for
from reminders.email.templates import EmailTemplates, TemplateProblem, with_blanks
from storage.database import Database
from storage.follow_ups import FollowUpRepository
from storage.models import FollowUpTrigger

logger = logging.getLogger(__name__)

# A claimed trigger is left alone this long by other workers.
CLAIM_LEASE = dt.timedelta(minutes=10)
# After this many failed attempts (rate limits, outages) a trigger is given up on.
MAX_ATTEMPTS = 8
# The STALE check's default: no change, next step or touch for this long.
STALE_AFTER = dt.timedelta(days=14)
# In the key of an on-demand trigger the rep asked for knowingly over a fresh draft
# ("Make another"), before the fresh draft's trigger id: such a trigger is never merged.
_AGAIN = "after:"
PREVIEW_LINES = 3
CONTACT_PREFERENCE = ("champion", "economic_buyer", "other")
_SIGN_OFF = re.compile(r"^(best|thanks|thank you|regards|kind regards|cheers)\b[^.!?]*,$", re.I)


@dataclass(frozen=True)
class RepProfile:
    """What Slack says about a rep: the name to sign with and the mailbox address."""

    name: str | None
    email: str | None


class FollowUps:
    """Finds follow-up triggers and turns each into exactly one draft."""

    def __init__(
        self,
        *,
        database: Database,
        deals: DealService,
        templates: EmailTemplates,
        rules: TriggerRules,
        backend: EmailBackend,
        clock: Clock,
        rep_profile: Callable[[str], RepProfile],
        connect_link: Callable[[str], str] | None = None,
        stale_after: dt.timedelta = STALE_AFTER,
    ) -> None:
        self.database = database
        self.deals = deals
        self.templates = templates
        self.rules = rules
        self.backend = backend
        self.clock = clock
        self.rep_profile = rep_profile
        self.connect_link = connect_link
        self.stale_after = stale_after

    # --- finding triggers -----------------------------------------------------------------

    def find_triggers(
        self,
        now: dt.datetime,
        *,
        stale_deals: Sequence[tuple[int, str, dt.datetime | None]] | None = None,
    ) -> int:
        """Record a trigger for each new event that calls for an email; return how many.

        `stale_deals` are (deal id, owner, last activity) of the deals the STALE accuracy
        check fired on, when the caller ran the checks; without them, a deal is stale when
        its last touch is older than `stale_after`.
        """
        found = 0
        with self.database.session() as session:
            repository = FollowUpRepository(session)
            for event in self._events(repository, now, stale_deals):
                found += repository.add_trigger(
                    source_key=event.source_key,
                    kind=event.kind,
                    deal_id=event.deal_id,
                    rep_id=event.rep_id,
                    template=event.template,
                    detail=event.detail,
                    at=now,
                )
        return found

    def _events(
        self,
        repository: FollowUpRepository,
        now: dt.datetime,
        stale_deals: Sequence[tuple[int, str, dt.datetime | None]] | None,
    ) -> Iterator[_Event]:
        """Yield the recent events the rules name a template for, known or not."""
        since = now - dt.timedelta(days=self.rules.lookback_days)
        today = now.astimezone(self.deals.default_timezone).date()
        for change in repository.stage_changes_since(since):
            if template := self.rules.for_stage(change.stage):
                key = f"{STAGE_CHANGE}:{change.change_id}"
                yield _Event(
                    key, STAGE_CHANGE, change.deal_id, change.owner_id, template, change.stage
                )
        for step in repository.next_steps_past(
            done_since=since, due_since=since.date(), today=today
        ):
            if template := self.rules.for_next_step(step.what):
                key = f"{NEXT_STEP}:{step.step_id}"
                yield _Event(key, NEXT_STEP, step.deal_id, step.owner_id, template, step.what)
        template = self.rules.for_check("STALE")
        if not template:
            return
        if stale_deals is None:
            stale_deals = repository.quiet_deals(untouched_since=now - self.stale_after)
        for deal_id, owner_id, touched in stale_deals:
            # One draft per quiet spell: a touch starts a new spell and a new key.
            spell = touched.date().isoformat() if touched else "never"
            yield _Event(
                f"{CHECK}:STALE:{deal_id}:{spell}", CHECK, deal_id, owner_id, template, "STALE"
            )

    def request(
        self,
        actor: Actor,
        ref: DealRef,
        template: str | None,
        *,
        today: dt.date | None = None,
        after: int | None = None,
    ) -> int:
        """Record an on-demand draft for a deal; return the trigger's id.

        `today` is the asker's, when the request already knows it. `after` is the fresh
        draft the rep was shown and chose to make another after ("Make another"): it names
        the new draft, so a second click on the same button makes no third one.

        Asking twice on the same day for the same deal, template and recipient gives the same
        draft (a retried command makes no second one).
        Only the deal's owner, their manager or an admin may ask: a draft speaks for the
        owner to their buyer.
        """
        deal, name, contact = self._asked(actor, ref, template, today=today)
        now = self.clock.now()
        today = self.deals.today_for(actor.user_id)
        if after is None:
            # The recipient is in the key: a buyer named since is written to afresh.
            to = hashlib.sha256((contact.email or "").casefold().encode()).hexdigest()[:12]
            key = f"{ON_DEMAND}:{deal.id}:{name}:{actor.user_id}:{today.isoformat()}:{to}"
        else:
            key = f"{ON_DEMAND}:{deal.id}:{name}:{_AGAIN}{after}"
        with self.database.session() as session:
            repository = FollowUpRepository(session)
            repository.add_trigger(
                source_key=key,
                kind=ON_DEMAND,
                deal_id=deal.id,
                rep_id=actor.user_id,
                template=name,
                detail=None,
                at=now,
            )
            trigger = repository.by_key(key)
            assert trigger is not None
            # A trigger that failed or was skipped gets another go when asked for by hand.
            # Its attempts restart at one, not zero: an earlier attempt may have left a draft
            # in Gmail (a timeout after Google took it), so the next one looks first.
            if trigger.status in ("failed", "skipped"):
                trigger.status = "pending"
                trigger.attempts = min(trigger.attempts, 1)
            return trigger.id

    def fresh_draft(
        self, actor: Actor, ref: DealRef, template: str | None, *, today: dt.date | None = None
    ) -> DraftOutcome | None:
        """Return the draft `/deal followup` would repeat, made within the window, if any.

        Same deal, same template, same recipient: the rep is shown it and asked before a
        second one is made. Refuses as `request` does (permissions, a closed deal, nobody
        to write to), so the question is never asked about a draft that could not be made.
        """
        deal, name, contact = self._asked(actor, ref, template, today=today)
        if not self.rules.repeat_window_days:
            return None
        assert contact.email is not None
        with self.database.session() as session:
            repository = FollowUpRepository(session)
            fresh = repository.fresh_draft(
                deal_id=deal.id,
                template=name,
                recipient=contact.email.casefold(),
                since=self.clock.now() - self.rules.repeat_window,
            )
            if fresh is None:
                return None
            return self._drafted_outcome(fresh, {deal.id: deal.name})

    def _asked(
        self, actor: Actor, ref: DealRef, template: str | None, *, today: dt.date | None
    ) -> tuple[DealView, str, ContactView]:
        """Return the deal, template and recipient of an on-demand draft, or refuse it."""
        deal = self.deals.show_deal_to_act_on(actor, ref, act="draft its follow-ups", today=today)
        if deal.status != "open":
            raise InvalidChange(f"{deal.account} is {deal.status}; follow-ups are for open deals.")
        name = template or self.default_template_for(deal)
        if not self.templates.exists(name):
            known = ", ".join(self.templates.names())
            raise InvalidChange(
                f"There is no email template called “{name}”.",
                f"Templates: {known}",
            )
        contact = _recipient(deal)
        if contact is None:
            raise InvalidChange(
                f"{deal.account} has no contact with an email address to write to.",
                f'/deal {deal.account} contact:"Peter Gibbons <peter@example.com>"',
            )
        return deal, name, contact

    @property
    def drafts_inline(self) -> bool:
        """Return whether a draft is quick enough to make inside a slash command's 3 seconds.

        Writing an .eml file takes milliseconds; Gmail, with retries, can take longer.
        """
        return self.backend.name == "outbox"

    def connect_link_for(self, user_id: str, *, slack_email: str | None) -> str | None:
        """Return a connect link when this rep must connect Gmail first, else None."""
        if self.connect_link is None:
            return None
        try:
            self.backend.mailbox(user_id, slack_email=slack_email)
        except MailboxUnavailable as unavailable:
            if unavailable.reconnect:
                return self.connect_link(user_id)
        return None

    def default_template_for(self, deal: DealView) -> str:
        """Return the template that fits the deal's stage, else the discovery recap."""
        return self.rules.for_stage(deal.stage) or "discovery_recap"

    # --- drafting -------------------------------------------------------------------------

    def draft_pending(self, now: dt.datetime) -> list[DraftOutcome]:
        """Try every pending trigger once; return what happened to each."""
        with self.database.session() as session:
            pending = FollowUpRepository(session).pending_ids()
        links: dict[str, str] = {}
        outcomes = []
        for trigger_id in pending:
            outcome = self.draft(trigger_id, now=now, connect_links=links)
            if outcome.status != "busy":
                outcomes.append(outcome)
        return outcomes

    def outcome_of(self, trigger_id: int) -> DraftOutcome | None:
        """Return the settled outcome of a trigger (for an on-demand request already done)."""
        with self.database.session() as session:
            repository = FollowUpRepository(session)
            trigger = repository.get(trigger_id)
            if trigger is None or trigger.status != "drafted":
                return None
            return self._drafted_outcome(trigger, _deal_names(repository, [trigger.deal_id]))

    def draft(
        self,
        trigger_id: int,
        *,
        now: dt.datetime | None = None,
        connect_links: dict[str, str] | None = None,
    ) -> DraftOutcome:
        """Make the draft for one trigger, unless another worker holds it or it is settled."""
        now = now or self.clock.now()
        with self.database.session() as session:
            repository = FollowUpRepository(session)
            trigger = repository.get(trigger_id)
            if trigger is None:
                raise ValueError(f"no follow-up trigger {trigger_id}")
            if trigger.status == "drafted":
                return self._drafted_outcome(trigger, _deal_names(repository, [trigger.deal_id]))
            snapshot = _TriggerSnapshot.of(trigger)  # before the claim updates the row
            if not repository.claim(trigger_id, now=now, lease=CLAIM_LEASE):
                return DraftOutcome(trigger_id, trigger.rep_id, "", trigger.template, "busy")
        # Committed: the attempt is counted before anything leaves the building.
        try:
            return self._draft(snapshot, now, {} if connect_links is None else connect_links)
        except Exception as error:  # one bad trigger must not stop the run for the others
            logger.exception("follow-up trigger %s failed", trigger_id)
            return self._settle_failure(
                snapshot, "retry", f"unexpected {type(error).__name__}", now=now
            )

    def _draft(
        self, trigger: _TriggerSnapshot, now: dt.datetime, links: dict[str, str]
    ) -> DraftOutcome:
        try:
            deal = self.deals.show_deal(Actor(trigger.rep_id), DealRef(None, trigger.deal_id))
        except DomainError:
            return self._settle(trigger, "skipped", problem="the deal no longer exists")
        contact = _recipient(deal)
        if contact is None or contact.email is None:
            return self._settle(
                trigger,
                "skipped",
                deal=deal,
                problem="the deal has no contact with an email address",
            )
        if (same := self._same_draft(trigger, deal, contact.email, now)) is not None:
            return same
        rep = self.rep_profile(trigger.rep_id)
        try:
            mailbox = self.backend.mailbox(trigger.rep_id, slack_email=rep.email)
        except MailboxUnavailable as unavailable:
            return self._unavailable(trigger, deal, unavailable, now, links)
        sender_email = mailbox.email or rep.email
        if not sender_email:
            return self._settle(
                trigger,
                "skipped",
                deal=deal,
                problem="Slack shows no email address for you, so the draft has no sender",
            )
        today = self.deals.today_for(trigger.rep_id)
        context = email_context(
            deal,
            contact,
            RepProfile(name=rep.name, email=sender_email),
            today=today,
            trigger_detail=trigger.detail,
        )
        try:
            rendered = self.templates.render(trigger.template, context)
        except TemplateProblem as problem:
            # Left pending: once an admin fixes the file, the next run drafts it.
            logger.error("email template %s is broken: %s", problem.template, problem.problem)
            return self._release(trigger, deal, "template_error", problem=str(problem))
        with self.database.session() as session:
            # Gmail threads live in one mailbox: only this rep's own drafts can be replied to.
            thread = FollowUpRepository(session).thread_so_far(
                trigger.deal_id, contact.email.casefold(), rep_id=trigger.rep_id, before=trigger.id
            )
        message = DraftMessage(
            sender=Party(rep.name, sender_email),
            to=Party(contact.name, contact.email),
            subject=rendered.subject,
            body=rendered.body,
            message_id=message_id_for(trigger.source_key, mailbox=sender_email),
            date=now,
            in_reply_to=thread.message_ids[-1] if thread.message_ids else None,
            references=thread.message_ids,
            thread_id=thread.thread_id,
        )
        try:
            result = self.backend.create_draft(
                message, mailbox=mailbox, look_first=trigger.attempts > 1
            )
        except MailboxUnavailable as unavailable:
            return self._unavailable(trigger, deal, unavailable, now, links)
        except TransientEmailError as error:
            return self._settle_failure(trigger, "retry", str(error), now=now, deal=deal)
        except (EmailBackendError, ValueError) as error:
            return self._settle(trigger, "failed", deal=deal, problem=str(error))
        preview = _preview(rendered.body)
        with self.database.session() as session:
            row = FollowUpRepository(session).get(trigger.id)
            assert row is not None
            row.status = "drafted"
            row.claimed_until = None
            row.last_error = None
            row.message_id = message.message_id
            row.draft_id = result.draft_id
            row.thread_id = result.thread_id
            row.draft_link = result.link
            row.subject = rendered.subject
            row.preview = preview
            row.recipient = contact.email.casefold()
            row.drafted_at = now
            return self._drafted_outcome(row, {deal.id: deal.name})

    def _same_draft(
        self, trigger: _TriggerSnapshot, deal: DealView, email: str, now: dt.datetime
    ) -> DraftOutcome | None:
        """Return why this trigger makes no draft (one like it exists or is under way), or None.

        None also names this trigger's recipient on its claim, so a worker drafting the same
        template for the deal meanwhile waits for this one instead of making a second.
        """
        if not self.rules.repeat_window_days or _AGAIN in trigger.source_key:
            return None  # every event drafts, or the rep asked for another knowingly
        with self.database.session() as session:
            repository = FollowUpRepository(session)
            same = repository.reserve_recipient(
                trigger.id,
                deal_id=trigger.deal_id,
                template=trigger.template,
                recipient=email.casefold(),
                since=now - self.rules.repeat_window,
                now=now,
            )
            if same.drafted is not None:
                row = repository.get(trigger.id)
                assert row is not None
                row.status = "skipped"
                row.claimed_until = None
                row.last_error = f"a draft like it was made for trigger {same.drafted.id}"
                done = self._drafted_outcome(same.drafted, {deal.id: deal.name})
                return dataclasses.replace(
                    done, trigger_id=trigger.id, rep_id=trigger.rep_id, status="duplicate"
                )
        if same.under_way:
            # Left pending: the next run finds the other one's draft (or its failure).
            return self._release(
                trigger, deal, "busy", problem="a draft like it is being made right now"
            )
        return None

    def _unavailable(
        self,
        trigger: _TriggerSnapshot,
        deal: DealView,
        unavailable: MailboxUnavailable,
        now: dt.datetime,
        links: dict[str, str],
    ) -> DraftOutcome:
        if unavailable.reconnect and self.connect_link is not None:
            # Pending, not counted against the attempts: it drafts once the rep connects.
            outcome = self._release(trigger, deal, "connect", problem=unavailable.reason)
            if trigger.rep_id not in links:  # one link per rep per run
                links[trigger.rep_id] = self.connect_link(trigger.rep_id)
            return dataclasses.replace(outcome, connect_link=links[trigger.rep_id])
        return self._settle_failure(trigger, "retry", unavailable.reason, now=now, deal=deal)

    def _release(
        self, trigger: _TriggerSnapshot, deal: DealView, status: str, *, problem: str
    ) -> DraftOutcome:
        with self.database.session() as session:
            row = FollowUpRepository(session).get(trigger.id)
            assert row is not None
            row.claimed_until = None
            row.attempts = max(0, row.attempts - 1)
            row.last_error = problem[:500]
        return trigger.outcome(status, problem=problem, deal=deal)

    def _settle_failure(
        self,
        trigger: _TriggerSnapshot,
        status: str,
        problem: str,
        *,
        now: dt.datetime,
        deal: DealView | None = None,
    ) -> DraftOutcome:
        with self.database.session() as session:
            row = FollowUpRepository(session).get(trigger.id)
            assert row is not None
            row.claimed_until = None
            row.last_error = problem[:500]
            if row.attempts >= MAX_ATTEMPTS:
                row.status = status = "failed"
        logger.warning("follow-up trigger %s not drafted: %s", trigger.id, problem)
        return trigger.outcome(status, problem=problem, deal=deal)

    def _settle(
        self,
        trigger: _TriggerSnapshot,
        status: str,
        *,
        problem: str,
        deal: DealView | None = None,
    ) -> DraftOutcome:
        with self.database.session() as session:
            row = FollowUpRepository(session).get(trigger.id)
            assert row is not None
            row.status = status
            row.claimed_until = None
            row.last_error = problem[:500]
        return trigger.outcome(status, problem=problem, deal=deal)

    @staticmethod
    def _drafted_outcome(trigger: FollowUpTrigger, deal_names: Mapping[int, str]) -> DraftOutcome:
        return DraftOutcome(
            trigger_id=trigger.id,
            rep_id=trigger.rep_id,
            deal_name=deal_names.get(trigger.deal_id, ""),
            template=trigger.template,
            status="drafted",
            subject=trigger.subject,
            preview=trigger.preview,
            link=trigger.draft_link,
            deal_id=trigger.deal_id,
            recipient=trigger.recipient,
        )

    def drafted_since(self, since: dt.datetime) -> list[DraftOutcome]:
        """Return the drafts events made since `since`, to (re-)announce idempotently.

        On-demand drafts are left out: the rep who asked was answered already.
        """
        with self.database.session() as session:
            repository = FollowUpRepository(session)
            triggers = [t for t in repository.drafted_since(since) if t.kind != ON_DEMAND]
            names = _deal_names(repository, {trigger.deal_id for trigger in triggers})
            return [self._drafted_outcome(trigger, names) for trigger in triggers]


@dataclass(frozen=True)
class _TriggerSnapshot:
    id: int
    source_key: str
    deal_id: int
    rep_id: str
    template: str
    detail: str | None
    attempts: int

    @classmethod
    def of(cls, trigger: FollowUpTrigger) -> _TriggerSnapshot:
        return cls(
            id=trigger.id,
            source_key=trigger.source_key,
            deal_id=trigger.deal_id,
            rep_id=trigger.rep_id,
            template=trigger.template,
            detail=trigger.detail,
            attempts=trigger.attempts + 1,  # counting the claim just made
        )

    def outcome(self, status: str, *, problem: str, deal: DealView | None) -> DraftOutcome:
        """Return the outcome of an attempt on this trigger that made no draft."""
        return DraftOutcome(
            self.id,
            self.rep_id,
            deal.name if deal else "",
            self.template,
            status,
            problem=problem,
            deal_id=self.deal_id,
        )


@dataclass(frozen=True)
class _Event:
    """Something that happened and calls for `template`; `source_key` names it for good."""

    source_key: str
    kind: str
    deal_id: int
    rep_id: str
    template: str
    detail: str | None


def _deal_names(repository: FollowUpRepository, deal_ids: Iterable[int]) -> dict[int, str]:
    """Return each deal's name as DealView.name spells it, by id; a deleted deal is left out."""
    return {
        deal_id: f"{account} — {title}" if title else account
        for deal_id, (account, title) in repository.deal_titles(deal_ids).items()
    }


def _recipient(deal: DealView) -> ContactView | None:
    """Return who the follow-up goes to: the champion, else the economic buyer, else anyone."""
    with_email = [c for c in deal.contacts if c.email]
    for role in CONTACT_PREFERENCE:
        for contact in with_email:
            if contact.role == role:
                return contact
    return None


def _preview(body: str) -> str:
    lines = [line for line in body.splitlines() if line.strip()]
    # Skip the greeting, stop at the sign-off: the lines worth reading are what it says.
    if lines and lines[0].rstrip().endswith(","):
        lines = lines[1:]
    for index, line in enumerate(lines):
        if _SIGN_OFF.match(line):
            lines = lines[:index]
            break
    return "\n".join(lines[:PREVIEW_LINES])


def _long_day(day: dt.date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


def business_days_after(day: dt.date, count: int) -> dt.date:
    """Return the day `count` working days (Mon–Fri) after `day`."""
    while count > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def email_context(
    deal: DealView,
    contact: ContactView,
    rep: RepProfile,
    *,
    today: dt.date,
    trigger_detail: str | None,
) -> dict[str, Any]:
    """Return what a template may use, with absent values as Blanks named after their path."""
    contact_name = contact.name or None
    step = deal.next_step
    values: dict[str, Any] = {
        "account": deal.account,
        "deal": {
            "id": deal.id,
            "name": deal.name,
            "account": deal.account,
            "title": deal.title,
            "amount": format_money(deal.amount) if deal.amount is not None else None,
            "stage": deal.stage_label,
            "close_date": _long_day(deal.close_date) if deal.close_date else None,
            "buying_criteria": deal.buying_criteria,
            "buying_process": deal.buying_process,
            "paper_process": deal.paper_process,
            "pain": deal.pain,
            "metrics": deal.metrics,
            "competition": deal.competition,
        },
        "contact": {
            "name": contact_name or contact.email,
            # "there" keeps "Hi there," readable when only an address is known.
            "first_name": contact_name.split()[0] if contact_name else "there",
            "email": contact.email,
            "role": contact.role,
        },
        "rep": {
            "name": rep.name,
            "first_name": rep.name.split()[0] if rep.name else None,
            "email": rep.email,
        },
        "next_step": {
            "what": step.what,
            "due": format_day(step.due_date, today=today) if step.due_date else None,
        }
        if step is not None
        else None,
        "trigger": {"detail": trigger_detail},
        "dates": {
            "today": _long_day(today),
            "suggested_sync": _long_day(business_days_after(today, 1)),
            "suggested_meeting": _long_day(business_days_after(today, 2)),
        },
    }
    return with_blanks(values, "")
