"""Deals and next steps: create, change with history, close, and read the pipeline."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from domain.changes import ContactRef, DealChanges, DealRef
from domain.checks import ChecksConfig, default_checks, fired_checks, score_reps
from domain.clock import Clock, ZoneCache
from domain.dates import quarter_bounds, quarter_of
from domain.errors import (
    AmbiguousDeal,
    Candidate,
    DealNotFound,
    DomainError,
    InvalidChange,
    NotAllowed,
    Person,
    TeamNotFound,
)
from domain.evidence import (
    CITE_SHORTCUT_NAME,
    EVIDENCE_KINDS,
    EVIDENCE_SOURCES,
    EXCERPT_LIMIT,
    kind_label,
    missing_for_commit,
)
from domain.forecast import RollUp
from domain.fx import RateBook
from domain.money import Money, format_money
from domain.roll_up import AT_RISK_CATEGORIES, RollUpDeal, roll_up
from domain.stages import DEFAULT_STAGES, EMPTY_BOOK, Stage, StageBook
from domain.views import (
    ChangeView,
    ContactView,
    DealUpdate,
    DealView,
    EvidenceView,
    FieldChange,
    HomeView,
    NextStepView,
    PipelineView,
    PostMortemView,
)
from storage.crm import CrmRepository, PushToMake
from storage.database import Database
from storage.deals import DealRepository, name_key
from storage.evidence import Citation, EvidenceRepository
from storage.facts import ListedDeal, ReminderRepository
from storage.fx import FxRepository
from storage.models import Contact, Deal, DealChange, NextStep, PostMortem, Team
from storage.stage_limits import StageLimitRepository
from storage.teams import TeamRepository

# The CRM each `DealService(crm=...)` kind is shown as (the same words as crm.records, which
# domain may not import).
CRM_LABELS = {"salesforce": "Salesforce", "hubspot": "HubSpot"}
# How far back a new next step's due date may be: `due:yesterday` is a step already overdue.
PAST_DUE_DAYS = 30
# Distinct sets of learned stage limits whose configurations are kept (a few per team).
_LEARNED_CONFIGS_KEPT = 64

CENT = Decimal("0.01")

EVIDENCE_FIELDS = (
    "buying_criteria",
    "buying_process",
    "paper_process",
    "pain",
    "metrics",
    "competition",
)


@dataclass(frozen=True)
class Actor:
    """Who is asking. `is_admin` is a callable because asking Slack costs a round trip."""

    user_id: str
    is_admin: Callable[[], bool] = lambda: False


class DuplicateDeal(DomainError):
    """The account already has an open deal; the rep is asked before a second is made."""

    def __init__(self, existing: DealView) -> None:
        super().__init__(f"{existing.account} already has an open deal (#{existing.id}).")
        self.existing = existing


class AmbiguousMergeTarget(AmbiguousDeal):
    """The deal to merge into is ambiguous; the source (`source_id`) was found."""

    def __init__(self, reference: str, candidates: tuple[Candidate, ...], source_id: int) -> None:
        super().__init__(reference, candidates)
        self.source_id = source_id


@dataclass(frozen=True)
class DealMerge:
    """What a merge moved: counts of next steps, contacts and history rows, and the
    evidence fields filled in the target."""

    source_id: int
    source_name: str
    target: DealView
    next_steps: int
    contacts: int
    history: int
    evidence: tuple[str, ...]


class CommitNeedsEvidence(InvalidChange):
    """A move to Commit without the evidence COMMIT_EVIDENCE names; nothing was written."""

    def __init__(self, account: str, missing: tuple[str, ...]) -> None:
        named = ", ".join(kind_label(kind) for kind in missing)
        # One sentence, no separate hint: the way to cite is the point of the refusal.
        super().__init__(
            f"Commit needs cited evidence for: {named}. Cite with "
            f"`/deal {_quoted(account)} evidence {missing[0]}: <link>` or the message "
            f"shortcut *{CITE_SHORTCUT_NAME}*."
        )
        self.account = account
        self.missing = missing


@dataclass(frozen=True)
class EvidenceCited:
    """A citation just written, and the deal it backs."""

    deal: DealView
    citation: EvidenceView


class DealService:
    def __init__(
        self,
        *,
        database: Database,
        clock: Clock,
        default_timezone: ZoneInfo,
        default_currency: str = "USD",
        stages: tuple[Stage, ...] = DEFAULT_STAGES,
        stage_book: StageBook = EMPTY_BOOK,
        zones: ZoneCache | None = None,
        crm: str | None = None,
    ) -> None:
        self.database = database
        # The connected CRM ("salesforce", "hubspot"): every change a person makes here to a
        # field the CRM also holds is queued, in the same transaction, to be written there.
        self.crm = crm
        self.clock = clock
        self.default_timezone = default_timezone
        self.default_currency = default_currency
        self.stages = {stage.key: stage for stage in stages}
        self.first_stage = min(stages, key=lambda stage: stage.order)
        # Teams' own stages: a deal in one shows its label (its default stage is stored).
        self.stage_book = stage_book
        self.zones = zones or ZoneCache()
        self._checks: ChecksConfig | None = None
        # The configurations with a team's learned stage limits, by limits: a team's change
        # weekly at most, and a configuration memoises its per-stage answers.
        self._learned: dict[frozenset[tuple[str, int]], ChecksConfig] = {}

    def checks(self) -> ChecksConfig:
        """Return the checks in effect, judging a deal in a team's own stage by that stage.

        Read when first asked, not at construction: a bad checks file is reported where the
        checks are first used, as before teams had stages. Kept, since a configuration
        memoises its per-stage answers.
        """
        if self._checks is None:
            self._checks = default_checks().with_stages(self.stage_book)
        return self._checks

    def checks_of_owners(
        self, session: Session, owner_ids: Iterable[str]
    ) -> Callable[[str], ChecksConfig]:
        """Return the checks each of these owners' deals are held to, as the jobs hold them.

        On `thresholds: learned`, STALLED_IN_STAGE's limits are those the weekly jobs last
        learned for the owner's team (`reminders.accuracy.team_checks` keeps them), read in
        one indexed read; learning them here, per request, would read four quarters of
        closed deals. A team with no limits kept yet (the jobs have not run since it opted
        in, or it won too few deals to learn from), and an owner on no team, keep the file's
        limits, as the jobs keep them for too few deals. On `thresholds: fixed`, nothing is
        read.
        """
        config = self.checks()
        if config.thresholds != "learned":
            return lambda _owner: config
        kept = StageLimitRepository(session).for_owners(owner_ids)
        if len(self._learned) > _LEARNED_CONFIGS_KEPT:
            self._learned.clear()
        configs = {
            owner: self._learned.setdefault(
                frozenset(limits.items()), config.with_stage_limits(limits)
            )
            for owner, limits in kept.items()
        }
        return lambda owner: configs.get(owner, config)

    # --- time -----------------------------------------------------------------------------

    def today_for(self, user_id: str) -> dt.date:
        """Return today's date in the user's team timezone (or the workspace default).

        Every command asks, and the zone is nearly always cached: a session is opened only
        to look it up.
        """
        zone = self.zones.cached(user_id)
        if zone is not None:
            return self.clock.now().astimezone(zone).date()
        with self.database.session() as session:
            return self._today(session, user_id)

    # --- deals ----------------------------------------------------------------------------

    def create_deal(
        self,
        actor: Actor,
        account: str,
        changes: DealChanges,
        *,
        today: dt.date | None = None,
        check_duplicates: bool = False,
        evidence_gate: bool = True,
    ) -> DealView:
        """Return the new deal, owned by the actor, with its starting values in the history.

        With `check_duplicates`, raises DuplicateDeal (nothing written) when the account
        already has an open deal of the same name: a second Initech is asked about, never
        made silently. `evidence_gate` (see update_deal) is off only for a CRM's records.
        """
        now = self.clock.now()
        with self.database.session() as session:
            deals = DealRepository(session)
            if check_duplicates:
                self._refuse_duplicate(session, deals, actor, account, changes, today=today)
            if evidence_gate and changes.forecast == "commit":
                self._gate_commit(account, cited=frozenset())
            stage = self._open_stage(changes.stage or self.first_stage.key)
            entered = self.stage_book.counting(changes.team_stage, stage.key) or stage
            amount = changes.amount
            deal = Deal(
                account=account,
                account_key=name_key(account),
                title=changes.title,
                title_key=name_key(changes.title) if changes.title else None,
                owner_id=actor.user_id,
                amount=amount.amount if amount else None,
                currency=amount.currency if amount else self.default_currency,
                stage=stage.key,
                team_stage=changes.team_stage,
                stage_entered_at=now,
                close_date=changes.close_date,
                # A new deal enters its stage: it takes the stage's forecast unless told.
                forecast_category=changes.forecast or entered.forecast_default,
                status="open",
                created_by=actor.user_id,
                created_at=now,
                updated_at=now,
                last_touch_at=now,
            )
            for name in EVIDENCE_FIELDS:
                setattr(deal, name, getattr(changes, name))
            deals.add(deal)
            self._apply_contacts(deal, changes)
            for field, value in tracked_values(deal).items():
                if value is not None:
                    deals.record_change(
                        deal, field=field, old=None, new=value, by=actor.user_id, at=now
                    )
            session.flush()
            # The CRM record is made from the deal as it stands when the push is sent.
            self._enqueue(
                session,
                deal,
                "create",
                None,
                None,
                key=f"create:{deal.id}",
                by=actor.user_id,
                at=now,
            )
            return self._view(session, deal, self._today(session, actor.user_id, given=today))

    def update_deal(
        self,
        actor: Actor,
        ref: DealRef,
        changes: DealChanges,
        *,
        today: dt.date | None = None,
        evidence_gate: bool = True,
    ) -> DealUpdate:
        """Return the deal after applying `changes`, with what actually changed.

        A move to Commit needs COMMIT_EVIDENCE cited (`_gate_commit`); `evidence_gate` is
        off only for records a CRM (or its export) holds, which is the source of truth there.
        """
        now = self.clock.now()
        with self.database.session() as session:
            deals = DealRepository(session)
            deal = self._open_deal_to_change(
                session,
                deals,
                actor,
                ref,
                closed=lambda deal: InvalidChange(
                    f"{deal.account} is already {deal.status}; closed deals keep their record.",
                    "Open a new deal with `/deal new`.",
                ),
                # A closed deal's names and owner can still be corrected.
                closed_too=changes.only_renames_or_reassigns(),
            )
            if evidence_gate and changes.forecast == "commit" != deal.forecast_category:
                cited = EvidenceRepository(session).cited_kinds(deal.id)
                self._gate_commit(deal.account, cited=cited)
            before = tracked_values(deal)
            names_before = _identity_values(deal)
            said_before = _said_values(deal)
            crm_before = _crm_values(deal)
            stage_forecast = None
            if changes.stage is not None:
                stage = self._open_stage(changes.stage)
                stage_forecast = self._stage_forecast(deal, stage, changes)
                if stage.key != deal.stage:
                    deal.stage = stage.key
                    deal.stage_entered_at = now
                deal.team_stage = changes.team_stage
            if changes.amount is not None:
                deal.amount = changes.amount.amount
                deal.currency = changes.amount.currency
            if changes.close_date is not None:
                deal.close_date = changes.close_date
            if changes.forecast is not None:
                deal.forecast_category = changes.forecast
            elif stage_forecast is not None:
                deal.forecast_category = stage_forecast
            if changes.title is not None:
                deal.title = changes.title
                deal.title_key = name_key(changes.title)
            for name in EVIDENCE_FIELDS:
                value = getattr(changes, name)
                if value is not None:
                    setattr(deal, name, value)
            self._apply_contacts(deal, changes)
            _apply_identity(deal, changes)
            changed = self._record_changes(deals, deal, before, by=actor.user_id, at=now)
            renamed = _record_identity(deals, deal, names_before, by=actor.user_id, at=now)
            said_after = _said_values(deal)
            # Said in the reply (old -> new), not kept in history: names and owner are
            # (`_record_identity`), evidence and contacts are not.
            said = tuple(
                FieldChange(field=name, old=said_before[name], new=said_after[name])
                for name in said_after
                if said_before[name] != said_after[name]
            )
            if stage_forecast is not None:
                changed = tuple(
                    replace(c, by_stage_default=True) if c.field == "forecast_category" else c
                    for c in changed
                )
            changed = (*renamed, *self._in_team_words(deal, changed), *said)
            deal.updated_at = now
            deal.last_touch_at = now
            session.flush()
            self._enqueue_updates(session, deal, crm_before, by=actor.user_id, at=now)
            today = self._today(session, actor.user_id, given=today)
            return DealUpdate(deal=self._view(session, deal, today), changes=changed)

    def _stage_forecast(self, deal: Deal, stage: Stage, changes: DealChanges) -> str | None:
        """Return the forecast category a deal takes on moving to `stage` (a default stage,
        or the team stage `changes` name): the stage's default, or None to leave it alone.

        Left alone when the rep says `forecast:` in the same command, when the deal is not
        changing stage, and when someone chose the category since the deal entered the
        stage it leaves: it then differs from that stage's default (a rep's pick when the
        deal was made, a CRM's), or it was changed after the stage was entered (a default
        is written at the same moment as the move that brought it).
        """
        if changes.forecast is not None:
            return None
        entering = self.stage_book.counting(changes.team_stage, stage.key) or stage
        leaving = self._stage_gone_by(deal)
        if leaving == entering:
            return None
        if leaving is not None and deal.forecast_category != leaving.forecast_default:
            return None
        entered_at = deal.stage_entered_at
        chosen_since = any(
            change.field == "forecast_category" and change.changed_at > entered_at
            for change in deal.changes
        )
        return None if chosen_since else entering.forecast_default

    def _stage_gone_by(self, deal: Deal) -> Stage | None:
        """Return the stage the deal goes by: its team stage while that counts, else its own."""
        return self.stage_book.counting(deal.team_stage, deal.stage) or self.stages.get(deal.stage)

    def show_deal(self, actor: Actor, ref: DealRef, *, today: dt.date | None = None) -> DealView:
        """Return the deal with its contacts, next step, history and post-mortem."""
        with self.database.session() as session:
            deals = DealRepository(session)
            deal = self._resolve(deals, ref)
            return self._view(
                session, deal, self._today(session, actor.user_id, given=today), full=True
            )

    def show_deal_to_act_on(
        self, actor: Actor, ref: DealRef, *, act: str, today: dt.date | None = None
    ) -> DealView:
        """Return the deal as show_deal does, if the actor may act for its owner.

        Reading a deal is open to all; acting for its owner (drafting their email, say) is
        for the owner, their manager or an admin, like a change. `act` names the act in the
        refusal ("draft its follow-ups").
        """
        with self.database.session() as session:
            deal = self._resolve(DealRepository(session), ref)
            self._check_can_change(session, actor, deal, act=act)
            today = self._today(session, actor.user_id, given=today)
            return self._view(session, deal, today, full=True)

    def close_deal(
        self,
        actor: Actor,
        ref: DealRef,
        *,
        won: bool,
        reason: str | None,
        today: dt.date | None = None,
        closed_on: dt.date | None = None,
    ) -> DealView:
        """Return the deal marked won or lost; open next steps are closed with it.

        Its close date becomes the day it closed: `closed_on` (an export's close date for a
        closed row) or else the closer's today. The planned date stays in its history, in a
        `close_date` change at the same moment as the status change, so days to close and
        the close date a rep called are both read from history.
        """
        now = self.clock.now()
        outcome = "won" if won else "lost"
        with self.database.session() as session:
            deals = DealRepository(session)
            deal = self._open_deal_to_change(
                session,
                deals,
                actor,
                ref,
                closed=lambda deal: InvalidChange(f"{deal.account} is already {deal.status}."),
            )
            if not won and not reason:
                raise InvalidChange(
                    "A lost deal needs a reason.", "/deal lost Initech went with Globex"
                )
            before = tracked_values(deal)
            crm_before = _crm_values(deal)
            closer_today = self._today(session, actor.user_id, given=today)
            closed_steps: list[NextStep] = []
            deal.close_date = closed_on or closer_today
            deal.status = outcome
            deal.stage = "closed_won" if won else "closed_lost"
            deal.team_stage = None
            deal.stage_entered_at = now
            deal.close_reason = reason
            deal.closed_at = now
            deal.updated_at = now
            deal.last_touch_at = now
            for step in deal.next_steps:
                if not step.done:
                    step.done = True
                    step.done_at = now
                    closed_steps.append(step)
            self._record_changes(deals, deal, before, by=actor.user_id, at=now)
            session.flush()
            self._enqueue_updates(session, deal, crm_before, by=actor.user_id, at=now)
            for step in closed_steps:
                self._enqueue_step_done(session, deal, step, by=actor.user_id, at=now)
            return self._view(session, deal, closer_today, full=True)

    def record_post_mortem(
        self,
        actor: Actor,
        deal_id: int,
        *,
        primary_reason: str,
        competitor: str | None,
        lessons: str | None,
    ) -> DealView:
        """Return the closed deal with its post-mortem stored (a second one replaces the first)."""
        now = self.clock.now()
        with self.database.session() as session:
            deals = DealRepository(session)
            deal = self._resolve(deals, DealRef(name=None, deal_id=deal_id))
            self._check_can_change(session, actor, deal)
            if deal.status == "open":
                raise InvalidChange(f"{deal.account} is still open; close it first.")
            if deal.post_mortem is None:
                deal.post_mortem = PostMortem(
                    outcome=deal.status,
                    primary_reason=primary_reason,
                    submitted_by=actor.user_id,
                    created_at=now,
                )
            deal.post_mortem.primary_reason = primary_reason
            deal.post_mortem.competitor = competitor
            deal.post_mortem.lessons = lessons
            deal.close_reason = deal.close_reason or primary_reason
            session.flush()
            return self._view(session, deal, self._today(session, actor.user_id), full=True)

    # --- deleting and merging ------------------------------------------------------------

    def deal_to_delete(
        self, actor: Actor, ref: DealRef, *, today: dt.date | None = None
    ) -> DealView:
        """Return the deal `ref` names once the actor may delete it; nothing is written.

        What the "Delete Initech?" question shows, and the check it makes before asking.
        """
        with self.database.session() as session:
            deal = self._resolve(DealRepository(session), ref)
            self._check_can_change(session, actor, deal, act="delete it")
            return self._view(session, deal, self._today(session, actor.user_id, given=today))

    def delete_deal(self, actor: Actor, ref: DealRef, *, today: dt.date | None = None) -> DealView:
        """Return the deal as it was, now deleted: kept with its history, out of every figure.

        A soft delete (who and when), so an admin can restore it and nothing it held is lost.
        The CRM is not told: dealbot queues no deletion there (a CRM record is removed in the
        CRM).
        """
        now = self.clock.now()
        with self.database.session() as session:
            deals = DealRepository(session)
            deal = self._resolve(deals, ref)
            self._check_can_change(session, actor, deal, act="delete it")
            today = self._today(session, actor.user_id, given=today)
            view = self._view(session, deal, today)
            _mark_deleted(deals, deal, note="deleted", by=actor.user_id, at=now)
            return view

    def restore_deal(self, actor: Actor, deal_id: int, *, today: dt.date | None = None) -> DealView:
        """Return the deleted deal `deal_id` back in the pipeline; for admins only."""
        now = self.clock.now()
        with self.database.session() as session:
            deals = DealRepository(session)
            deal = deals.get_even_deleted(deal_id)
            if deal is None:
                raise DealNotFound(f"There is no deal #{deal_id}.")
            if not actor.is_admin():
                raise NotAllowed("Only an admin can restore a deleted deal.")
            if deal.deleted_at is None:
                raise InvalidChange(f"{deal.account} (#{deal.id}) is not deleted.")
            deal.deleted_at = None
            deal.deleted_by = None
            deal.updated_at = now
            deals.record_change(
                deal, field="deleted", old="deleted", new="restored", by=actor.user_id, at=now
            )
            session.flush()
            return self._view(session, deal, self._today(session, actor.user_id, given=today))

    def merge_deals(
        self,
        actor: Actor,
        source_ref: DealRef,
        target_ref: DealRef,
        *,
        today: dt.date | None = None,
    ) -> DealMerge:
        """Return the target after the source's next steps, contacts, history and evidence
        moved into it; the source is then deleted, its history saying where it went.

        Evidence moves only into the target's empty fields: what the target already says is
        kept. A contact the target already has (same email, Slack user or name) stays with
        the source. The actor must be allowed to change both deals.
        """
        now = self.clock.now()
        with self.database.session() as session:
            deals = DealRepository(session)
            source = self._resolve(deals, source_ref)
            try:
                target = self._resolve(deals, target_ref)
            except AmbiguousDeal as error:
                raise AmbiguousMergeTarget(error.reference, error.candidates, source.id) from None
            if source.id == target.id:
                raise InvalidChange(
                    f"{source.account} (#{source.id}) cannot be merged into itself.",
                    "/deal merge #41 into #42",
                )
            self._check_can_change(session, actor, source, act="merge it")
            self._check_can_change(session, actor, target, act="merge into it")
            if target.status != "open":
                raise InvalidChange(
                    f"{target.account} (#{target.id}) is {target.status}; merge into an open deal.",
                    f"/deal merge #{target.id} into #{source.id}",
                )
            moved_steps = [step for step in source.next_steps]
            for step in moved_steps:
                target.next_steps.append(step)
            moved_contacts = [
                contact
                for contact in source.contacts
                if not any(_same_contact(contact, kept) for kept in target.contacts)
            ]
            taken_roles = {contact.role for contact in target.contacts}
            for contact in moved_contacts:
                if contact.role in taken_roles and contact.role != "other":
                    contact.role = "other"  # one economic buyer and one champion per deal
                target.contacts.append(contact)
            filled = tuple(
                name
                for name in EVIDENCE_FIELDS
                if getattr(target, name) is None and getattr(source, name) is not None
            )
            for name in filled:
                setattr(target, name, getattr(source, name))
            # Citations follow the same rule: the source's move for the kinds the target lacks.
            EvidenceRepository(session).move_uncited(from_deal=source.id, to_deal=target.id)
            moved_history = list(source.changes)
            for change in moved_history:
                target.changes.append(change)
            merged = f"#{source.id} {source.account}"
            deals.record_change(
                target, field="merged", old=None, new=merged, by=actor.user_id, at=now
            )
            target.updated_at = now
            target.last_touch_at = now
            _mark_deleted(deals, source, note=f"merged into #{target.id}", by=actor.user_id, at=now)
            session.flush()
            today = self._today(session, actor.user_id, given=today)
            return DealMerge(
                source_id=source.id,
                source_name=_deal_name(source),
                target=self._view(session, target, today),
                next_steps=len(moved_steps),
                contacts=len(moved_contacts),
                history=len(moved_history),
                evidence=filled,
            )

    # --- next steps -----------------------------------------------------------------------

    def add_next_step(
        self,
        actor: Actor,
        ref: DealRef,
        *,
        what: str,
        due: dt.date | None,
        owner_id: str | None,
        today: dt.date | None = None,
    ) -> DealView:
        """Return the deal with a new open next step (owner defaults to the actor)."""
        now = self.clock.now()
        with self.database.session() as session:
            deals = DealRepository(session)
            deal = self._open_deal_to_change(
                session,
                deals,
                actor,
                ref,
                closed=lambda deal: InvalidChange(
                    f"{deal.account} is {deal.status}; next steps are for open deals."
                ),
            )
            today = self._today(session, actor.user_id, given=today)
            # A step that was due yesterday is logged as it is, overdue; a month back is a typo.
            if due is not None and due < today - dt.timedelta(days=PAST_DUE_DAYS):
                raise InvalidChange(
                    f"The due date {due.isoformat()} is in the past, more than "
                    f"{PAST_DUE_DAYS} days ago.",
                    f"/nextstep {deal.account} {what} due:tomorrow",
                )
            step = NextStep(
                what=what,
                owner_id=owner_id or actor.user_id,
                due_date=due,
                done=False,
                created_by=actor.user_id,
                created_at=now,
            )
            deal.next_steps.append(step)
            deal.last_touch_at = now
            session.flush()
            value = {
                "step_id": step.id,
                "subject": step.what,
                "due": due.isoformat() if due else None,
                "owner": step.owner_id,
            }
            self._enqueue(
                session,
                deal,
                "task",
                "next_step",
                value,
                key=f"task:{step.id}",
                by=actor.user_id,
                at=now,
            )
            return self._view(session, deal, today)

    def complete_next_step(
        self, actor: Actor, ref: DealRef, *, today: dt.date | None = None
    ) -> tuple[DealView, NextStepView]:
        """Return the deal and the next step just marked done (the earliest open one)."""
        now = self.clock.now()
        with self.database.session() as session:
            deals = DealRepository(session)
            deal = self._resolve(deals, ref)
            self._check_can_change(session, actor, deal)
            step = _current_step(deal.next_steps)
            if step is None:
                raise InvalidChange(
                    f"{deal.account} has no open next step.",
                    f"/nextstep {deal.account} Send the proposal due:fri",
                )
            step.done = True
            step.done_at = now
            deal.last_touch_at = now
            session.flush()
            self._enqueue_step_done(session, deal, step, by=actor.user_id, at=now)
            return self._view(
                session, deal, self._today(session, actor.user_id, given=today)
            ), _step_view(step)

    # --- pipeline -------------------------------------------------------------------------

    def pipeline(
        self,
        actor: Actor,
        *,
        scope: str,
        team_name: str | None = None,
        today: dt.date | None = None,
    ) -> PipelineView:
        """Return open deals for `scope` ("me", "team" or a user id) with totals and attention.

        Reps see their own pipeline and their teammates'; a team view takes the teams the
        actor belongs to (or `team_name`).
        """
        with self.database.session() as session:
            teams = TeamRepository(session)
            today = self._today(session, actor.user_id, given=today)
            chosen: list[Team | None]
            if scope == "me":
                owners: set[str] = {actor.user_id}
                kind, whose, team_names = "me", actor.user_id, ()
                chosen = list(teams.teams_of(actor.user_id, role="rep"))[:1]
            elif scope == "team":
                if team_name:
                    team = teams.by_name(team_name)
                    chosen = [team] if team else []
                    if not chosen:
                        raise TeamNotFound(f"There is no team called “{team_name}”.")
                else:
                    chosen = list(teams.teams_of(actor.user_id))
                if not chosen:
                    raise TeamNotFound(
                        "You are not in a team yet.",
                        "An admin adds you with `/dealbot team add <team> rep @you`.",
                    )
                owners = {m.user_id for team in chosen for m in team.members if m.role == "rep"}
                kind, whose, team_names = "team", None, tuple(team.name for team in chosen)
            else:
                owners = {scope}
                kind, whose, team_names = "user", scope, ()
                chosen = list(teams.teams_of(scope, role="rep"))[:1]
            zone = self._zone(session, actor.user_id)
            quarter = quarter_bounds(today)
            # Open deals and those closed this quarter in one read: the list shows the open
            # ones, the roll-up counts the won ones too.
            listed = ReminderRepository(session).listed_deals(
                quarter=quarter,
                owner_ids=owners,
                closed_since=dt.datetime.combine(quarter[0], dt.time(), tzinfo=zone),
            )
            # The checks each owner's team holds their deals to, read once for the lines and
            # the roll-ups' at-risk deals alike.
            checks_of = self.checks_of_owners(session, owners)
            views = self._listed_views(
                session,
                [deal for deal in listed if deal.facts.status == "open"],
                today,
                checks_of=checks_of,
            )
            rates = FxRepository(session).rate_book(self.default_currency)
            # One rep outside any team still gets their line, in the workspace's currency.
            roll_ups = tuple(
                self._roll_up(
                    team,
                    reps=[m.user_id for m in team.members if m.role == "rep"]
                    if team is not None and kind == "team"
                    else sorted(owners),
                    listed=listed,
                    rates=rates,
                    today=today,
                    zone=zone,
                    checks_of=checks_of,
                )
                for team in (chosen or [None])
            )
        totals: dict[str, Decimal] = {}
        weighted: dict[str, Decimal] = {}
        for view in views:
            if view.amount is not None:
                currency, amount = view.amount.currency, view.amount.amount
                totals[currency] = totals.get(currency, Decimal(0)) + amount
                # DealView.weighted_amount's sum, without a Money made per deal.
                weighted[currency] = weighted.get(currency, Decimal(0)) + (
                    amount * view.probability
                ).quantize(CENT)
        return PipelineView(
            scope=kind,
            today=today,
            deals=views,
            totals=totals,
            weighted_totals=weighted,
            user_id=whose,
            team_names=team_names,
            roll_ups=roll_ups,
        )

    def _roll_up(
        self,
        team: Team | None,
        *,
        reps: Sequence[str],
        listed: Sequence[ListedDeal],
        rates: RateBook,
        today: dt.date,
        zone: ZoneInfo,
        checks_of: Callable[[str], ChecksConfig],
    ) -> RollUp:
        """Return `team`'s roll-up for `reps` in its reporting currency, as the digest has it
        (each at-risk deal flagged by the checks its owner's team holds it to)."""
        period = quarter_of(today)
        wanted = set(reps)
        rows = []
        for deal in listed:
            facts = deal.facts
            if facts.owner_id not in wanted:
                continue
            checks: tuple[str, ...] = ()
            if facts.status == "open" and facts.forecast_category in AT_RISK_CATEGORIES:
                checks = fired_checks(facts, today, checks_of(facts.owner_id), zone=zone)
            rows.append(
                RollUpDeal(
                    deal_id=facts.deal_id,
                    name=facts.name,
                    owner_id=facts.owner_id,
                    amount=facts.amount,
                    currency=facts.currency,
                    forecast_category=facts.forecast_category,
                    status=facts.status,
                    close_date=facts.close_date,
                    closed_on=facts.closed_at.astimezone(zone).date() if facts.closed_at else None,
                    checks=checks,
                )
            )
        return roll_up(
            team_name=team.name if team is not None else "",
            period=period,
            reps=reps,
            deals=rows,
            quotas={
                q.user_id: Money(q.amount, q.currency)
                for q in (team.quotas if team is not None else ())
                if q.period == period and q.user_id in wanted
            },
            rates=rates,
            currency=(team.currency if team is not None else None) or self.default_currency,
            quarter=quarter_bounds(today),
            today=today,
        )

    def home(self, user_id: str) -> HomeView:
        """Return what the App Home shows: open deals, overdue next steps, accuracy score.

        The open deals and the score's deals (those and the ones closed this quarter) come
        from one read, at one instant, so the open deals are not read twice; the score is
        `score_reps`', as the weekly pipeline-accuracy post computes it.
        """
        now = self.clock.now()
        with self.database.session() as session:
            zone = self._zone(session, user_id)
            today = now.astimezone(zone).date()
            deals = DealRepository(session)
            quarter = quarter_bounds(today)
            listed = ReminderRepository(session).listed_deals(
                quarter=quarter,
                owner_ids=[user_id],
                closed_since=dt.datetime.combine(quarter[0], dt.time(), tzinfo=zone),
            )
            # The score counts the user's deals only: one read of their team's limits serves
            # the list and the score.
            checks_of = self.checks_of_owners(session, [user_id])
            open_deals = self._listed_views(
                session,
                [deal for deal in listed if deal.facts.status == "open"],
                today,
                checks_of=checks_of,
            )
            overdue = tuple(
                (
                    NextStepView(
                        id=step.id,
                        what=step.what,
                        owner_id=step.owner_id,
                        due_date=step.due_date,
                        done=False,
                    ),
                    step.account,
                )
                for step in deals.open_next_steps_overdue_for(user_id, today)
            )
            score = None
            if open_deals:
                # The same score the weekly pipeline-accuracy post shows for this rep:
                # weighted by amount in their first team's reporting currency (the team
                # whose zone is theirs too, see ReminderRepository.rep_timezones).
                teams = TeamRepository(session).teams_of(user_id, role="rep")
                first = min(teams, key=lambda team: team.id, default=None)
                currency = (first.currency if first else None) or self.default_currency
                scores = score_reps(
                    [deal.facts for deal in listed],
                    lambda _owner: (today, zone),
                    checks_of(user_id),
                    currency=currency,
                    rates=FxRepository(session).rate_book(self.default_currency),
                )
                score = scores[user_id].score if user_id in scores else None
        return HomeView(
            user_id=user_id,
            today=today,
            open_deals=open_deals,
            overdue_steps=overdue,
            accuracy_score=score,
        )

    # --- evidence -------------------------------------------------------------------------

    def cite_evidence(
        self,
        actor: Actor,
        ref: DealRef,
        kind: str,
        source: str,
        reference: str,
        excerpt: str | None = None,
        *,
        today: dt.date | None = None,
    ) -> EvidenceCited:
        """Return the deal and the citation written: `reference` backs its `kind` answer.

        Who may cite is who may change the deal; a won, lost or deleted deal keeps its record.
        `source` is "slack" (a message permalink) or "gmail" (a message id or link), already
        read by the surface; the excerpt is cut to EXCERPT_LIMIT characters.
        """
        if kind not in EVIDENCE_KINDS:
            raise InvalidChange(
                f"“{kind}” is not a kind of evidence.",
                f"Cite one of: {', '.join(EVIDENCE_KINDS)}.",
            )
        if source not in EVIDENCE_SOURCES or not reference.strip():
            raise InvalidChange("Cite a Slack message link or a Gmail message.")
        now = self.clock.now()
        with self.database.session() as session:
            deals = DealRepository(session)
            deal = self._open_deal_to_change(
                session,
                deals,
                actor,
                ref,
                closed=lambda deal: InvalidChange(
                    f"{deal.account} is already {deal.status}; evidence is cited on open deals."
                ),
            )
            citation = EvidenceRepository(session).cite(
                deal_id=deal.id,
                kind=kind,
                source=source,
                reference=reference.strip(),
                excerpt=(excerpt or "").strip()[:EXCERPT_LIMIT] or None,
                by=actor.user_id,
                at=now,
            )
            # Citing is work on the deal: it is touched, as a change is (STALE reads it).
            deal.last_touch_at = now
            today = self._today(session, actor.user_id, given=today)
            return EvidenceCited(
                deal=self._view(session, deal, today),
                citation=_evidence_view(citation, self._zone(session, deal.owner_id)),
            )

    def open_deals_to_cite(self, actor: Actor) -> tuple[DealView, ...]:
        """Return the actor's open deals, for the message shortcut's choice of deal."""
        with self.database.session() as session:
            today = self._today(session, actor.user_id)
            listed = ReminderRepository(session).listed_deals(
                quarter=quarter_bounds(today), owner_ids=[actor.user_id]
            )
            return self._listed_views(session, listed, today)

    @staticmethod
    def _gate_commit(account: str, *, cited: frozenset[str]) -> None:
        """Refuse a move to Commit without COMMIT_EVIDENCE cited, unless the checks file says
        `commit_evidence: warn` (the card and the reply then say what is missing)."""
        missing = missing_for_commit(cited)
        if not missing or default_checks().commit_evidence == "warn":
            return
        raise CommitNeedsEvidence(account, missing)

    # --- internals ------------------------------------------------------------------------

    def _today(self, session: Session, user_id: str, *, given: dt.date | None = None) -> dt.date:
        """Return `given` (the request's today, resolved once by the caller) or the user's."""
        if given is not None:
            return given
        return self.clock.now().astimezone(self._zone(session, user_id)).date()

    def _zone(self, session: Session, user_id: str) -> ZoneInfo:
        """Return the user's team timezone (the workspace default outside any team)."""

        def load() -> ZoneInfo:
            zone_name = TeamRepository(session).timezone_of(user_id)
            return ZoneInfo(zone_name) if zone_name else self.default_timezone

        return self.zones.get(user_id, load)

    def _listed_views(
        self,
        session: Session,
        listed: list[ListedDeal],
        today: dt.date,
        *,
        checks_of: Callable[[str], ChecksConfig] | None = None,
    ) -> tuple[DealView, ...]:
        """Return the list views of these listed deals, flagged as of `today`, each by the
        checks its owner's team holds it to (`checks_of`, read here if not given)."""
        config = self.checks()
        if checks_of is None:
            checks_of = self.checks_of_owners(session, {deal.facts.owner_id for deal in listed})
        ids = [deal.facts.deal_id for deal in listed]
        marks = self._crm_marks(session, ids)
        if self.stage_book.teams:
            stage_of = {deal.facts.deal_id: deal.facts.stage for deal in listed}
            for deal_id, team_stage in TeamRepository(session).team_stages_of(ids).items():
                team = self.stage_book.counting(team_stage, stage_of[deal_id])
                if team is not None:
                    marks[deal_id] = {
                        **marks.get(deal_id, {}),
                        "stage_label": team.label,
                        "probability": team.probability,
                    }
        urgent = frozenset(config.attention)
        return tuple(
            replace(view, **marks[view.id]) if view.id in marks else view
            for view in (
                self._listed_view(deal, attention=fired, urgent=not urgent.isdisjoint(fired))
                for deal in listed
                for fired in (fired_checks(deal.facts, today, checks_of(deal.facts.owner_id)),)
            )
        )

    def _in_team_words(
        self, deal: Deal, changes: tuple[FieldChange, ...]
    ) -> tuple[FieldChange, ...]:
        """Return `changes` with a stage move named by the deal's team's stages, if it has
        its own (history keeps the default keys, which every check and figure reads)."""
        labels = self._team_labels(_team_key(deal))
        if not labels:
            return changes
        return tuple(
            replace(
                change,
                old=labels.get(change.old or "", change.old),
                new=labels.get(change.new or "", change.new),
            )
            if change.field == "stage"
            else change
            for change in changes
        )

    def _team_labels(self, team_key: str | None) -> dict[str, str]:
        """Return the team's label for each default stage key one of its own stages maps to;
        empty for no team, or a team with dealbot's stages."""
        if team_key is None or team_key not in self.stage_book.teams:
            return {}
        return {s.maps_to: s.label for s in self.stage_book.for_team(team_key) if s.maps_to}

    def _history(self, session: Session, deal: Deal) -> tuple[ChangeView, ...]:
        """Return the deal's kept changes, a stage move named in its team's stages where the
        stage maps to one (the rows keep the default keys every check and figure reads).

        The team is the one whose stage the deal is in, else its owner's as a rep: a closed
        deal (or one moved in the CRM) names no team stage but is still on that team.
        """
        team_key = _team_key(deal)
        if team_key is None and self.stage_book.teams:
            owners = TeamRepository(session).teams_of(deal.owner_id, role="rep")
            team_key = next(
                (t.name_key for t in owners if t.name_key in self.stage_book.teams), None
            )
        labels = self._team_labels(team_key)

        def shown(field: str, value: str | None) -> str | None:
            return labels.get(value, value) if field == "stage" and value else value

        return tuple(
            ChangeView(
                field=c.field,
                old_value=shown(c.field, c.old_value),
                new_value=shown(c.field, c.new_value),
                changed_by=c.changed_by,
                changed_at=c.changed_at,
                source=c.source,
            )
            for c in deal.changes
        )

    def _headline(self, source: Deal) -> dict[str, Any]:
        """Return the fields every deal view has."""
        stage = self.stages.get(source.stage)
        team_stage = self.stage_book.counting(source.team_stage, source.stage)
        shown = team_stage or stage
        return {
            "id": source.id,
            "account": source.account,
            "title": source.title,
            "owner_id": source.owner_id,
            "amount": None if source.amount is None else Money(source.amount, source.currency),
            "stage": source.stage,
            "stage_label": shown.label if shown else source.stage,
            "probability": shown.probability if shown else Decimal(0),
            "close_date": source.close_date,
            "forecast_category": source.forecast_category,
            "status": source.status,
        }

    def _attention(self, session: Session, deal: Deal, today: dt.date) -> tuple[str, ...]:
        """Return the checks one open deal fails as of `today`: every enabled one, as the
        weekly accuracy post scores it, so the card and the post name the same checks."""
        if deal.status != "open":
            return ()
        session.flush()  # the facts are read from the database, changes included
        facts = ReminderRepository(session).deal_facts(
            quarter=quarter_bounds(today), deal_ids=[deal.id]
        )
        if not facts:
            return ()
        config = self.checks_of_owners(session, [deal.owner_id])(deal.owner_id)
        return fired_checks(facts[0], today, config)

    def _listed_view(
        self, deal: ListedDeal, *, attention: tuple[str, ...], urgent: bool
    ) -> DealView:
        """Return a deal as lists show it: the headline fields and the current next step."""
        facts = deal.facts
        stage = self.stages.get(facts.stage)
        step = None
        if deal.step_id is not None:
            step = NextStepView(
                id=deal.step_id,
                what=deal.step_what or "",
                owner_id=deal.step_owner_id,
                due_date=deal.step_due_date,
                done=False,
            )
        return DealView(
            id=facts.deal_id,
            account=facts.account,
            title=facts.title,
            owner_id=facts.owner_id,
            amount=None if deal.amount is None else Money(deal.amount, deal.currency),
            stage=facts.stage,
            stage_label=stage.label if stage else facts.stage,
            probability=stage.probability if stage else Decimal(0),
            close_date=facts.close_date,
            forecast_category=facts.forecast_category,
            status=facts.status,
            next_step=step,
            attention=attention,
            urgent=urgent,
        )

    def _refuse_duplicate(
        self,
        session: Session,
        deals: DealRepository,
        actor: Actor,
        account: str,
        changes: DealChanges,
        *,
        today: dt.date | None,
    ) -> None:
        """Raise DuplicateDeal when the account has an open deal a new one would repeat.

        A title that no open deal of the account has tells the two apart: no question then.
        """
        wanted_title = name_key(changes.title) if changes.title else None
        same = [
            deal
            for deal in deals.open_deals_of_account(account)
            if wanted_title is None or deal.title_key == wanted_title
        ]
        if same:
            today = self._today(session, actor.user_id, given=today)
            raise DuplicateDeal(self._view(session, same[0], today))

    def _open_stage(self, key: str) -> Stage:
        stage = self.stages.get(key)
        if stage is None:
            raise InvalidChange(f"“{key}” is not a stage.")
        if stage.is_closed:
            raise InvalidChange(
                f"A deal moves to {stage.label.lower()} by closing it.",
                "/deal won Initech  or  /deal lost Initech went with Globex",
            )
        return stage

    def _resolve(self, deals: DealRepository, ref: DealRef) -> Deal:
        if ref.deal_id is not None:
            deal = deals.get(ref.deal_id)
            if deal is None:
                if deals.get_even_deleted(ref.deal_id) is not None:
                    raise DealNotFound(
                        f"Deal #{ref.deal_id} was deleted.",
                        f"An admin can restore it: /deal restore #{ref.deal_id}",
                    )
                raise DealNotFound(f"There is no deal #{ref.deal_id}.", "/pipeline lists yours.")
            return deal
        reference = ref.name or ""
        matches = deals.find_by_reference(reference)
        if not matches:
            raise DealNotFound(
                f"No deal matches “{reference}”.",
                f"Check the spelling, or create it: /deal new {reference}",
            )
        if len(matches) > 1:
            candidates = tuple(
                Candidate(deal_id=deal.id, label=_candidate_label(deal)) for deal in matches[:5]
            )
            raise AmbiguousDeal(reference, candidates)
        return matches[0]

    def _open_deal_to_change(
        self,
        session: Session,
        deals: DealRepository,
        actor: Actor,
        ref: DealRef,
        *,
        closed: Callable[[Deal], InvalidChange],
        closed_too: bool = False,
    ) -> Deal:
        """Return the open deal `ref` names, once the actor may change it.

        `closed` words the refusal for a deal already won or lost: each act explains it in
        its own terms (a closed deal keeps its record; next steps are for open deals).
        With `closed_too`, a won or lost deal is returned too.
        """
        deal = self._resolve(deals, ref)
        self._check_can_change(session, actor, deal)
        if deal.status != "open" and not closed_too:
            raise closed(deal)
        return deal

    def _check_can_change(
        self, session: Session, actor: Actor, deal: Deal, *, act: str = "change it"
    ) -> None:
        """Refuse unless the actor owns the deal, manages its owner, or is an admin."""
        if deal.owner_id == actor.user_id:
            return
        if deal.owner_id in TeamRepository(session).reps_managed_by(actor.user_id):
            return
        if actor.is_admin():
            return
        raise NotAllowed(
            (
                f"{deal.account} belongs to ",
                Person(deal.owner_id),
                f"; only they, their manager or an admin can {act}.",
            )
        )

    def _apply_contacts(self, deal: Deal, changes: DealChanges) -> None:
        if changes.economic_buyer is not None:
            self._put_contact(deal, changes.economic_buyer, role="economic_buyer")
        if changes.champion is not None:
            self._put_contact(deal, changes.champion, role="champion")
        for ref in changes.contacts:
            self._put_contact(deal, ref, role=None)

    @staticmethod
    def _put_contact(deal: Deal, ref: ContactRef, *, role: str | None) -> None:
        existing = next((c for c in deal.contacts if _same_person(c, ref)), None)
        if role is not None:
            # One economic buyer and one champion per deal: the previous holder stays a contact.
            for contact in deal.contacts:
                if contact.role == role and contact is not existing:
                    contact.role = "other"
        if existing is None:
            deal.contacts.append(
                Contact(
                    name=ref.name,
                    email=ref.email,
                    slack_user_id=ref.user_id,
                    role=role or "other",
                )
            )
            return
        existing.name = ref.name or existing.name
        existing.email = ref.email or existing.email
        existing.slack_user_id = ref.user_id or existing.slack_user_id
        if role is not None:
            existing.role = role

    def _enqueue(
        self,
        session: Session,
        deal: Deal,
        kind: str,
        field: str | None,
        value: object,
        *,
        key: str,
        by: str,
        at: dt.datetime,
    ) -> None:
        """Queue one change for the CRM, in the caller's transaction; a known key is a no-op."""
        if self.crm is None:
            return
        CrmRepository(session).enqueue(
            PushToMake(
                deal_id=deal.id,
                kind=kind,
                field=field,
                value=value,
                key=key,
                made_by=by,
                made_at=at,
            )
        )

    def _enqueue_updates(
        self,
        session: Session,
        deal: Deal,
        before: dict[str, str | None],
        *,
        by: str,
        at: dt.datetime,
    ) -> None:
        """Queue an update per CRM field that differs from `before`.

        The key names the deal, field, value and moment: a retried Slack request either finds
        the value already set (nothing differs, nothing queued) or makes the same key.
        """
        for field, value in _crm_values(deal).items():
            if before[field] == value:
                continue
            digest = hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]
            key = f"update:{deal.id}:{field}:{at.isoformat()}:{digest}"
            self._enqueue(session, deal, "update", field, value, key=key, by=by, at=at)

    def _enqueue_step_done(
        self, session: Session, deal: Deal, step: NextStep, *, by: str, at: dt.datetime
    ) -> None:
        value = {"step_id": step.id}
        self._enqueue(
            session, deal, "task_done", "next_step", value, key=f"task_done:{step.id}", by=by, at=at
        )

    def _crm_marks(self, session: Session, deal_ids: list[int]) -> dict[int, dict[str, Any]]:
        """Return the CRM fields of these deals' views (link, unsent fields), in two queries."""
        if self.crm is None or not deal_ids:
            return {}
        repository = CrmRepository(session)
        links = repository.links_for(deal_ids)
        unsent = repository.not_in_crm(deal_ids)
        marks: dict[int, dict[str, Any]] = {}
        for deal_id in set(links) | set(unsent):
            link = links.get(deal_id)
            kind = link.kind if link else self.crm
            marks[deal_id] = {
                "crm_label": CRM_LABELS.get(kind, kind),
                "crm_url": link.url if link else None,
                "not_in_crm": unsent.get(deal_id, ()),
            }
        return marks

    def _record_changes(
        self,
        deals: DealRepository,
        deal: Deal,
        before: dict[str, str | None],
        *,
        by: str,
        at: dt.datetime,
    ) -> tuple[FieldChange, ...]:
        """Return the tracked fields that differ from `before`, each kept in the deal's history."""
        return _record_differences(deals, deal, before, tracked_values(deal), by=by, at=at)

    def _view(
        self, session: Session, deal: Deal, today: dt.date, *, full: bool = False
    ) -> DealView:
        step = _current_step(deal.next_steps)
        # The same facts query as /pipeline, so a deal is flagged the same everywhere.
        attention = self._attention(session, deal, today)
        return DealView(
            **self._headline(deal),
            buying_criteria=deal.buying_criteria,
            buying_process=deal.buying_process,
            paper_process=deal.paper_process,
            pain=deal.pain,
            metrics=deal.metrics,
            competition=deal.competition,
            close_reason=deal.close_reason,
            contacts=tuple(
                ContactView(name=c.name, email=c.email, slack_user_id=c.slack_user_id, role=c.role)
                for c in deal.contacts
            ),
            next_step=_step_view(step) if step else None,
            attention=attention,
            history=self._history(session, deal) if full else (),
            close_date_pushes=_close_date_pushes(deal.changes) if full else 0,
            post_mortem=_post_mortem_view(deal.post_mortem) if full else None,
            evidence=tuple(
                _evidence_view(c, self._zone(session, deal.owner_id))
                for c in EvidenceRepository(session).latest_per_kind(deal.id).values()
            ),
            **self._crm_marks(session, [deal.id]).get(deal.id, {}),
        )


