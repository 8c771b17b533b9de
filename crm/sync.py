"""The sync engine: pull what changed in the CRM, push what changed in Slack, once each.

A run pushes first (the CRM outbox, `crm_pushes`), then pulls since the stored cursor.
`crm_links.synced` holds the CRM's values as last seen: a pulled value that differs from it
is a change made in the CRM, which either applies locally or, when a local push of the same
field is waiting, is a conflict that the later change wins. Notices go out after the commit
that decided them, so a DM never announces something a rollback undid.

The engine is split by side: `crm.push` writes the outbox to the CRM, `crm.pull` applies what
the CRM changed, and `crm.notices` holds what it tells people. `CrmSync` here runs them and
keeps the login and usage bookkeeping; every name the engine had is still importable from here.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from crm._values import SLOW_SHARE, Tally, usage_share
from crm.connector import CrmConnector
from crm.notices import ConflictNotice, CrmNotices, RefusalNotice, SlackDirectory
from crm.pull import HISTORY_TEXT_MAX, SLOW_PULL_INTERVAL, UTC_ZONE, CrmPuller
from crm.push import PUSH_LEASE, CrmPusher, next_step_of_snapshot
from crm.records import CRM_LABELS, ApiUsage, CrmAuthFailed, CrmError, DealFields, NewTask
from domain.clock import Clock
from domain.stages import DEFAULT_STAGES, EMPTY_BOOK, Stage, StageBook
from storage.crm import CrmRepository
from storage.database import Database

# Every name the engine module had before the split stays importable from here.
__all__ = [
    "HISTORY_TEXT_MAX",
    "PUSH_LEASE",
    "SLOW_PULL_INTERVAL",
    "SLOW_SHARE",
    "ConflictNotice",
    "CrmNotices",
    "CrmStatus",
    "CrmSync",
    "RefusalNotice",
    "SlackDirectory",
    "SyncReport",
    "claim_owner",
    "next_step_of_snapshot",
]


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
    # Each CRM stage (label) and the dealbot stage it maps to, in pipeline order; empty
    # before the first pull.
    stages: tuple[tuple[str, str], ...] = ()


T = TypeVar("T")


def claim_owner() -> str:
    """Return a claim owner id for this process: host, pid and a nonce (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:120]


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
        default_timezone: ZoneInfo = UTC_ZONE,
        stage_book: StageBook = EMPTY_BOOK,
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
        # Teams' own stages: a pulled deal on a team whose stages are the CRM's takes the
        # team stage of its CRM stage.
        self.stage_book = stage_book
        self.owner = owner or claim_owner()
        self.lease = lease
        # The owner's "today" when no team gives a zone: the day a deal closed in the CRM.
        self.default_timezone = default_timezone
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
        tally = Tally()
        try:
            self._pusher().push(tally)
            self._puller().pull(tally, full=full)
        finally:
            self._tell(tally)
        return _report(tally)

    def push_pending(self) -> SyncReport:
        """Push only: the every-minute pass that gets Slack changes into the CRM."""
        tally = Tally()
        try:
            self._pusher().push(tally)
        finally:
            self._tell(tally)
        return _report(tally)

    def pull_deals(self, ids: Sequence[str]) -> SyncReport:
        """Pull these deals now (a HubSpot webhook named them), as a regular pull would."""
        tally = Tally()
        try:
            self._puller().pull(tally, full=False, ids=ids)
        finally:
            self._tell(tally)
        return _report(tally)

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
            share = usage_share(state.usage_used, state.usage_limit) if state else None
            stages = tuple((row.label, row.dealbot_stage) for row in repository.stages(self.kind))
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
            stages=stages,
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
                default_timezone=self.default_timezone,
                stage_book=self.stage_book,
            )
            # The scratch transaction has one connection: no second thread may use it.
            engine._renews_leases = False
            tally = Tally()
            engine._pusher().push(tally)
            engine._puller().pull(tally, full=full)
            return _report(tally)

    def _tell(self, tally: Tally) -> None:
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

    def _puller(self) -> CrmPuller:
        """Return the pull side, built from the engine's settings as they are now."""
        return CrmPuller(
            database=self.database,
            connector=self.connector,
            directory=self.directory,
            notices=self.notices,
            clock=self.clock,
            admins=self.admins,
            default_currency=self.default_currency,
            stages=self.stages,
            stage_book=self.stage_book,
            call=self._call,
            login_works=self._login_works,
            store_usage=self._store_usage,
            default_timezone=self.default_timezone,
        )

    def _pusher(self) -> CrmPusher:
        """Return the push side, built from the engine's settings as they are now."""
        return CrmPusher(
            database=self.database,
            connector=self.connector,
            notices=self.notices,
            clock=self.clock,
            stages=self.stages,
            owner=self.owner,
            lease=self.lease,
            renews_leases=self._renews_leases,
            pull=self._puller(),
            call=self._call,
            login_works=self._login_works,
        )


def _report(tally: Tally) -> SyncReport:
    """Freeze what a run did."""
    return SyncReport(
        pulled=tally.pulled, pushed=tally.pushed, conflicts=tally.conflicts, failed=tally.failed
    )


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
