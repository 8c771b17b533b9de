"""The push side of the sync engine: write what changed in Slack to the CRM.

Pushes wait in the CRM outbox (`crm_pushes`). A pass claims the due rows for a lease, groups
them by deal, makes each deal's connector calls in order (a create, one update with the latest
value per field, then tasks) and records each row sent, refused or to retry later.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from crm._values import Caller, Tally, current_open_step, deal_name, local_text
from crm.connector import CrmConnector
from crm.mapping import crm_stage_for, push_fields, retry_delay
from crm.notices import CrmNotices, RefusalNotice
from crm.pull import CrmPuller
from crm.records import (
    CRM_LABELS,
    CrmAuthFailed,
    CrmError,
    CrmRateLimited,
    CrmRefused,
    CrmUnavailable,
    DealFields,
    NewTask,
)
from domain.clock import Clock
from domain.stages import Stage
from storage.crm import CrmRepository
from storage.database import Database
from storage.leases import renewing
from storage.models import CrmLink, CrmPush, CrmStageLink, Deal

# How long a claimed push is ours; a process that dies mid-call frees it after this.
PUSH_LEASE = dt.timedelta(seconds=45)

# The engine's log, under the name it had before the push side had a module of its own.
logger = logging.getLogger("crm.sync")


@dataclass(frozen=True, kw_only=True)
class CrmPusher:
    """Push one CRM's outbox. Each method opens its own sessions.

    `CrmSync` builds one per run; `call` and `login_works` are its login bookkeeping, and
    `pull` reads the CRM's current version of a deal before a push would overwrite it.
    """

    database: Database
    connector: CrmConnector
    notices: CrmNotices
    clock: Clock
    stages: tuple[Stage, ...]
    owner: str
    lease: dt.timedelta
    renews_leases: bool
    pull: CrmPuller
    call: Caller
    login_works: Callable[[Any], None]

    @property
    def kind(self) -> str:
        return str(self.connector.kind)

    def push(self, tally: Tally) -> None:
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
                self.login_works(session)

    def _read_before_push(self, deal_ids: list[int], tally: Tally) -> None:
        """Apply the CRM's current version of these linked deals (conflicts included)."""
        with self.database.session() as session:
            repository = CrmRepository(session)
            links = repository.links_for(deal_ids)
            context = self.pull.stored_context(session)
        if not links or context is None:
            return
        try:
            remote = self.call(
                lambda: self.connector.deals([link.crm_id for link in links.values()])
            )
        except CrmUnavailable:
            return  # the pushes will meet the same outage and back off
        with self.database.session() as session:
            known = self.pull.known(session, remote)
            for deal in remote:
                if self.pull.apply(session, deal, context, tally, known) == "written":
                    tally.pulled += 1

    def _push_deal(self, deal_id: int, push_ids: list[int], tally: Tally) -> bool:
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
            # A deal in a team stage taken from this CRM names its CRM stage exactly (two of
            # the CRM's may stand for one dealbot stage): that is the one to write.
            team_stage = self.pull.stage_book.counting(deal.team_stage, deal.stage)
            snapshot = _DealSnapshot.of(
                deal,
                link,
                repository.synced_of(link) if link else {},
                crm_stage=team_stage.crm_stage if team_stage is not None else None,
            )
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
        tally: Tally,
    ) -> bool:
        """Make one deal's calls in order; return False when the pass should stop."""
        for index, (step_rows, call) in enumerate(steps):
            try:
                result = self.call(lambda call=call, crm_id=snapshot.crm_id: call(crm_id))  # type: ignore[misc]
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
        if not self.renews_leases:
            yield
            return

        def renew() -> None:
            with self.database.session() as session:
                CrmRepository(session).renew_leases(
                    push_ids, owner=self.owner, lease_until=self.clock.now() + self.lease
                )

        with renewing(every=self.lease.total_seconds() / 3, renew=renew, name="dealbot-crm-lease"):
            yield

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
            new_owner = latest.get("owner")
            if new_owner is not None and new_owner not in owners:
                # Never a guess: the CRM keeps its owner, and the rep is told why.
                del latest["owner"]
                handover = [row for row in updates if row.field == "owner"]
                updates = [row for row in updates if row.field != "owner"]
                steps.append((handover, lambda _: _no_crm_user(self.kind)))
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
        self, rows: list[_PushRow], snapshot: _DealSnapshot, result: object, tally: Tally
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
                        current=snapshot.team_crm_stage or link.crm_stage,
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
            self.login_works(session)
        tally.pushed += len(rows)

    def _refused(
        self, rows: list[_PushRow], snapshot: _DealSnapshot, error: CrmRefused, tally: Tally
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
    # The CRM stage the deal's team stage names (a team with the CRM's stages), if any.
    team_crm_stage: str | None = None

    @classmethod
    def of(
        cls,
        deal: Deal,
        link: CrmLink | None,
        synced: dict[str, str],
        *,
        crm_stage: str | None = None,
    ) -> _DealSnapshot:
        """`crm_stage`: the CRM stage the deal's team stage names, if it names one; it is
        kept over the link's when both stand for the dealbot stage pushed."""
        step = current_open_step(deal)
        return cls(
            deal_id=deal.id,
            name=deal_name(deal),
            crm_id=link.crm_id if link else None,
            crm_stage=crm_stage or (link.crm_stage if link else None),
            values={name: local_text(deal, name) for name in _LOCAL_FIELDS},
            synced=synced,
            step_what=step.what if step else None,
            team_crm_stage=crm_stage,
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
            team_crm_stage=self.team_crm_stage,
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


def _id(crm_id: str | None) -> str:
    """Return the CRM id a call needs; only a linked (or just created) deal gets this far."""
    if crm_id is None:
        raise CrmRefused("This deal is not in the CRM yet.")
    return crm_id


def _no_crm_user(kind: str) -> None:
    """Refuse an owner change to someone the CRM has no user for (matched by email)."""
    label = CRM_LABELS.get(kind, kind)
    raise CrmRefused(
        f"{label} has no active user with the new owner's email, so the deal's owner in "
        f"{label} stays as it was. Give them a {label} user with the same email as in Slack.",
        code="NO_CRM_USER",
        fields=("owner",),
    )
