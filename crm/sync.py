"""The sync engine: pull what changed in the CRM, push what changed in Slack, once each.

A run pushes first (the CRM outbox, `crm_pushes`), then pulls since the stored cursor.
`crm_links.synced` holds the CRM's values as last seen: a pulled value that differs from it
is a change made in the CRM, which either applies locally or, when a local push of the same
field is waiting, is a conflict that the later change wins. Notices go out after the commit
that decided them, so a DM never announces something a rollback undid.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from crm.connector import CrmConnector
from crm.mapping import (
    TRACKED_FIELDS,
    crm_stage_for,
    map_stages,
    next_step_of,
    push_fields,
    remote_values,
    retry_delay,
    status_of,
)
from crm.records import (
    CRM_LABELS,
    ApiUsage,
    CrmAuthFailed,
    CrmDeal,
    CrmError,
    CrmFieldChange,
    CrmOwner,
    CrmRateLimited,
    CrmRefused,
    CrmStage,
    CrmUnavailable,
    DealFields,
    NewTask,
    PullBatch,
)
from domain.clock import Clock
from domain.stages import DEFAULT_STAGES, FORECAST_CATEGORIES, Stage
from storage.crm import CrmRepository
from storage.database import Database
from storage.deals import name_key
from storage.models import Contact, CrmLink, CrmPush, CrmStageLink, Deal, DealChange, NextStep


class SlackDirectory(Protocol):
    """Finds the Slack user of a CRM owner by email (`users.lookupByEmail`)."""

    def user_by_email(self, email: str) -> str | None:
        """Return the Slack user id with this email, or None when nobody has it."""
        ...


@dataclass(frozen=True)
class ConflictNotice:
    """Both sides changed one field since the last sync; `kept` won, `lost` is in history."""

    rep: str  # Slack user id of the deal's owner
    deal_id: int
    deal_name: str
    field: str
    kept: str | None
    lost: str | None
    kept_from: str  # "Salesforce", "HubSpot" or "Slack"


@dataclass(frozen=True)
class RefusalNotice:
    """The CRM refused a change a rep made; `message` is the CRM's own words."""

    rep: str
    deal_id: int
    deal_name: str
    fields: tuple[str, ...]
    message: str


class CrmNotices(Protocol):
    """How the engine tells people things; `bot` wires one that DMs through the outbox."""

    def conflict(self, notice: ConflictNotice) -> None: ...

    def refused(self, notice: RefusalNotice) -> None: ...

    def owners_without_slack_user(self, admins: tuple[str, ...], emails: tuple[str, ...]) -> None:
        """Report owners newly found with no Slack match (each reported once, ever)."""
        ...

    def login_refused(self, admins: tuple[str, ...], message: str) -> None:
        """Report a refused or revoked CRM login (once until a login works again)."""
        ...


@dataclass(frozen=True)
class SyncReport:
    pulled: int
    pushed: int
    conflicts: int
    failed: int

    def summary(self) -> str:
        return (
            f"pulled {self.pulled}, pushed {self.pushed}, "
            f"conflicts {self.conflicts}, failed {self.failed}"
        )


@dataclass(frozen=True)
class CrmStatus:
    kind: str
    connected: bool
    message: str | None  # why not connected, in the CRM's or the setting's words
    last_pull_at: dt.datetime | None
    cursor: str | None
    pending_pushes: int
    refused_pushes: int
    owners_without_slack_user: tuple[str, ...]  # emails
    # Added with the engine: the share of the CRM's request allowance spent, when known, and
    # whether pulls are slowed to one per SLOW_PULL_INTERVAL because it is above SLOW_SHARE.
    api_usage_share: float | None = None
    slowed: bool = False


# How long a claimed push is ours; a process that dies mid-call frees it after this.
PUSH_LEASE = dt.timedelta(seconds=45)
# Above this share of the CRM's allowance, pulls wait this long between them (pushes don't).
SLOW_SHARE = 0.8
SLOW_PULL_INTERVAL = dt.timedelta(minutes=30)
# deal_changes.old_value/new_value hold this many characters.
HISTORY_TEXT_MAX = 64

T = TypeVar("T")

logger = logging.getLogger(__name__)