def _evidence_view(citation: Citation, zone: ZoneInfo) -> EvidenceView:
    return EvidenceView(
        cited_on=citation.cited_at.astimezone(zone).date(),
        kind=citation.kind,
        source=citation.source,
        reference=citation.reference,
        cited_by=citation.cited_by,
        cited_at=citation.cited_at,
        excerpt=citation.excerpt,
    )


def _quoted(account: str) -> str:
    """Return the account as a `/deal` reference: quoted when it has spaces."""
    return f'"{account}"' if " " in account else account


def _crm_values(deal: Deal) -> dict[str, str | None]:
    """Return the deal's fields a CRM also holds (crm.records.SYNCED_FIELDS names), as text.

    The next step travels as tasks, not as a field, so it is not here.
    """
    return {
        "title": deal.title,
        "account": deal.account,
        "amount": None if deal.amount is None else f"{deal.amount:.2f}",
        "currency": deal.currency,
        "close_date": deal.close_date.isoformat() if deal.close_date else None,
        "stage": deal.stage,
        "forecast_category": deal.forecast_category,
        "owner": deal.owner_id,
    }


def _current_step(steps: Iterable[NextStep]) -> NextStep | None:
    """Return the open next step due soonest (undated ones last)."""
    open_steps = [step for step in steps if not step.done]
    if not open_steps:
        return None
    return min(open_steps, key=lambda s: (s.due_date is None, s.due_date or dt.date.max, s.id))


