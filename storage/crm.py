"""CRM sync storage: deal links, the CRM push outbox, the pull's state, owners and stages.

The push outbox follows `storage.outbox`: rows are keyed (enqueueing twice is a no-op),
claimed with an owner and a lease before they are sent, retried after a backoff, and a row
marked "sent" is never claimed again. Repositories take and return plain values or rows;
the rules live in `crm.sync`, and `domain.deals` only enqueues.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from storage.database import insert_ignoring_conflicts
from storage.models import CrmLink, CrmOwnerLink, CrmPush, CrmStageLink, CrmState, Deal

_PUSHES = CrmPush.__table__

# A push that has not reached the CRM: the deal card says "not in <CRM> yet" for its field.
UNSENT = ("pending", "sending", "refused")
# The field name `not_in_crm` reports for a deal whose creation has not reached the CRM.
WHOLE_DEAL = "deal"


@dataclass(frozen=True)
class PushToMake:
    """One change made in dealbot, to be written to the CRM."""

    deal_id: int
    kind: str  # update | create | task | task_done
    field: str | None
    value: object  # JSON-able
    key: str
    made_by: str
    made_at: dt.datetime


def push_field_names(kind: str, field: str | None) -> tuple[str, ...]:
    """Return the dealbot field names an unsent push of this kind holds back."""
    if kind == "create":
        return (WHOLE_DEAL,)
    if kind in ("task", "task_done"):
        return ("next_step",)
    return (field,) if field else ()


class CrmRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- links ----------------------------------------------------------------------------

    def link_of(self, deal_id: int) -> CrmLink | None:
        return self.session.get(CrmLink, deal_id)

    def link_by_crm_id(self, kind: str, crm_id: str) -> CrmLink | None:
        return self.session.scalars(
            select(CrmLink).where(CrmLink.kind == kind, CrmLink.crm_id == crm_id)
        ).first()

    def add_link(
        self,
        *,
        deal_id: int,
        kind: str,
        crm_id: str,
        url: str | None,
        synced: dict[str, str],
        flush: bool = True,
    ) -> CrmLink:
        link = CrmLink(
            deal_id=deal_id, kind=kind, crm_id=crm_id, url=url, synced=json.dumps(synced)
        )
        self.session.add(link)
        if flush:
            self.session.flush()
        return link

    def links_by_crm_ids(self, kind: str, crm_ids: Iterable[str]) -> dict[str, CrmLink]:
        """Return the links of these CRM records, by CRM id, in one query."""
        ids = list(crm_ids)
        if not ids:
            return {}
        rows = self.session.scalars(
            select(CrmLink).where(CrmLink.kind == kind, CrmLink.crm_id.in_(ids))
        )
        return {link.crm_id: link for link in rows}

    def deals_by_ids(self, deal_ids: Iterable[int]) -> dict[int, Deal]:
        ids = list(deal_ids)
        if not ids:
            return {}
        return {
            deal.id: deal for deal in self.session.scalars(select(Deal).where(Deal.id.in_(ids)))
        }

    def deals_by_external_refs(self, refs: Iterable[str]) -> dict[str, Deal]:
        """Return the deals imported from these source records ("salesforce:<id>"), by ref."""
        wanted = list(refs)
        if not wanted:
            return {}
        rows = self.session.scalars(select(Deal).where(Deal.external_ref.in_(wanted)))
        return {deal.external_ref: deal for deal in rows if deal.external_ref}

    def unsent_pushes_for(self, deal_ids: Iterable[int]) -> dict[int, list[CrmPush]]:
        """Return these deals' pushes not yet in the CRM, by deal id, in one query."""
        ids = list(deal_ids)
        if not ids:
            return {}
        rows = self.session.scalars(
            select(CrmPush)
            .where(CrmPush.deal_id.in_(ids), CrmPush.status.in_(UNSENT))
            .order_by(CrmPush.id)
        )
        found: dict[int, list[CrmPush]] = {}
        for push in rows:
            found.setdefault(push.deal_id, []).append(push)
        return found

    def links_for(self, deal_ids: Iterable[int]) -> dict[int, CrmLink]:
        """Return the links of these deals, by deal id, in one query."""
        ids = list(deal_ids)
        if not ids:
            return {}
        rows = self.session.scalars(select(CrmLink).where(CrmLink.deal_id.in_(ids)))
        return {link.deal_id: link for link in rows}

    @staticmethod
    def synced_of(link: CrmLink) -> dict[str, str]:
        return dict(json.loads(link.synced or "{}"))

    @staticmethod
    def set_synced(link: CrmLink, synced: dict[str, str]) -> None:
        link.synced = json.dumps(synced, sort_keys=True)

    # --- the push outbox: enqueue and read ------------------------------------------------

    def enqueue(self, push: PushToMake) -> bool:
        """Record a push unless one with its key exists; return whether it was recorded."""
        statement = insert_ignoring_conflicts(self.session, _PUSHES, ["key"]).values(
            deal_id=push.deal_id,
            kind=push.kind,
            field=push.field,
            value=json.dumps(push.value),
            key=push.key,
            made_by=push.made_by,
            made_at=push.made_at,
            status="pending",
            attempts=0,
        )
        # RETURNING, not rowcount: the one answer both drivers give exactly for ON CONFLICT.
        return self.session.execute(statement.returning(_PUSHES.c.id)).scalar() is not None

    def not_in_crm(self, deal_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
        """Return, per deal, the fields with a push pending or refused, in one query."""
        ids = list(deal_ids)
        if not ids:
            return {}
        rows = self.session.execute(
            select(CrmPush.deal_id, CrmPush.kind, CrmPush.field)
            .where(CrmPush.deal_id.in_(ids), CrmPush.status.in_(UNSENT))
            .order_by(CrmPush.id)
        )
        fields: dict[int, list[str]] = {}
        for deal_id, kind, field in rows:
            names = fields.setdefault(deal_id, [])
            for name in push_field_names(kind, field):
                if name not in names:
                    names.append(name)
        return {deal_id: tuple(names) for deal_id, names in fields.items()}

    def pushes_of(self, deal_id: int, *, statuses: Sequence[str] = UNSENT) -> list[CrmPush]:
        return list(
            self.session.scalars(
                select(CrmPush)
                .where(CrmPush.deal_id == deal_id, CrmPush.status.in_(statuses))
                .order_by(CrmPush.id)
            )
        )

    def push_by_key(self, key: str) -> CrmPush | None:
        return self.session.scalars(select(CrmPush).where(CrmPush.key == key)).first()

    def all_pushes(self) -> list[CrmPush]:
        return list(self.session.scalars(select(CrmPush).order_by(CrmPush.id)))

    def count_pushes(self, statuses: Sequence[str]) -> int:
        return self.session.scalar(select(func.count()).where(CrmPush.status.in_(statuses))) or 0

    # --- the push outbox: claim and record the answer -------------------------------------

    def release_lapsed_claims(self, *, now: dt.datetime) -> int:
        """Hand "sending" rows whose lease ran out back to "pending"; return how many."""
        result = self.session.execute(
            update(CrmPush)
            .where(
                CrmPush.status == "sending",
                or_(CrmPush.lease_until.is_(None), CrmPush.lease_until < now),
            )
            .values(status="pending", claimed_by=None, lease_until=None)
        )
        return result.rowcount or 0

    def due_pushes(self, *, now: dt.datetime) -> list[tuple[int, int]]:
        """Return (push id, deal id) of pending rows due by `now`, oldest first."""
        rows = self.session.execute(
            select(CrmPush.id, CrmPush.deal_id)
            .where(
                CrmPush.status == "pending",
                or_(CrmPush.next_attempt_at.is_(None), CrmPush.next_attempt_at <= now),
            )
            .order_by(CrmPush.id)
        )
        return [(push_id, deal_id) for push_id, deal_id in rows]

    def claim(self, push_id: int, *, owner: str, lease_until: dt.datetime) -> CrmPush | None:
        """Return the row, now "sending" under `owner`'s lease, or None when another has it.

        As in `OutboxRepository.claim`: FOR UPDATE SKIP LOCKED on PostgreSQL, and on SQLite
        the conditional UPDATE's rowcount decides (SQLite serializes writers).
        """
        if self.session.get_bind().dialect.name == "postgresql":
            locked = self.session.scalar(
                select(CrmPush.id)
                .where(CrmPush.id == push_id, CrmPush.status == "pending")
                .with_for_update(skip_locked=True)
            )
            if locked is None:
                return None
        result = self.session.execute(
            update(CrmPush)
            .where(CrmPush.id == push_id, CrmPush.status == "pending")
            .values(
                status="sending",
                claimed_by=owner,
                lease_until=lease_until,
                attempts=CrmPush.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return None
        push = self.session.get(CrmPush, push_id)
        if push is not None:
            self.session.refresh(push)
        return push

    def renew_leases(self, push_ids: Iterable[int], *, owner: str, lease_until: dt.datetime) -> int:
        """Extend `owner`'s leases on these rows while it still holds them; return how many."""
        ids = list(push_ids)
        if not ids:
            return 0
        result = self.session.execute(
            update(CrmPush)
            .where(CrmPush.id.in_(ids), CrmPush.claimed_by == owner, CrmPush.status == "sending")
            .values(lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0

    def mark(
        self,
        push_ids: Iterable[int],
        status: str,
        *,
        error: str | None = None,
        crm_result: str | None = None,
        next_attempt_at: dt.datetime | None = None,
        owner: str | None = None,
    ) -> int:
        """Set these rows' status (and the CRM's answer); with `owner`, only rows it holds."""
        ids = list(push_ids)
        if not ids:
            return 0
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "next_attempt_at": next_attempt_at,
            "claimed_by": None,
            "lease_until": None,
        }
        if crm_result is not None:
            values["crm_result"] = crm_result
        condition = CrmPush.id.in_(ids)
        if owner is not None:
            condition = and_(condition, CrmPush.claimed_by == owner)
        result = self.session.execute(
            update(CrmPush)
            .where(condition)
            .values(**values)
            .execution_options(synchronize_session="fetch")
        )
        return result.rowcount or 0

    def supersede(self, deal_id: int, field: str, *, statuses: Sequence[str]) -> int:
        """Mark this deal's unsent updates of `field` superseded (a CRM change won)."""
        result = self.session.execute(
            update(CrmPush)
            .where(
                CrmPush.deal_id == deal_id,
                CrmPush.kind == "update",
                CrmPush.field == field,
                CrmPush.status.in_(statuses),
            )
            .values(status="superseded", claimed_by=None, lease_until=None)
            .execution_options(synchronize_session="fetch")
        )
        return result.rowcount or 0

    # --- state ----------------------------------------------------------------------------

    def state(self, kind: str) -> CrmState:
        """Return the state row of this CRM, created empty the first time."""
        state = self.session.get(CrmState, kind)
        if state is None:
            self.session.execute(
                insert_ignoring_conflicts(self.session, CrmState.__table__, ["kind"]).values(
                    kind=kind
                )
            )
            state = self.session.get(CrmState, kind)
        assert state is not None
        return state

    def peek_state(self, kind: str) -> CrmState | None:
        return self.session.get(CrmState, kind)

    # --- owners ---------------------------------------------------------------------------

    def owners(self, kind: str) -> dict[str, CrmOwnerLink]:
        rows = self.session.scalars(select(CrmOwnerLink).where(CrmOwnerLink.kind == kind))
        return {row.crm_owner_id: row for row in rows}

    def put_owner(
        self,
        kind: str,
        crm_owner_id: str,
        *,
        email: str | None,
        name: str | None,
        slack_user_id: str | None,
    ) -> CrmOwnerLink:
        row = self.session.get(CrmOwnerLink, (kind, crm_owner_id))
        if row is None:
            row = CrmOwnerLink(kind=kind, crm_owner_id=crm_owner_id)
            self.session.add(row)
        row.email = email
        row.name = name
        row.slack_user_id = slack_user_id
        self.session.flush()
        return row

    def owners_without_slack_user(self, kind: str) -> tuple[str, ...]:
        rows = self.session.scalars(
            select(CrmOwnerLink)
            .where(CrmOwnerLink.kind == kind, CrmOwnerLink.slack_user_id.is_(None))
            .order_by(CrmOwnerLink.email, CrmOwnerLink.crm_owner_id)
        )
        return tuple(row.email or row.name or row.crm_owner_id for row in rows)

    # --- stages ---------------------------------------------------------------------------

    def open_deals_in_crm_stages(
        self, kind: str, owner_ids: Iterable[str]
    ) -> list[tuple[Deal, str]]:
        """Return the owners' open deals linked to this CRM, each with its CRM stage id."""
        statement = (
            select(Deal, CrmLink.crm_stage)
            .join(CrmLink, CrmLink.deal_id == Deal.id)
            .where(
                CrmLink.kind == kind,
                CrmLink.crm_stage.is_not(None),
                Deal.owner_id.in_(list(owner_ids)),
                Deal.status == "open",
                Deal.is_live(),
            )
            .order_by(Deal.id)
        )
        return [(deal, stage) for deal, stage in self.session.execute(statement)]

    def stages(self, kind: str) -> list[CrmStageLink]:
        return list(
            self.session.scalars(
                select(CrmStageLink)
                .where(CrmStageLink.kind == kind)
                .order_by(CrmStageLink.sort_order, CrmStageLink.stage_id)
            )
        )

    def replace_stages(self, kind: str, stages: Sequence[CrmStageLink]) -> None:
        """Make these the CRM's stages, writing only when the definition changed."""
        current = {row.stage_id: row for row in self.stages(kind)}
        wanted = {row.stage_id: row for row in stages}
        for stage_id, row in current.items():
            if stage_id not in wanted:
                self.session.delete(row)
        columns = (
            "label",
            "probability",
            "sort_order",
            "is_closed",
            "is_won",
            "forecast_category",
            "pipeline",
            "dealbot_stage",
        )
        for stage_id, row in wanted.items():
            existing = current.get(stage_id)
            if existing is None:
                self.session.add(row)
                continue
            for column in columns:
                if getattr(existing, column) != getattr(row, column):
                    setattr(existing, column, getattr(row, column))
        self.session.flush()
