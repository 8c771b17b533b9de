"""The pull side of the sync engine: read what changed in the CRM and apply it here.

A pull refreshes the CRM's stages and owners, then applies its deals batch by batch, storing
the cursor after each. `crm_links.synced` holds the CRM's values as last seen: a pulled value
that differs from it is a change made in the CRM, which either applies locally or, when a local
push of the same field is waiting, is a conflict that the later change wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from crm._values import (
    SLOW_SHARE,
    Caller,
    Tally,
    current_open_step,
    deal_name,
    local_text,
    usage_share,
)
from crm.connector import CrmConnector
from crm.mapping import TRACKED_FIELDS, map_stages, next_step_of, remote_values, status_of
from crm.notices import ConflictNotice, CrmNotices, SlackDirectory
from crm.records import CRM_LABELS, ApiUsage, CrmDeal, CrmFieldChange, CrmOwner, CrmStage, PullBatch
from domain.clock import Clock
from domain.deals import tracked_values
from domain.stages import EMPTY_BOOK, FORECAST_CATEGORIES, Stage, StageBook
from storage.crm import CrmRepository
from storage.database import Database
from storage.deals import name_key
from storage.models import Contact, CrmLink, CrmPush, CrmStageLink, Deal, DealChange, NextStep
from storage.teams import TeamRepository

# Above SLOW_SHARE of the CRM's allowance, pulls wait this long between them (pushes don't).
SLOW_PULL_INTERVAL = dt.timedelta(minutes=30)
# The zone of an owner on no team, unless the engine is given DEALBOT_TIMEZONE.
UTC_ZONE = ZoneInfo("UTC")
# deal_changes.old_value/new_value hold this many characters.
HISTORY_TEXT_MAX = 64


@dataclass(frozen=True)
class PullContext:
    """What a pull knows before it applies deals: stage mapping, owners, backfill."""

    stage_keys: dict[str, str]  # CRM stage id -> dealbot stage key
    stages: dict[str, CrmStage]
    owner_slack: dict[str, str]  # CRM owner id -> Slack user id (matched owners only)
    history: dict[str, list[CrmFieldChange]]  # CRM deal id -> backfill, for new deals


@dataclass
class Known:
    """What one session's batch found in the database for its CRM deals (filled as it goes)."""

    links: dict[str, CrmLink]  # CRM id -> link
    imported: dict[str, Deal]  # CRM id -> an unlinked deal imported from that record
    deals: dict[int, Deal]  # deal id -> linked deal
    pushes: dict[int, list[CrmPush]]  # deal id -> unsent pushes