def _said_values(deal: Deal) -> dict[str, str | None]:
    """Return the fields an update reply names old and new of, beyond those history keeps.

    A buyer or champion is their name, else their email, else `@` and their Slack user id
    (a name never starts with `@`), which the surface shows as a mention.
    """

    def holder(role: str) -> str | None:
        contact = next((c for c in deal.contacts if c.role == role), None)
        if contact is None:
            return None
        return (
            contact.name
            or contact.email
            or (f"@{contact.slack_user_id}" if contact.slack_user_id else None)
        )

    return {
        "economic_buyer": holder("economic_buyer"),
        "champion": holder("champion"),
        **{name: getattr(deal, name) for name in EVIDENCE_FIELDS},
    }


def tracked_values(deal: Deal) -> dict[str, str | None]:
    """Return the fields whose every change is kept, as strings for the history table.

    One definition for every writer of history: a change made in Slack and one pulled from
    a CRM compare and store the same strings.
    """
    return {
        "stage": deal.stage,
        "amount": None if deal.amount is None else f"{deal.amount:.2f} {deal.currency}",
        "close_date": deal.close_date.isoformat() if deal.close_date else None,
        "forecast_category": deal.forecast_category,
        "status": deal.status,
    }


def _close_date_pushes(changes: Iterable[DealChange]) -> int:
    """Return how many times the close date was moved later (ISO dates sort as text).

    The move written when the deal closed (same moment as its status change to won or lost)
    is the day it closed, not a date the rep pushed: a deal won a day late was not pushed.
    """
    changes = list(changes)
    closings = {
        c.changed_at for c in changes if c.field == "status" and c.new_value in ("won", "lost")
    }
    return sum(
        1
        for c in changes
        if c.field == "close_date"
        and c.old_value
        and c.new_value
        and c.new_value > c.old_value
        and c.changed_at not in closings
    )


