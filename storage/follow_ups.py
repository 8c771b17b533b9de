"""SQL behind follow-up drafts: triggers (once each), Gmail grants, OAuth connect states."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from storage.database import insert_ignoring_conflicts
from storage.models import Deal, DealChange, FollowUpTrigger, GmailGrant, GoogleOAuthState, NextStep

_TRIGGERS = FollowUpTrigger.__table__


def _could_be_issued(state: str) -> bool:
    """Return whether `state` could name a stored row; it comes from anyone's query string.

    PostgreSQL refuses a NUL byte in a text parameter (DataError, so a 500 page) where
    SQLite just finds nothing; no state we issue (URL-safe base64) contains one.
    """
    return "\x00" not in state


@dataclass(frozen=True)
class StageChangeEvent:
    change_id: int
    deal_id: int
    owner_id: str
    stage: str


@dataclass(frozen=True)
class NextStepEvent:
    step_id: int
    deal_id: int
    owner_id: str
    what: str


@dataclass(frozen=True)
class ThreadSoFar:
    """The earlier drafts of a deal to one recipient: what a new one replies to."""

    message_ids: tuple[str, ...]
    thread_id: str | None


@dataclass(frozen=True)
class SameDraft:
    """What stands in the way of a trigger's draft: a draft like it, or one being made."""

    drafted: FollowUpTrigger | None
    under_way: bool


class FollowUpRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- finding events -------------------------------------------------------------------

    def stage_changes_since(self, since: dt.datetime) -> Sequence[StageChangeEvent]:
        """Return moves of open deals from one stage to another since `since`."""
        rows = self.session.execute(
            select(DealChange.id, Deal.id, Deal.owner_id, DealChange.new_value)
            .join(Deal, Deal.id == DealChange.deal_id)
            .where(
                DealChange.field == "stage",
                DealChange.old_value.is_not(None),
                DealChange.new_value.is_not(None),
                DealChange.changed_at >= since,
                Deal.status == "open",
                Deal.is_live(),
                # A deal that has moved on since then does not need the old stage's email.
                Deal.stage == DealChange.new_value,
            )
            .order_by(DealChange.id)
        )
        return [StageChangeEvent(c, d, o, str(s)) for c, d, o, s in rows]

    def next_steps_past(
        self, *, done_since: dt.datetime, due_since: dt.date, today: dt.date
    ) -> Sequence[NextStepEvent]:
        """Return next steps of open deals done since `done_since`, or due in [due_since, today)."""
        rows = self.session.execute(
            select(NextStep.id, Deal.id, Deal.owner_id, NextStep.what)
            .join(Deal, Deal.id == NextStep.deal_id)
            .where(
                Deal.status == "open",
                Deal.is_live(),
                or_(
                    (NextStep.done.is_(True)) & (NextStep.done_at >= done_since),
                    (NextStep.done.is_(False))
                    & (NextStep.due_date >= due_since)
                    & (NextStep.due_date < today),
                ),
            )
            .order_by(NextStep.id)
        )
        return [NextStepEvent(s, d, o, w) for s, d, o, w in rows]

    def quiet_deals(
        self, *, untouched_since: dt.datetime
    ) -> Sequence[tuple[int, str, dt.datetime]]:
        """Return (deal id, owner, last touch) of open deals untouched since then.

        A touch is any change, next step or logged activity (Deal.last_touch_at).
        """
        rows = self.session.execute(
            select(Deal.id, Deal.owner_id, Deal.last_touch_at)
            .where(Deal.status == "open", Deal.is_live(), Deal.last_touch_at < untouched_since)
            .order_by(Deal.id)
        )
        return [(deal_id, owner, touched) for deal_id, owner, touched in rows]

    # --- triggers -------------------------------------------------------------------------

    def add_trigger(
        self,
        *,
        source_key: str,
        kind: str,
        deal_id: int,
        rep_id: str,
        template: str,
        detail: str | None,
        at: dt.datetime,
    ) -> bool:
        """Record a trigger unless its source_key is known; return whether it was new."""
        statement = insert_ignoring_conflicts(self.session, _TRIGGERS, ["source_key"]).values(
            source_key=source_key,
            kind=kind,
            deal_id=deal_id,
            rep_id=rep_id,
            template=template,
            detail=detail,
            status="pending",
            attempts=0,
            created_at=at,
        )
        return bool(self.session.execute(statement).rowcount)

    def by_key(self, source_key: str) -> FollowUpTrigger | None:
        return self.session.scalars(
            select(FollowUpTrigger).where(FollowUpTrigger.source_key == source_key)
        ).first()

    def get(self, trigger_id: int) -> FollowUpTrigger | None:
        return self.session.get(FollowUpTrigger, trigger_id)

    def pending_ids(self) -> list[int]:
        return list(
            self.session.scalars(
                select(FollowUpTrigger.id)
                .where(FollowUpTrigger.status == "pending")
                .order_by(FollowUpTrigger.id)
            )
        )

    def claim(self, trigger_id: int, *, now: dt.datetime, lease: dt.timedelta) -> bool:
        """Take a pending trigger for `lease` and count the attempt; False if someone has it.

        The attempt is counted (and committed by the caller) before Gmail is asked, so a
        crash after Google accepted a draft leaves attempts > 0 and the retry looks first.
        """
        result = self.session.execute(
            update(FollowUpTrigger)
            .where(
                FollowUpTrigger.id == trigger_id,
                FollowUpTrigger.status == "pending",
                or_(
                    FollowUpTrigger.claimed_until.is_(None),
                    FollowUpTrigger.claimed_until < now,
                ),
            )
            .values(claimed_until=now + lease, attempts=FollowUpTrigger.attempts + 1)
        )
        return bool(result.rowcount)

    def thread_so_far(
        self, deal_id: int, recipient: str, *, rep_id: str, before: int
    ) -> ThreadSoFar:
        """Return the earlier drafts of this deal to `recipient` in one rep's mailbox, by age."""
        rows = self.session.execute(
            select(FollowUpTrigger.message_id, FollowUpTrigger.thread_id)
            .where(
                FollowUpTrigger.deal_id == deal_id,
                FollowUpTrigger.recipient == recipient,
                FollowUpTrigger.rep_id == rep_id,
                FollowUpTrigger.status == "drafted",
                FollowUpTrigger.id != before,
            )
            .order_by(FollowUpTrigger.drafted_at, FollowUpTrigger.id)
        ).all()
        ids = tuple(message_id for message_id, _ in rows if message_id)[-10:]
        thread_id = next((t for _, t in reversed(rows) if t), None)
        return ThreadSoFar(message_ids=ids, thread_id=thread_id)

    def fresh_draft(
        self,
        *,
        deal_id: int,
        template: str,
        recipient: str,
        since: dt.datetime,
    ) -> FollowUpTrigger | None:
        """Return the latest draft of `template` for this deal to `recipient` since `since`.

        `recipient` is casefolded, as drafts store it. A draft from any rep's mailbox counts:
        the buyer would read both.
        """
        return self.session.scalars(
            select(FollowUpTrigger)
            .where(
                FollowUpTrigger.deal_id == deal_id,
                FollowUpTrigger.template == template,
                FollowUpTrigger.recipient == recipient,
                FollowUpTrigger.status == "drafted",
                FollowUpTrigger.drafted_at >= since,
            )
            .order_by(FollowUpTrigger.drafted_at.desc(), FollowUpTrigger.id.desc())
            .limit(1)
        ).first()

    def reserve_recipient(
        self,
        trigger_id: int,
        *,
        deal_id: int,
        template: str,
        recipient: str,
        since: dt.datetime,
        now: dt.datetime,
    ) -> SameDraft:
        """Name the claimed trigger's recipient; return what else stands for its draft.

        Two workers drafting the same template for one deal take turns here: the write comes
        first (SQLite then holds its one writer lock until commit, with no stale snapshot to
        upgrade), then the deal's row is locked (PostgreSQL), then siblings are looked for.
        The second finds the first's recipient on a live claim, or its draft, and makes none.
        """
        self.session.execute(
            update(FollowUpTrigger)
            .where(FollowUpTrigger.id == trigger_id)
            .values(recipient=recipient)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(select(Deal.id).where(Deal.id == deal_id).with_for_update())
        done = self.fresh_draft(
            deal_id=deal_id, template=template, recipient=recipient, since=since
        )
        if done is not None:
            return SameDraft(drafted=done, under_way=False)
        under_way = self.session.scalar(
            select(func.count())
            .select_from(FollowUpTrigger)
            .where(
                FollowUpTrigger.deal_id == deal_id,
                FollowUpTrigger.template == template,
                FollowUpTrigger.recipient == recipient,
                FollowUpTrigger.status == "pending",
                FollowUpTrigger.claimed_until > now,
                FollowUpTrigger.id != trigger_id,
            )
        )
        return SameDraft(drafted=None, under_way=bool(under_way))

    def drafted_since(self, since: dt.datetime) -> Sequence[FollowUpTrigger]:
        return self.session.scalars(
            select(FollowUpTrigger)
            .where(FollowUpTrigger.status == "drafted", FollowUpTrigger.drafted_at >= since)
            .order_by(FollowUpTrigger.id)
        ).all()

    def deal_titles(self, deal_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
        """Return (account, title) of each deal by id, in one query; deleted deals are absent."""
        wanted = set(deal_ids)
        if not wanted:
            return {}
        rows = self.session.execute(
            select(Deal.id, Deal.account, Deal.title).where(Deal.id.in_(wanted), Deal.is_live())
        )
        return {deal_id: (account, title) for deal_id, account, title in rows}

    # --- Gmail grants ---------------------------------------------------------------------

    def grant_for(self, user_id: str) -> GmailGrant | None:
        return self.session.scalars(select(GmailGrant).where(GmailGrant.user_id == user_id)).first()

    def put_grant(
        self,
        *,
        user_id: str,
        email: str | None,
        refresh_token_encrypted: str,
        scopes: str,
        at: dt.datetime,
    ) -> None:
        grant = self.grant_for(user_id)
        if grant is None:
            grant = GmailGrant(user_id=user_id, created_at=at)
            self.session.add(grant)
        grant.email = email
        grant.refresh_token_encrypted = refresh_token_encrypted
        grant.scopes = scopes
        grant.updated_at = at
        self.session.flush()

    def remove_grant(self, user_id: str) -> bool:
        result = self.session.execute(delete(GmailGrant).where(GmailGrant.user_id == user_id))
        return bool(result.rowcount)

    def all_grants(self) -> Sequence[GmailGrant]:
        return self.session.scalars(select(GmailGrant).order_by(GmailGrant.id)).all()

    # --- OAuth connect states -------------------------------------------------------------

    def issue_state(
        self, *, state: str, user_id: str, expires_at: dt.datetime, at: dt.datetime
    ) -> None:
        self.session.add(
            GoogleOAuthState(state=state, user_id=user_id, expires_at=expires_at, created_at=at)
        )
        self.session.flush()

    def begin_state(
        self, state: str, *, verifier_encrypted: str, now: dt.datetime, expires_at: dt.datetime
    ) -> str | None:
        """Attach a PKCE verifier to a live, never-opened state; return its user id, else None.

        One UPDATE whose row count decides: a link opens once, so a second open (a leaked
        link raced against the rep) cannot replace the verifier of the flow under way.
        """
        if not _could_be_issued(state):
            return None
        row = GoogleOAuthState
        opened = self.session.execute(
            update(row)
            .where(
                row.state == state,
                row.code_verifier_encrypted.is_(None),
                row.expires_at > now,
            )
            .values(
                code_verifier_encrypted=verifier_encrypted,
                expires_at=case((row.expires_at < expires_at, row.expires_at), else_=expires_at),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if not opened:
            return None
        return self.session.scalars(select(row.user_id).where(row.state == state)).one()

    def state_was_opened(self, state: str) -> bool:
        """Return whether this connect link exists and was opened already."""
        if not _could_be_issued(state):
            return False
        opened = self.session.scalar(
            select(GoogleOAuthState.code_verifier_encrypted).where(GoogleOAuthState.state == state)
        )
        return opened is not None

    def consume_state(self, state: str, *, now: dt.datetime) -> tuple[str, str] | None:
        """Delete a started, live state; return (user id, encrypted verifier) once, else None.

        The DELETE's row count decides, so two callbacks with the same state (a replay, or
        two instances) cannot both go on to exchange the code.
        """
        if not _could_be_issued(state):
            return None
        row = self.session.get(GoogleOAuthState, state)
        if row is None:
            return None
        user_id, verifier, expires_at = row.user_id, row.code_verifier_encrypted, row.expires_at
        self.session.expunge(row)
        deleted = self.session.execute(
            delete(GoogleOAuthState).where(GoogleOAuthState.state == state)
        ).rowcount
        if not deleted or verifier is None or expires_at <= now:
            return None
        return user_id, verifier

    def purge_states(self, *, now: dt.datetime) -> int:
        result = self.session.execute(
            delete(GoogleOAuthState).where(GoogleOAuthState.expires_at <= now)
        )
        return result.rowcount or 0