@dataclass(frozen=True, kw_only=True)
class CrmPuller:
    """Pull one CRM's deals into dealbot. Each method opens its own sessions.

    `CrmSync` builds one per run; `call`, `login_works` and `store_usage` are its login and
    usage bookkeeping.
    """

    database: Database
    connector: CrmConnector
    directory: SlackDirectory
    notices: CrmNotices
    clock: Clock
    admins: tuple[str, ...]
    default_currency: str
    stages: tuple[Stage, ...]
    # Teams' own stages; those taken from this CRM name each CRM stage (`crm_stage`).
    stage_book: StageBook = EMPTY_BOOK
    call: Caller
    login_works: Callable[[Any], None]
    store_usage: Callable[[Any, ApiUsage | None], None]
    # "Today" of an owner on no team (DEALBOT_TIMEZONE): the day a deal closed in a CRM
    # that gives no close date.
    default_timezone: ZoneInfo = UTC_ZONE
    # Owner -> the name key of their team that has the CRM's stages (None: none), asked once
    # per owner in a run, not once per deal.
    crm_team_of: dict[str, str | None] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.connector.kind)

    def pull(self, tally: Tally, *, full: bool, ids: Sequence[str] | None = None) -> None:
        """Read what changed in the CRM and apply it, batch by batch, cursor after each."""
        now = self.clock.now()
        usage = self.connector.usage()
        with self.database.session() as session:
            state = CrmRepository(session).state(self.kind)
            cursor = None if full else state.cursor
            last_pull_at = state.last_pull_at
            share = usage.share if usage else usage_share(state.usage_used, state.usage_limit)
            self.store_usage(session, usage)
        if (
            ids is None
            and not full
            and share is not None
            and share > SLOW_SHARE
            and last_pull_at is not None
            and now - last_pull_at < SLOW_PULL_INTERVAL
        ):
            return
        crm_stages = self.call(self.connector.stages)
        crm_owners = self.call(self.connector.owners)
        stage_keys = map_stages(crm_stages, self.stages)
        owner_slack = self._refresh(crm_stages, stage_keys, crm_owners, tally)
        base = PullContext(
            stage_keys=stage_keys,
            stages={stage.id: stage for stage in crm_stages},
            owner_slack=owner_slack,
            history={},
        )
        batches: Iterator[PullBatch] | list[PullBatch]
        if ids is not None:
            deals = self.call(lambda: self.connector.deals(list(ids)))
            batches = [PullBatch(deals=deals, cursor="")]
        else:
            batches = self.connector.pull(cursor)
        backfill = ids is None and cursor is None
        seen: dict[str, dt.datetime] = {}
        counted: set[str] = set()
        iterator = iter(batches)
        while True:
            try:
                batch = self.call(lambda: next(iterator, None))
            except StopIteration:  # pragma: no cover - next() with a default never raises
                break
            if batch is None:
                break
            fresh = []
            for deal in batch.deals:
                if deal.id in seen and seen[deal.id] >= deal.modified_at:
                    continue
                seen[deal.id] = deal.modified_at
                fresh.append(deal)
            history = self._backfill(fresh) if backfill else {}
            context = PullContext(
                stage_keys=base.stage_keys,
                stages=base.stages,
                owner_slack=base.owner_slack,
                history=history,
            )
            with self.database.session() as session:
                known = self.known(session, fresh)
                for deal in fresh:
                    outcome = self.apply(session, deal, context, tally, known)
                    if outcome in ("written", "skipped") and deal.id not in counted:
                        counted.add(deal.id)
                        if outcome == "written":
                            tally.pulled += 1
                        else:
                            tally.failed += 1
                if ids is None:
                    state = CrmRepository(session).state(self.kind)
                    if state.cursor != batch.cursor:
                        state.cursor = batch.cursor
        with self.database.session() as session:
            state = CrmRepository(session).state(self.kind)
            if ids is None:
                state.last_pull_at = now
            self.store_usage(session, self.connector.usage())
            self.login_works(session)

    def _refresh(
        self,
        crm_stages: Sequence[CrmStage],
        stage_keys: dict[str, str],
        crm_owners: Sequence[CrmOwner],
        tally: Tally,
    ) -> dict[str, str]:
        """Store the stages and owners; return CRM owner id -> Slack user for matched owners.

        Owners already matched keep their Slack user; the others are looked up again each
        pull (people join Slack), and each is reported to admins once, ever.
        """
        with self.database.session() as session:
            known = {
                owner_id: (row.slack_user_id, row.reported_at)
                for owner_id, row in CrmRepository(session).owners(self.kind).items()
            }
        found: dict[str, str | None] = {}
        for owner in crm_owners:
            slack_user = known.get(owner.id, (None, None))[0]
            if slack_user is None and owner.email:
                slack_user = self.directory.user_by_email(owner.email)
            found[owner.id] = slack_user
        newly_unmatched: list[str] = []
        now = self.clock.now()
        with self.database.session() as session:
            repository = CrmRepository(session)
            repository.replace_stages(
                self.kind,
                [
                    CrmStageLink(
                        kind=self.kind,
                        stage_id=stage.id,
                        label=stage.label,
                        probability=stage.probability,
                        sort_order=stage.order,
                        is_closed=stage.is_closed,
                        is_won=stage.is_won,
                        forecast_category=stage.forecast_category,
                        pipeline=stage.pipeline,
                        dealbot_stage=stage_keys[stage.id],
                    )
                    for stage in crm_stages
                ],
            )
            rows = repository.owners(self.kind)
            for owner in crm_owners:
                row = rows.get(owner.id)
                slack_user = found[owner.id]
                if row is None or (row.email, row.name, row.slack_user_id) != (
                    owner.email,
                    owner.name,
                    slack_user,
                ):
                    row = repository.put_owner(
                        self.kind,
                        owner.id,
                        email=owner.email,
                        name=owner.name,
                        slack_user_id=slack_user,
                    )
                if slack_user is None and row.reported_at is None:
                    row.reported_at = now
                    newly_unmatched.append(owner.email or owner.name)
        if newly_unmatched:
            emails = tuple(newly_unmatched)
            tally.later.append(lambda: self.notices.owners_without_slack_user(self.admins, emails))
        return {owner_id: slack for owner_id, slack in found.items() if slack is not None}

    def _backfill(self, deals: Sequence[CrmDeal]) -> dict[str, list[CrmFieldChange]]:
        """Return the CRM's past changes of the deals this pull will create, by CRM id."""
        with self.database.session() as session:
            known = self.known(session, deals)
            new_ids = [
                deal.id
                for deal in deals
                if deal.id not in known.links and deal.id not in known.imported
            ]
        if not new_ids:
            return {}
        history: dict[str, list[CrmFieldChange]] = {}
        for change in self.call(lambda: list(self.connector.field_history(new_ids))):
            history.setdefault(change.deal_id, []).append(change)
        return history

    def known(self, session: Any, deals: Sequence[CrmDeal]) -> Known:
        """Return what the database holds about these CRM deals, in four queries."""
        repository = CrmRepository(session)
        links = repository.links_by_crm_ids(self.kind, [deal.id for deal in deals])
        imported = {
            ref.split(":", 1)[1]: deal
            for ref, deal in repository.deals_by_external_refs(
                f"{self.kind}:{deal.id}" for deal in deals if deal.id not in links
            ).items()
        }
        deal_ids = [link.deal_id for link in links.values()] + [d.id for d in imported.values()]
        return Known(
            links=links,
            imported=imported,
            deals=repository.deals_by_ids(link.deal_id for link in links.values()),
            pushes=repository.unsent_pushes_for(deal_ids),
        )

    def apply(
        self, session: Any, remote: CrmDeal, context: PullContext, tally: Tally, known: Known
    ) -> str:
        """Apply one pulled deal; return "written", "unchanged" or "skipped" (no Slack owner)."""
        owner = context.owner_slack.get(remote.owner) if remote.owner else None
        if owner is None:
            return "skipped"
        repository = CrmRepository(session)
        stage_key = context.stage_keys.get(remote.stage)
        values = remote_values(
            remote,
            stage_key=stage_key,
            owner_slack_id=owner,
            default_currency=self.default_currency,
        )
        link = known.links.get(remote.id)
        if link is None:
            imported = known.imported.get(remote.id)
            if imported is None:
                known.links[remote.id] = self._create_local(session, remote, values, owner, context)
                return "written"
            link = repository.add_link(
                deal_id=imported.id,
                kind=self.kind,
                crm_id=remote.id,
                url=self.connector.record_url(remote.id),
                synced={},
            )
            known.links[remote.id] = link
        deal = known.deals.get(link.deal_id) or session.get(Deal, link.deal_id)
        synced = repository.synced_of(link)
        before_tracked = tracked_values(deal)
        pending: dict[str, list[CrmPush]] = {}
        refused: set[str] = set()
        for push in known.pushes.get(deal.id, []):
            name = "next_step" if push.kind in ("task", "task_done") else push.field
            if name is None or push.kind == "create":
                continue
            if push.status == "refused":
                refused.add(name)
            else:
                pending.setdefault(name, []).append(push)
        wrote = False
        new_synced = dict(synced)
        for name, remote_value in values.items():
            if name in synced and synced[name] == remote_value:
                continue
            new_synced[name] = remote_value
            local_value = local_text(deal, name)
            if local_value == remote_value:
                continue
            waiting = pending.get(name, [])
            if waiting:
                latest = max(waiting, key=lambda push: push.made_at)
                tally.conflicts += 1
                crm_wins = remote.modified_at > latest.made_at
                notice = ConflictNotice(
                    rep=deal.owner_id,
                    deal_id=deal.id,
                    deal_name=deal_name(deal),
                    field=name,
                    kept=_readable(remote_value if crm_wins else local_value),
                    lost=_readable(local_value if crm_wins else remote_value),
                    kept_from=CRM_LABELS.get(self.kind, self.kind) if crm_wins else "Slack",
                )
                tally.later.append(lambda notice=notice: self.notices.conflict(notice))  # type: ignore[misc]
                if not crm_wins:
                    # The CRM's change loses but stays on record, as made there.
                    session.add(
                        DealChange(
                            deal_id=deal.id,
                            field=name,
                            old_value=_history_text(local_value),
                            new_value=_history_text(remote_value),
                            changed_by=owner,
                            changed_at=remote.modified_at,
                            source=self.kind,
                        )
                    )
                    wrote = True
                    continue
                repository.supersede(deal.id, name, statuses=("pending",))
            elif name in refused:
                repository.supersede(deal.id, name, statuses=("refused",))
            self._set_local(session, deal, name, remote, remote_value, context, new_synced)
            wrote = True
        if before_tracked["status"] == "open" and deal.status != "open":
            # A won or lost deal's close date is the day it closed: the CRM's close date when
            # it gives one, else the owner's today at this sync. The planned date stays in
            # history (recorded below at the same moment as the status change).
            deal.close_date = remote.close_date or self._owner_today(session, deal.owner_id)
        wrote = self._apply_contacts(deal, remote) or wrote
        if new_synced != synced:
            repository.set_synced(link, new_synced)
            wrote = True
        if remote.stage in context.stages and link.crm_stage != remote.stage:
            link.crm_stage = remote.stage
            wrote = True
        team_stage = self._team_stage(session, deal, remote.stage)
        if team_stage is not None and deal.team_stage != team_stage:
            deal.team_stage = team_stage
            wrote = True
        if not wrote:
            return "unchanged"
        link.remote_modified_at = remote.modified_at
        self._record_tracked(session, deal, before_tracked, by=owner, at=remote.modified_at)
        deal.updated_at = self.clock.now()
        return "written"

    def _team_stage(self, session: Any, deal: Deal, crm_stage: str | None) -> str | None:
        """Return the team stage an open deal takes from its CRM stage, when its owner's team
        has the CRM's stages (`/dealbot team stages <team> from-crm`); else None."""
        if deal.status != "open" or not crm_stage:
            return None
        if deal.owner_id not in self.crm_team_of:
            crm_teams = {
                key
                for key, stages in self.stage_book.teams.items()
                if any(stage.crm_stage for stage in stages)
            }
            # No team takes the CRM's stages: no query.
            teams = TeamRepository(session).teams_of(deal.owner_id, role="rep") if crm_teams else []
            self.crm_team_of[deal.owner_id] = next(
                (team.name_key for team in teams if team.name_key in crm_teams), None
            )
        team_key = self.crm_team_of[deal.owner_id]
        if team_key is None:
            return None
        team_stage = self.stage_book.from_crm(team_key, crm_stage)
        # Only while it stands for the stage the deal is stored in.
        return team_stage if self.stage_book.counting(team_stage, deal.stage) else None

    def stored_context(self, session: Any) -> PullContext | None:
        """Return the pull context as the last pull stored it; None before any pull."""
        repository = CrmRepository(session)
        rows = repository.stages(self.kind)
        if not rows:
            return None
        return PullContext(
            stage_keys={row.stage_id: row.dealbot_stage for row in rows},
            stages={
                row.stage_id: CrmStage(
                    id=row.stage_id,
                    label=row.label,
                    probability=row.probability,
                    order=row.sort_order,
                    is_closed=row.is_closed,
                    is_won=row.is_won,
                    forecast_category=row.forecast_category,
                    pipeline=row.pipeline,
                )
                for row in rows
            },
            owner_slack={
                owner_id: row.slack_user_id
                for owner_id, row in repository.owners(self.kind).items()
                if row.slack_user_id
            },
            history={},
        )

    def _create_local(
        self,
        session: Any,
        remote: CrmDeal,
        values: dict[str, str | None],
        owner: str,
        context: PullContext,
    ) -> CrmLink:
        """Create the dealbot deal of a CRM deal seen for the first time, with its history."""
        stage_key = values.get("stage") or min(self.stages, key=lambda s: s.order).key
        crm_stage = context.stages.get(remote.stage)
        status = status_of(stage_key, crm_stage)
        at = remote.created_at or remote.modified_at
        account = remote.account or remote.title
        forecast = values.get("forecast_category")
        deal = Deal(
            account=account,
            account_key=name_key(account),
            title=remote.title if remote.account else None,
            title_key=name_key(remote.title) if remote.account else None,
            owner_id=owner,
            amount=remote.amount,
            currency=values.get("currency") or self.default_currency,
            stage=stage_key,
            stage_entered_at=remote.modified_at,
            # A deal first seen closed closed on the CRM's close date, else on the day it was
            # last changed there (a first sync brings years of closed deals: not all today).
            close_date=remote.close_date
            if status == "open"
            else remote.close_date or self._local_day(session, owner, remote.modified_at),
            forecast_category=forecast if forecast in FORECAST_CATEGORIES else "pipeline",
            status=status,
            created_by=owner,
            created_at=at,
            updated_at=self.clock.now(),
            last_touch_at=remote.modified_at,
            closed_at=remote.modified_at if status != "open" else None,
        )
        session.add(deal)
        deal.team_stage = self._team_stage(session, deal, remote.stage)
        synced = {name: value for name, value in values.items()}
        step = next_step_of(remote)
        added = None
        if step is not None and status == "open":
            added = NextStep(
                what=step.what,
                owner_id=context.owner_slack.get(step.owner or "") or owner,
                due_date=step.due,
                done=False,
                created_by=owner,
                created_at=remote.modified_at,
            )
            deal.next_steps.append(added)
        self._apply_contacts(deal, remote)
        history = context.history.get(remote.id, [])
        backfilled = set()
        for change in history:
            name = change.field
            if name not in TRACKED_FIELDS:
                continue
            backfilled.add(name)
            deal.changes.append(
                DealChange(
                    field=name,
                    old_value=_history_text(self._history_value(name, change.old, deal, context)),
                    new_value=_history_text(self._history_value(name, change.new, deal, context)),
                    changed_by=context.owner_slack.get(change.by or "") or self.kind,
                    changed_at=change.at,
                    source=self.kind,
                )
            )
        for name, value in tracked_values(deal).items():
            if value is not None and name not in backfilled:
                deal.changes.append(
                    DealChange(
                        field=name,
                        old_value=None,
                        new_value=value,
                        changed_by=owner,
                        changed_at=at,
                        source=self.kind,
                    )
                )
        session.flush()  # one flush: the deal's id, and its step's, for the link
        if added is not None and step is not None:
            synced["_step"] = str(added.id)
            if step.task_id:
                synced["_task"] = step.task_id
        link = CrmRepository(session).add_link(
            deal_id=deal.id,
            kind=self.kind,
            crm_id=remote.id,
            url=self.connector.record_url(remote.id),
            synced=synced,
            flush=False,
        )
        link.crm_stage = remote.stage if remote.stage in context.stages else None
        link.remote_modified_at = remote.modified_at
        return link

    def _owner_today(self, session: Any, owner_id: str) -> dt.date:
        """Return today in the owner's team timezone (else the workspace's)."""
        return self._local_day(session, owner_id, self.clock.now())

    def _local_day(self, session: Any, owner_id: str, at: dt.datetime) -> dt.date:
        zone_name = TeamRepository(session).timezone_of(owner_id)
        zone = ZoneInfo(zone_name) if zone_name else self.default_timezone
        return at.astimezone(zone).date()

    @staticmethod
    def _history_value(
        name: str, value: str | None, deal: Deal, context: PullContext
    ) -> str | None:
        """Return a CRM history value as dealbot's history writes that field."""
        if value is None:
            return None
        if name == "stage":
            return context.stage_keys.get(value, value)
        if name == "amount":
            try:
                return f"{Decimal(value):.2f} {deal.currency}"
            except InvalidOperation:
                return value
        return value

    def _set_local(
        self,
        session: Any,
        deal: Deal,
        name: str,
        remote: CrmDeal,
        value: str | None,
        context: PullContext,
        synced: dict[str, str | None],
    ) -> None:
        """Write one pulled field onto the local deal."""
        if name == "title" and value is not None:
            deal.title = value
            deal.title_key = name_key(value)
        elif name == "account" and value is not None:
            deal.account = value
            deal.account_key = name_key(value)
        elif name == "amount":
            deal.amount = None if value is None else Decimal(value)
        elif name == "currency" and value is not None:
            deal.currency = value
        elif name == "close_date":
            deal.close_date = None if value is None else dt.date.fromisoformat(value)
        elif name == "forecast_category" and value in FORECAST_CATEGORIES:
            deal.forecast_category = value
        elif name == "owner" and value is not None:
            deal.owner_id = value
        elif name == "stage" and value is not None:
            if deal.stage != value:
                deal.stage = value
                deal.stage_entered_at = remote.modified_at
            status = status_of(value, context.stages.get(remote.stage))
            if status != deal.status:
                deal.status = status
                deal.closed_at = remote.modified_at if status != "open" else None
                if status != "open":
                    # As when a rep closes it in Slack: a closed deal has no open next step.
                    for step in deal.next_steps:
                        if not step.done:
                            step.done, step.done_at = True, remote.modified_at
        elif name == "next_step":
            self._set_next_step(session, deal, remote, context, synced)

    def _set_next_step(
        self,
        session: Any,
        deal: Deal,
        remote: CrmDeal,
        context: PullContext,
        synced: dict[str, str | None],
    ) -> None:
        """Make the CRM's next step the deal's: add it, and close the one the CRM gave before."""
        step = next_step_of(remote)
        previous = synced.get("_step")
        for existing in deal.next_steps:
            if str(existing.id) == previous and not existing.done:
                existing.done = True
                existing.done_at = remote.modified_at
        synced.pop("_step", None)
        synced.pop("_task", None)
        if step is None or deal.status != "open":
            return
        current = current_open_step(deal)
        if current is not None and (current.what, current.due_date) == (step.what, step.due):
            chosen = current
        else:
            chosen = NextStep(
                what=step.what,
                owner_id=context.owner_slack.get(step.owner or "") or deal.owner_id,
                due_date=step.due,
                done=False,
                created_by=deal.owner_id,
                created_at=remote.modified_at,
            )
            deal.next_steps.append(chosen)
            session.flush()
        synced["_step"] = str(chosen.id)
        if step.task_id:
            synced["_task"] = step.task_id

    @staticmethod
    def _apply_contacts(deal: Deal, remote: CrmDeal) -> bool:
        """Add the CRM's contacts and their buyer/champion roles; return whether any changed."""
        changed = False
        for contact in remote.contacts:
            existing = next(
                (
                    c
                    for c in deal.contacts
                    if (
                        contact.email and c.email and c.email.casefold() == contact.email.casefold()
                    )
                    or (not contact.email and c.name and name_key(c.name) == name_key(contact.name))
                ),
                None,
            )
            role = contact.role if contact.role in ("economic_buyer", "champion") else None
            if existing is None:
                existing = Contact(name=contact.name, email=contact.email, role="other")
                deal.contacts.append(existing)
                changed = True
            if role is not None and existing.role != role:
                for other in deal.contacts:
                    if other.role == role and other is not existing:
                        other.role = "other"
                existing.role = role
                changed = True
        return changed

    def _record_tracked(
        self,
        session: Any,
        deal: Deal,
        before: dict[str, str | None],
        *,
        by: str,
        at: dt.datetime,
    ) -> None:
        """Keep each changed tracked field in history (added by id: no loading the history)."""
        after = tracked_values(deal)
        for name, value in after.items():
            if before[name] != value:
                session.add(
                    DealChange(
                        deal_id=deal.id,
                        field=name,
                        old_value=before[name],
                        new_value=value,
                        changed_by=by,
                        changed_at=at,
                        source=self.kind,
                    )
                )


def _readable(value: str | None) -> str | None:
    return None if value is None else value.replace("\x1f", " · ").strip(" ·")


def _history_text(value: str | None) -> str | None:
    readable = _readable(value)
    return None if readable is None else readable[:HISTORY_TEXT_MAX]