def _step_view(step: NextStep) -> NextStepView:
    return NextStepView(
        id=step.id, what=step.what, owner_id=step.owner_id, due_date=step.due_date, done=step.done
    )


def _post_mortem_view(post_mortem: PostMortem | None) -> PostMortemView | None:
    if post_mortem is None:
        return None
    return PostMortemView(
        outcome=post_mortem.outcome,
        primary_reason=post_mortem.primary_reason,
        competitor=post_mortem.competitor,
        lessons=post_mortem.lessons,
    )


def _same_person(contact: Contact, ref: ContactRef) -> bool:
    if ref.email and contact.email:
        return ref.email.casefold() == contact.email.casefold()
    if ref.user_id and contact.slack_user_id:
        return ref.user_id == contact.slack_user_id
    if ref.name and contact.name:
        return name_key(ref.name) == name_key(contact.name)
    return False


def _identity_values(deal: Deal) -> dict[str, str | None]:
    """Return the deal's names and owner: what `/deal <deal> name: account: owner:` change."""
    return {"account": deal.account, "title": deal.title, "owner": deal.owner_id}


def _apply_identity(deal: Deal, changes: DealChanges) -> None:
    """Rename the account and hand the deal over, as `changes` ask.

    The new owner takes the open next steps the previous owner held (theirs to do now);
    a step someone else owns (an SE's demo) stays theirs, and done steps keep who did them.
    """
    if changes.account is not None:
        deal.account = changes.account
        deal.account_key = name_key(changes.account)
    if changes.owner_id is not None and changes.owner_id != deal.owner_id:
        for step in deal.next_steps:
            if not step.done and step.owner_id == deal.owner_id:
                step.owner_id = changes.owner_id
        deal.owner_id = changes.owner_id