def claim_owner() -> str:
    """Return a claim owner id for this process: host, pid and a nonce (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:120]


@dataclass
class _Tally:
    """What a run did so far (mutable while it runs; `report()` freezes it)."""

    pulled: int = 0
    pushed: int = 0
    conflicts: int = 0
    failed: int = 0
    later: list[Callable[[], None]] = field(default_factory=list)  # notices, after commit

    def report(self) -> SyncReport:
        return SyncReport(
            pulled=self.pulled, pushed=self.pushed, conflicts=self.conflicts, failed=self.failed
        )


@dataclass(frozen=True)
class _PullContext:
    """What a pull knows before it applies deals: stage mapping, owners, backfill."""

    stage_keys: dict[str, str]  # CRM stage id -> dealbot stage key
    stages: dict[str, CrmStage]
    owner_slack: dict[str, str]  # CRM owner id -> Slack user id (matched owners only)
    history: dict[str, list[CrmFieldChange]]  # CRM deal id -> backfill, for new deals


class CrmSync:
    """Mirror one CRM both ways. Each public method opens its own sessions."""

    def __init__(
        self,
        *,
        database: Database,
        connector: CrmConnector,
        directory: SlackDirectory,
        notices: CrmNotices,
        clock: Clock,
        admins: tuple[str, ...] = (),
        default_currency: str = "USD",
        stages: tuple[Stage, ...] = DEFAULT_STAGES,
        owner: str | None = None,
        lease: dt.timedelta = PUSH_LEASE,
    ) -> None:
        self.database = database
        self.connector = connector
        self.directory = directory
        self.notices = notices
        self.clock = clock
        self.admins = admins
        self.default_currency = default_currency
        # Added with the engine: the team's dealbot stages (what CRM stages map to), the
        # claim owner of pushes (one per process by default) and how long a claim holds.
        self.stages = stages
        self.owner = owner or claim_owner()
        self.lease = lease
        self._renews_leases = True

    @property
    def kind(self) -> str:
        return str(self.connector.kind)

    @property
    def label(self) -> str:
        return CRM_LABELS.get(self.kind, self.kind)

    # --- public ---------------------------------------------------------------------------

    def run(self, *, full: bool = False, dry_run: bool = False) -> SyncReport:
        """Push pending changes, then pull since the cursor (everything when `full`).

        Raises `CrmAuthFailed` (after telling admins, once) or another `CrmError` when the CRM
        cannot be read; what was pulled batch by batch before that is kept. With `dry_run`,
        nothing is written, pushed or said: the run happens in a transaction rolled back at
        the end, against a connector that does not write.
        """
        if dry_run:
            return self._dry_run(full=full)
        tally = _Tally()
        try:
            self._push(tally)
            self._pull(tally, full=full)
        finally:
            self._tell(tally)
        return tally.report()

    def push_pending(self) -> SyncReport:
        """Push only: the every-minute pass that gets Slack changes into the CRM."""
        tally = _Tally()
        try:
            self._push(tally)
        finally:
            self._tell(tally)
        return tally.report()

    def pull_deals(self, ids: Sequence[str]) -> SyncReport:
        """Pull these deals now (a HubSpot webhook named them), as a regular pull would."""
        tally = _Tally()
        try:
            self._pull(tally, full=False, ids=ids)
        finally:
            self._tell(tally)
        return tally.report()

    def status(self) -> CrmStatus:
        """Return whether the CRM answers, and where the sync stands."""
        with self.database.session() as session:
            repository = CrmRepository(session)
            state = repository.peek_state(self.kind)
            pending = repository.count_pushes(("pending", "sending"))
            refused = repository.count_pushes(("refused",))
            unmatched = repository.owners_without_slack_user(self.kind)
            last_pull_at = state.last_pull_at if state else None
            cursor = state.cursor if state else None
            share = _share(state.usage_used, state.usage_limit) if state else None
        connected, message = True, None
        try:
            self.connector.owners()
            self.connector.stages()
        except CrmError as error:
            connected, message = False, error.message
        usage = self.connector.usage()
        if usage is not None:
            share = usage.share
        return CrmStatus(
            kind=self.kind,
            connected=connected,
            message=message,
            last_pull_at=last_pull_at,
            cursor=cursor,
            pending_pushes=pending,
            refused_pushes=refused,
            owners_without_slack_user=unmatched,
            api_usage_share=share,
            slowed=share is not None and share > SLOW_SHARE,
        )

    # --- plumbing -------------------------------------------------------------------------

    def _dry_run(self, *, full: bool) -> SyncReport:
        with self.database.one_transaction(commit=False) as scratch:
            engine = CrmSync(
                database=scratch,
                connector=_ReadOnlyConnector(self.connector),
                directory=self.directory,
                notices=_SilentNotices(),
                clock=self.clock,
                admins=self.admins,
                default_currency=self.default_currency,
                stages=self.stages,
                owner=self.owner,
                lease=self.lease,
            )
            # The scratch transaction has one connection: no second thread may use it.
            engine._renews_leases = False
            tally = _Tally()
            engine._push(tally)
            engine._pull(tally, full=full)
            return tally.report()

    def _tell(self, tally: _Tally) -> None:
        """Send the notices a run decided, now that its writes are committed."""
        for notice in tally.later:
            notice()
        tally.later.clear()

    def _call(self, call: Callable[[], T]) -> T:
        """Return the connector's answer; a refused login tells admins (once) and re-raises."""
        try:
            return call()
        except CrmAuthFailed as error:
            self._login_refused(error)
            raise

    def _login_refused(self, error: CrmAuthFailed) -> None:
        with self.database.session() as session:
            state = CrmRepository(session).state(self.kind)
            first = state.login_refused_at is None
            if first:
                state.login_refused_at = self.clock.now()
        if first:
            self.notices.login_refused(self.admins, error.message)

    def _login_works(self, session: Any) -> None:
        state = CrmRepository(session).state(self.kind)
        if state.login_refused_at is not None:
            state.login_refused_at = None

    def _store_usage(self, session: Any, usage: ApiUsage | None) -> None:
        if usage is None:
            return
        state = CrmRepository(session).state(self.kind)
        if (state.usage_used, state.usage_limit) != (usage.used, usage.limit):
            state.usage_used, state.usage_limit = usage.used, usage.limit

    # --- push -----------------------------------------------------------------------------

    def _push(self, tally: _Tally) -> None:
        """Claim due pushes and write them to the CRM, a deal at a time.

        The deals about to be written are read first (one `deals()` call), so a change made
        in the CRM after the rep's is found before the push would overwrite it: the conflict
        rule decides, exactly as on a pull.
        """
        now = self.clock.now()
        with self.database.session() as session:
            repository = CrmRepository(session)
            repository.release_lapsed_claims(now=now)
            due = repository.due_pushes(now=now)
        if due:
            self._read_before_push(sorted({deal_id for _, deal_id in due}), tally)
            with self.database.session() as session:
                due = CrmRepository(session).due_pushes(now=now)
        by_deal: dict[int, list[int]] = {}
        for push_id, deal_id in due:
            by_deal.setdefault(deal_id, []).append(push_id)
        pushed_before = tally.pushed
        for deal_id, push_ids in by_deal.items():
            if not self._push_deal(deal_id, push_ids, tally):
                break
        if tally.pushed > pushed_before:
            with self.database.session() as session:
                state = CrmRepository(session).state(self.kind)
                state.last_push_at = now
                self._login_works(session)

    def _read_before_push(self, deal_ids: list[int], tally: _Tally) -> None:
        """Apply the CRM's current version of these linked deals (conflicts included)."""
        with self.database.session() as session:
            repository = CrmRepository(session)
            links = repository.links_for(deal_ids)
            context = self._stored_context(session)
        if not links or context is None:
            return
        try:
            remote = self._call(
                lambda: self.connector.deals([link.crm_id for link in links.values()])
            )
        except CrmUnavailable:
            return  # the pushes will meet the same outage and back off
        with self.database.session() as session:
            known = self._known(session, remote)
            for deal in remote:
                if self._apply(session, deal, context, tally, known) == "written":
                    tally.pulled += 1

    def _stored_context(self, session: Any) -> _PullContext | None:
        """Return the pull context as the last pull stored it; None before any pull."""
        repository = CrmRepository(session)
        rows = repository.stages(self.kind)
        if not rows:
            return None
        return _PullContext(
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

    def _push_deal(self, deal_id: int, push_ids: list[int], tally: _Tally) -> bool:
        """Push one deal's due rows; return False when the pass should stop (CRM unavailable).

        A create goes first and covers the deal's updates (it is made from the deal as it
        stands); updates go as one `update_deal` with the latest value per field; tasks last.
        """
        now = self.clock.now()
        with self.database.session() as session:
            repository = CrmRepository(session)
            link = repository.link_of(deal_id)
            deal = session.get(Deal, deal_id)
            if deal is None:
                return True
            kinds = {
                push.kind
                for push in repository.pushes_of(deal_id, statuses=("pending",))
                if push.id in push_ids
            }
            if link is None and "create" not in kinds:
                # Not in the CRM yet and not to be created from here: wait for a pull to link
                # it (an imported deal's external_ref), showing "not in <CRM> yet" meanwhile.
                return True
            claimed = [
                push
                for push_id in push_ids
                if (
                    push := repository.claim(
                        push_id, owner=self.owner, lease_until=now + self.lease
                    )
                )
                is not None
            ]
            if not claimed:
                return True
            rows = [_PushRow.of(push) for push in claimed]
            snapshot = _DealSnapshot.of(deal, link, repository.synced_of(link) if link else {})
            crm_stages = repository.stages(self.kind)
            owners = {
                row.slack_user_id: row.crm_owner_id
                for row in repository.owners(self.kind).values()
                if row.slack_user_id
            }
        steps = self._push_steps(rows, snapshot, crm_stages, owners)
        with self._heartbeat([row.id for row in rows]):
            return self._make_calls(steps, snapshot, tally)

    def _make_calls(
        self,
        steps: list[tuple[list[_PushRow], Callable[[str | None], object]]],
        snapshot: _DealSnapshot,
        tally: _Tally,
    ) -> bool:
        """Make one deal's calls in order; return False when the pass should stop."""
        for index, (step_rows, call) in enumerate(steps):
            try:
                result = self._call(lambda call=call, crm_id=snapshot.crm_id: call(crm_id))  # type: ignore[misc]
            except CrmRefused as error:
                self._refused(step_rows, snapshot, error, tally)
                if step_rows[0].kind == "create":
                    # Nothing else can reach a record that does not exist: the rest waits.
                    self._release([r for rows_ in steps[index + 1 :] for r in rows_[0]])
                    return True
                continue
            except CrmUnavailable as error:
                retry_after = error.retry_after if isinstance(error, CrmRateLimited) else None
                self._retry_later(
                    [r for rows_ in steps[index:] for r in rows_[0]], error, retry_after
                )
                return False
            except CrmAuthFailed:
                self._release([r for rows_ in steps[index:] for r in rows_[0]])
                raise
            except CrmError as error:
                # Not one of the four kinds the protocol promises: retry later, go on.
                logger.warning("CRM push failed: %s", error.message)
                self._retry_later([r for rows_ in steps[index:] for r in rows_[0]], error, None)
                return True
            self._record_sent(step_rows, snapshot, result, tally)
            if step_rows[0].kind == "create" and isinstance(result, str):
                snapshot = snapshot.linked(result)
        return True

    @contextmanager
    def _heartbeat(self, push_ids: list[int]) -> Iterator[None]:
        """Renew the leases of these claimed rows from a thread while the calls run.

        A call can outlast the lease (Retry-After, a client's own retries); without renewal
        a second engine would take the row over and write it again. When the process dies
        the thread dies with it, and the lease lapses: that is how a dead claim is told.
        """
        if not self._renews_leases:
            yield
            return
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.lease.total_seconds() / 3):
                try:
                    with self.database.session() as session:
                        CrmRepository(session).renew_leases(
                            push_ids, owner=self.owner, lease_until=self.clock.now() + self.lease
                        )
                except Exception:
                    logger.warning("renewing CRM push leases failed", exc_info=True)

        thread = threading.Thread(target=renew, name="dealbot-crm-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _push_steps(
        self,
        rows: list[_PushRow],
        snapshot: _DealSnapshot,
        crm_stages: list[CrmStageLink],
        owners: dict[str, str],
    ) -> list[tuple[list[_PushRow], Callable[[str | None], object]]]:
        """Return the connector calls for one deal's claimed rows, in the order to make them."""
        mapping = {stage.stage_id: stage.dealbot_stage for stage in crm_stages}
        order = [stage.stage_id for stage in crm_stages if not stage.is_closed]
        order += [stage.stage_id for stage in crm_stages if stage.is_closed]
        rank = {stage.key: stage.order for stage in self.stages}
        steps: list[tuple[list[_PushRow], Callable[[str | None], object]]] = []
        creates = [row for row in rows if row.kind == "create"]
        updates = [row for row in rows if row.kind == "update"]
        connector = self.connector

        def fields_for(values: dict[str, str | None]) -> DealFields:
            stage = values.get("stage")
            crm_stage = (
                crm_stage_for(
                    stage, current=snapshot.crm_stage, mapping=mapping, order=order, rank=rank
                )
                if stage is not None
                else None
            )
            owner = values.get("owner")
            return push_fields(
                values, crm_stage=crm_stage, crm_owner=owners.get(owner) if owner else None
            )

        if creates:
            values = dict(snapshot.values)
            step = next_step_of_snapshot(snapshot)
            if step is not None:
                values["next_step"] = step
            fields = {k: v for k, v in fields_for(values).items() if v is not None}
            if step is not None:
                fields["next_step"] = step
            # The create is made from the deal as it stands, so it carries every update too.
            steps.append((creates + updates, lambda _: connector.create_deal(fields)))
        elif updates:
            latest: dict[str, str | None] = {}
            for row in sorted(updates, key=lambda row: (row.made_at, row.id)):
                if row.field is not None:
                    latest[row.field] = row.value if isinstance(row.value, str | None) else None
            fields = fields_for(latest)
            if fields:
                steps.append((updates, lambda crm_id: connector.update_deal(_id(crm_id), fields)))
            else:
                steps.append((updates, lambda _: None))
        for row in rows:
            if row.kind == "task":
                steps.append(([row], self._task_call(row, snapshot, owners)))
            elif row.kind == "task_done":
                steps.append(([row], self._task_done_call(row, snapshot)))
        return steps

    def _task_call(
        self, row: _PushRow, snapshot: _DealSnapshot, owners: dict[str, str]
    ) -> Callable[[str | None], object]:
        value = row.value if isinstance(row.value, dict) else {}
        due = value.get("due")
        owner = value.get("owner")
        task = NewTask(
            subject=str(value.get("subject") or ""),
            due=dt.date.fromisoformat(due) if isinstance(due, str) else None,
            owner=owners.get(owner) if isinstance(owner, str) else None,
        )

        def call(crm_id: str | None) -> object:
            return self.connector.create_task(_id(crm_id), task)

        return call

    def _task_done_call(
        self, row: _PushRow, snapshot: _DealSnapshot
    ) -> Callable[[str | None], object]:
        value = row.value if isinstance(row.value, dict) else {}
        step_id = value.get("step_id")

        def call(_crm_id: str | None) -> object:
            with self.database.session() as session:
                repository = CrmRepository(session)
                made = repository.push_by_key(f"task:{step_id}")
                task_id = made.crm_result if made is not None else None
                if task_id is None and snapshot.synced.get("_step") == str(step_id):
                    task_id = snapshot.synced.get("_task")
            if task_id:
                self.connector.complete_task(task_id)
            return None

        return call

    def _record_sent(
        self, rows: list[_PushRow], snapshot: _DealSnapshot, result: object, tally: _Tally
    ) -> None:
        """Mark rows sent and remember the values both sides now agree on, in one commit."""
        with self.database.session() as session:
            repository = CrmRepository(session)
            crm_result = result if isinstance(result, str) else None
            repository.mark([row.id for row in rows], "sent", crm_result=crm_result)
            link = repository.link_of(snapshot.deal_id)
            if rows[0].kind == "create" and crm_result is not None and link is None:
                link = repository.add_link(
                    deal_id=snapshot.deal_id,
                    kind=self.kind,
                    crm_id=crm_result,
                    url=self.connector.record_url(crm_result),
                    synced={},
                )
            if link is not None and rows[0].kind in ("create", "update"):
                synced = repository.synced_of(link)
                if rows[0].kind == "create":
                    synced.update({k: v for k, v in snapshot.values.items() if v is not None})
                else:
                    for row in sorted(rows, key=lambda row: (row.made_at, row.id)):
                        if row.field is not None and isinstance(row.value, str | None):
                            synced[row.field] = row.value
                stages = repository.stages(self.kind)
                mapping = {s.stage_id: s.dealbot_stage for s in stages}
                dealbot_stage = synced.get("stage")
                if dealbot_stage is not None and any(
                    r.field == "stage" or r.kind == "create" for r in rows
                ):
                    link.crm_stage = crm_stage_for(
                        dealbot_stage,
                        current=link.crm_stage,
                        mapping=mapping,
                        order=[s.stage_id for s in stages if not s.is_closed]
                        + [s.stage_id for s in stages if s.is_closed],
                        rank={stage.key: stage.order for stage in self.stages},
                    )
                    # What the CRM now holds, as a pull will read it back: a dealbot stage no
                    # CRM stage maps to reads back as its neighbour's, which is no change.
                    if link.crm_stage in mapping:
                        synced["stage"] = mapping[link.crm_stage]
                repository.set_synced(link, synced)
            self._login_works(session)
        tally.pushed += len(rows)

    def _refused(
        self, rows: list[_PushRow], snapshot: _DealSnapshot, error: CrmRefused, tally: _Tally
    ) -> None:
        with self.database.session() as session:
            CrmRepository(session).mark([row.id for row in rows], "refused", error=error.message)
        tally.failed += len(rows)
        by_rep: dict[str, list[str]] = {}
        for row in rows:
            names = by_rep.setdefault(row.made_by, [])
            name = row.field or ("deal" if row.kind == "create" else "next_step")
            if name not in names:
                names.append(name)
        for rep, names in by_rep.items():
            notice = RefusalNotice(
                rep=rep,
                deal_id=snapshot.deal_id,
                deal_name=snapshot.name,
                fields=tuple(names),
                message=error.message,
            )
            tally.later.append(lambda notice=notice: self.notices.refused(notice))  # type: ignore[misc]

    def _retry_later(
        self, rows: list[_PushRow], error: CrmError, retry_after: float | None
    ) -> None:
        now = self.clock.now()
        with self.database.session() as session:
            repository = CrmRepository(session)
            for row in rows:
                repository.mark(
                    [row.id],
                    "pending",
                    error=error.message,
                    next_attempt_at=now + retry_delay(row.attempts, retry_after),
                )

    def _release(self, rows: list[_PushRow]) -> None:
        with self.database.session() as session:
            CrmRepository(session).mark([row.id for row in rows], "pending")

    # --- pull -----------------------------------------------------------------------------

    def _pull(self, tally: _Tally, *, full: bool, ids: Sequence[str] | None = None) -> None:
        """Read what changed in the CRM and apply it, batch by batch, cursor after each."""
        now = self.clock.now()
        usage = self.connector.usage()
        with self.database.session() as session:
            state = CrmRepository(session).state(self.kind)
            cursor = None if full else state.cursor
            last_pull_at = state.last_pull_at
            share = usage.share if usage else _share(state.usage_used, state.usage_limit)
            self._store_usage(session, usage)
        if (
            ids is None
            and not full
            and share is not None
            and share > SLOW_SHARE
            and last_pull_at is not None
            and now - last_pull_at < SLOW_PULL_INTERVAL
        ):
            return
        crm_stages = self._call(self.connector.stages)
        crm_owners = self._call(self.connector.owners)
        stage_keys = map_stages(crm_stages, self.stages)
        owner_slack = self._refresh(crm_stages, stage_keys, crm_owners, tally)
        base = _PullContext(
            stage_keys=stage_keys,
            stages={stage.id: stage for stage in crm_stages},
            owner_slack=owner_slack,
            history={},
        )
        batches: Iterator[PullBatch] | list[PullBatch]
        if ids is not None:
            deals = self._call(lambda: self.connector.deals(list(ids)))
            batches = [PullBatch(deals=deals, cursor="")]
        else:
            batches = self.connector.pull(cursor)
        backfill = ids is None and cursor is None
        seen: dict[str, dt.datetime] = {}
        counted: set[str] = set()
        iterator = iter(batches)
        while True:
            try:
                batch = self._call(lambda: next(iterator, None))
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
            context = _PullContext(
                stage_keys=base.stage_keys,
                stages=base.stages,
                owner_slack=base.owner_slack,
                history=history,
            )
            with self.database.session() as session:
                known = self._known(session, fresh)
                for deal in fresh:
                    outcome = self._apply(session, deal, context, tally, known)
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
            self._store_usage(session, self.connector.usage())
            self._login_works(session)

    def _refresh(
        self,
        crm_stages: Sequence[CrmStage],
        stage_keys: dict[str, str],
        crm_owners: Sequence[CrmOwner],
        tally: _Tally,
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
            known = self._known(session, deals)
            new_ids = [
                deal.id
                for deal in deals
                if deal.id not in known.links and deal.id not in known.imported
            ]
        if not new_ids:
            return {}
        history: dict[str, list[CrmFieldChange]] = {}
        for change in self._call(lambda: list(self.connector.field_history(new_ids))):
            history.setdefault(change.deal_id, []).append(change)
        return history

    def _known(self, session: Any, deals: Sequence[CrmDeal]) -> _Known:
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
        return _Known(
            links=links,
            imported=imported,
            deals=repository.deals_by_ids(link.deal_id for link in links.values()),
            pushes=repository.unsent_pushes_for(deal_ids),
        )

    def _apply(
        self, session: Any, remote: CrmDeal, context: _PullContext, tally: _Tally, known: _Known
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
        before_tracked = _tracked(deal)
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
            local_value = _local_value(deal, name)
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
                    deal_name=_deal_name(deal),
                    field=name,
                    kept=_readable(remote_value if crm_wins else local_value),
                    lost=_readable(local_value if crm_wins else remote_value),
                    kept_from=self.label if crm_wins else "Slack",
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
        wrote = self._apply_contacts(deal, remote) or wrote
        if new_synced != synced:
            repository.set_synced(link, new_synced)
            wrote = True
        if remote.stage in context.stages and link.crm_stage != remote.stage:
            link.crm_stage = remote.stage
            wrote = True
        if not wrote:
            return "unchanged"
        link.remote_modified_at = remote.modified_at
        self._record_tracked(session, deal, before_tracked, by=owner, at=remote.modified_at)
        deal.updated_at = self.clock.now()
        return "written"

    def _create_local(
        self,
        session: Any,
        remote: CrmDeal,
        values: dict[str, str | None],
        owner: str,
        context: _PullContext,
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
            close_date=remote.close_date,
            forecast_category=forecast if forecast in FORECAST_CATEGORIES else "pipeline",
            status=status,
            created_by=owner,
            created_at=at,
            updated_at=self.clock.now(),
            last_touch_at=remote.modified_at,
            closed_at=remote.modified_at if status != "open" else None,
        )
        session.add(deal)
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
        for name, value in _tracked(deal).items():
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

    @staticmethod
    def _history_value(
        name: str, value: str | None, deal: Deal, context: _PullContext
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
        context: _PullContext,
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
        elif name == "next_step":
            self._set_next_step(session, deal, remote, context, synced)

    def _set_next_step(
        self,
        session: Any,
        deal: Deal,
        remote: CrmDeal,
        context: _PullContext,
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
        current = _current_open_step(deal)
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
        after = _tracked(deal)
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


# --- values the engine passes between its sessions ------------------------------------------


@dataclass
class _Known:
    """What one session's batch found in the database for its CRM deals (filled as it goes)."""

    links: dict[str, CrmLink]  # CRM id -> link
    imported: dict[str, Deal]  # CRM id -> an unlinked deal imported from that record
    deals: dict[int, Deal]  # deal id -> linked deal
    pushes: dict[int, list[CrmPush]]  # deal id -> unsent pushes


@dataclass(frozen=True)
class _PushRow:
    id: int
    kind: str
    field: str | None
    value: object
    made_by: str
    made_at: dt.datetime
    attempts: int

    @classmethod
    def of(cls, push: CrmPush) -> _PushRow:
        return cls(
            id=push.id,
            kind=push.kind,
            field=push.field,
            value=json.loads(push.value) if push.value is not None else None,
            made_by=push.made_by,
            made_at=push.made_at,
            attempts=push.attempts,
        )


@dataclass(frozen=True)
class _DealSnapshot:
    """The deal as a push reads it, taken in the claiming session."""

    deal_id: int
    name: str
    crm_id: str | None
    crm_stage: str | None
    values: dict[str, str | None]
    synced: dict[str, str]
    step_what: str | None

    @classmethod
    def of(cls, deal: Deal, link: CrmLink | None, synced: dict[str, str]) -> _DealSnapshot:
        step = _current_open_step(deal)
        return cls(
            deal_id=deal.id,
            name=_deal_name(deal),
            crm_id=link.crm_id if link else None,
            crm_stage=link.crm_stage if link else None,
            values={name: _local_value(deal, name) for name in _LOCAL_FIELDS},
            synced=synced,
            step_what=step.what if step else None,
        )

    def linked(self, crm_id: str) -> _DealSnapshot:
        return _DealSnapshot(
            deal_id=self.deal_id,
            name=self.name,
            crm_id=crm_id,
            crm_stage=self.crm_stage,
            values=self.values,
            synced=self.synced,
            step_what=self.step_what,
        )


def next_step_of_snapshot(snapshot: _DealSnapshot) -> str | None:
    """Return the NextStep text a created CRM record carries: the current step's what."""
    return snapshot.step_what


_LOCAL_FIELDS = (
    "title",
    "account",
    "amount",
    "currency",
    "close_date",
    "stage",
    "forecast_category",
    "owner",
)


def _local_value(deal: Deal, name: str) -> str | None:
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
        step = _current_open_step(deal)
        if step is None:
            return None
        return f"{step.what}\x1f{step.due_date.isoformat() if step.due_date else ''}"
    return None


def _current_open_step(deal: Deal) -> NextStep | None:
    open_steps = [step for step in deal.next_steps if not step.done]
    if not open_steps:
        return None
    return min(
        open_steps,
        key=lambda s: (s.due_date is None, s.due_date or dt.date.max, s.id or 0),
    )


def _tracked(deal: Deal) -> dict[str, str | None]:
    """Return the fields whose every change history keeps, as `DealService` writes them."""
    return {
        "stage": deal.stage,
        "amount": None if deal.amount is None else f"{deal.amount:.2f} {deal.currency}",
        "close_date": deal.close_date.isoformat() if deal.close_date else None,
        "forecast_category": deal.forecast_category,
        "status": deal.status,
    }


def _readable(value: str | None) -> str | None:
    return None if value is None else value.replace("\x1f", " · ").strip(" ·")


def _history_text(value: str | None) -> str | None:
    readable = _readable(value)
    return None if readable is None else readable[:HISTORY_TEXT_MAX]


def _id(crm_id: str | None) -> str:
    """Return the CRM id a call needs; only a linked (or just created) deal gets this far."""
    if crm_id is None:
        raise CrmRefused("This deal is not in the CRM yet.")
    return crm_id


def _deal_name(deal: Deal) -> str:
    return f"{deal.account} — {deal.title}" if deal.title else deal.account


def _share(used: int | None, limit: int | None) -> float | None:
    if used is None or not limit:
        return None
    return used / limit


class _ReadOnlyConnector:
    """A dry run's connector: reads go to the CRM, writes are counted and not made."""

    def __init__(self, inner: CrmConnector) -> None:
        self.inner = inner
        self.kind = inner.kind
        self._made = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_deal(self, fields: DealFields) -> str:
        self._made += 1
        return f"dry-run-{self._made}"

    def update_deal(self, deal_id: str, fields: DealFields) -> None:
        return None

    def create_task(self, deal_id: str, task: NewTask) -> str:
        self._made += 1
        return f"dry-run-task-{self._made}"

    def complete_task(self, task_id: str) -> None:
        return None


class _SilentNotices:
    """A dry run tells nobody anything."""

    def conflict(self, notice: ConflictNotice) -> None:
        return None

    def refused(self, notice: RefusalNotice) -> None:
        return None

    def owners_without_slack_user(self, admins: tuple[str, ...], emails: tuple[str, ...]) -> None:
        return None

    def login_refused(self, admins: tuple[str, ...], message: str) -> None:
        return None