def _record_identity(
    deals: DealRepository,
    deal: Deal,
    before: dict[str, str | None],
    *,
    by: str,
    at: dt.datetime,
) -> tuple[FieldChange, ...]:
    """Return the names and owner that differ from `before`, each kept in the history."""
    return _record_differences(deals, deal, before, _identity_values(deal), by=by, at=at)


def _record_differences(
    deals: DealRepository,
    deal: Deal,
    before: dict[str, str | None],
    after: dict[str, str | None],
    *,
    by: str,
    at: dt.datetime,
) -> tuple[FieldChange, ...]:
    """Return the fields whose value differs between `before` and `after`, each recorded."""
    changed = tuple(
        FieldChange(field=field, old=before[field], new=after[field])
        for field in after
        if before[field] != after[field]
    )
    for change in changed:
        deals.record_change(deal, field=change.field, old=change.old, new=change.new, by=by, at=at)
    return changed


def _mark_deleted(
    deals: DealRepository, deal: Deal, *, note: str, by: str, at: dt.datetime
) -> None:
    """Delete the deal softly: who and when, and a history row saying why ("merged into #3")."""
    deal.deleted_at = at
    deal.deleted_by = by
    deal.updated_at = at
    deals.record_change(deal, field="deleted", old=None, new=note, by=by, at=at)


def _same_contact(contact: Contact, other: Contact) -> bool:
    """Return whether two contacts are the same person (email, Slack user, then name)."""
    return _same_person(
        contact, ContactRef(name=other.name, email=other.email, user_id=other.slack_user_id)
    )


def _deal_name(deal: Deal) -> str:
    return f"{deal.account} — {deal.title}" if deal.title else deal.account


def _candidate_label(deal: Deal) -> str:
    amount = format_money(Money(deal.amount, deal.currency)) if deal.amount is not None else ""
    parts = [deal.account, deal.title or "", amount, deal.status if deal.status != "open" else ""]
    return " · ".join(part for part in parts if part) + f" (#{deal.id})"


def _team_key(deal: Deal) -> str | None:
    """Return the name key of the team whose stage the deal is in, if it is in one."""
    return deal.team_stage.rpartition(":")[0] if deal.team_stage else None
