"""CRM sync wiring: the connector from settings, Slack lookups and DMs, and the two jobs.

`crm/` knows nothing of Slack, settings or the scheduler, and `reminders/` nothing of `crm/`;
this module is where they meet:

- `build_connector` logs in to the CRM the settings name (`DEALBOT_CRM`);
  `ReconnectingConnector` does so on first use and again after a refused login, so an
  expired Salesforce session costs one retry, not a failed sync.
- `SlackUserDirectory` finds a CRM owner's Slack user by email (`users.lookupByEmail`).
- `OutboxNotices` turns the engine's notices into DMs recorded in the jobs' outbox, so a
  notice survives a Slack outage and a restart and is never sent twice.
- `crm_jobs` builds `crm-sync` (pull and push, every 5 minutes) and `crm-push` (push only,
  every minute): each plan runs the engine and returns no messages of its own; the notices
  it recorded go out with the job's delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Protocol, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.settings import Settings, SettingsError
from bot.slack import SlackUnavailable
from crm.hubspot_webhooks import HubSpotWebhooks
from crm.records import (
    CRM_LABELS,
    ApiUsage,
    CrmAuthFailed,
    CrmDeal,
    CrmError,
    CrmFieldChange,
    CrmKind,
    CrmOwner,
    CrmStage,
    DealFields,
    NewTask,
    PullBatch,
)
from crm.sync import ConflictNotice, CrmStatus, CrmSync, RefusalNotice, SyncReport
from domain.clock import Clock, SystemClock
from domain.stages import load_stage_book
from handlers import blocks
from reminders.delivery import Delivery, DeliverySummary, OutgoingMessage
from reminders.jobs import Job, JobContext, Schedule
from reminders.scheduler import CATCH_UP_WINDOW, last_fire_time, trigger_for
from storage.database import Database
from storage.job_runs import JobRunRepository

if TYPE_CHECKING:
    from crm.connector import CrmConnector

logger = logging.getLogger(__name__)

CRM_SYNC_JOB = "crm-sync"
CRM_PUSH_JOB = "crm-push"
CRM_JOBS = (CRM_SYNC_JOB, CRM_PUSH_JOB)
CRM_IS_NONE = "DEALBOT_CRM is none: set it to salesforce or hubspot"
# A run still "running" after this long is taken for one whose process died: a first sync
# of 100,000 deals at HubSpot's 4 requests a second fits well inside it.
RUN_STALE_AFTER = dt.timedelta(hours=2)

T = TypeVar("T")


def crm_label(settings: Settings) -> str:
    """Return the CRM's name as users read it ("Salesforce"), or raise when none is set."""
    if settings.crm_kind is None:
        raise SettingsError(CRM_IS_NONE)
    return CRM_LABELS[settings.crm_kind]


# --- the connector ------------------------------------------------------------------------


def build_connector(settings: Settings, *, clock: Clock) -> CrmConnector:
    """Return a logged-in connector to the CRM the settings name.

    Raises SettingsError naming a missing setting, CrmAuthFailed when the CRM refuses the
    login and CrmUnavailable when it cannot be reached.
    """
    settings.require_crm_settings()
    if settings.dealbot_crm == "salesforce":
        from crm.salesforce import SalesforceConnector

        assert settings.salesforce_private_key_file is not None  # require_crm_settings
        assert settings.salesforce_client_id is not None
        assert settings.salesforce_username is not None
        try:
            private_key = settings.salesforce_private_key_file.read_bytes()
        except OSError as error:
            raise SettingsError(
                f"SALESFORCE_PRIVATE_KEY_FILE: cannot read it ({error.strerror})"
            ) from None
        connector: CrmConnector = SalesforceConnector.login(
            login_url=settings.salesforce_login_url,
            client_id=settings.salesforce_client_id,
            username=settings.salesforce_username,
            private_key=private_key,
            api_version=settings.salesforce_api_version,
            clock=clock,
        )
        return connector
    if settings.dealbot_crm == "hubspot":
        from crm.hubspot import HubSpotConnector

        assert settings.hubspot_access_token is not None  # require_crm_settings
        connector = HubSpotConnector(
            access_token=settings.hubspot_access_token.get_secret_value(),
            api_url=settings.hubspot_api_url,
            clock=clock,
        )
        return connector
    raise SettingsError(CRM_IS_NONE)


class ReconnectingConnector:
    """A CrmConnector that logs in on first use, and once more when a call is refused.

    One per process: the scheduler's firings share its login instead of logging in every
    minute. A call refused with CrmAuthFailed (an expired Salesforce session) is retried
    once on a fresh login, which is safe for writes too (a refused call changed nothing);
    if the fresh login is refused as well, CrmAuthFailed reaches the engine, which tells
    the admins.
    """

    def __init__(self, *, kind: CrmKind, connect: Callable[[], CrmConnector]) -> None:
        self.kind: CrmKind = kind
        self._connect = connect
        self._current: CrmConnector | None = None
        self._lock = threading.Lock()

    def _connector(self, *, fresh: bool = False) -> CrmConnector:
        with self._lock:
            if fresh or self._current is None:
                self._current = None
                self._current = self._connect()
            return self._current

    def _call(self, use: Callable[[CrmConnector], T]) -> T:
        connector = self._connector()
        try:
            return use(connector)
        except CrmAuthFailed:
            logger.info("%s refused the session; logging in again", self.kind)
            return use(self._connector(fresh=True))

    def _iterate(self, use: Callable[[CrmConnector], Iterator[T]]) -> Iterator[T]:
        # A generator's errors arrive while it is consumed, so the retry wraps the loop;
        # it only applies before the first item, as a later retry would repeat items.
        started = False
        try:
            for item in use(self._connector()):
                started = True
                yield item
        except CrmAuthFailed:
            if started:
                raise
            logger.info("%s refused the session; logging in again", self.kind)
            yield from use(self._connector(fresh=True))

    def stages(self) -> tuple[CrmStage, ...]:
        return self._call(lambda c: c.stages())

    def owners(self) -> tuple[CrmOwner, ...]:
        return self._call(lambda c: c.owners())

    def pull(self, cursor: str | None) -> Iterator[PullBatch]:
        return self._iterate(lambda c: c.pull(cursor))

    def deals(self, ids: Sequence[str]) -> tuple[CrmDeal, ...]:
        return self._call(lambda c: c.deals(ids))

    def field_history(self, deal_ids: Sequence[str]) -> Iterator[CrmFieldChange]:
        return self._iterate(lambda c: c.field_history(deal_ids))

    def create_deal(self, fields: DealFields) -> str:
        return self._call(lambda c: c.create_deal(fields))

    def update_deal(self, deal_id: str, fields: DealFields) -> None:
        self._call(lambda c: c.update_deal(deal_id, fields))

    def create_task(self, deal_id: str, task: NewTask) -> str:
        return self._call(lambda c: c.create_task(deal_id, task))

    def complete_task(self, task_id: str) -> None:
        self._call(lambda c: c.complete_task(task_id))

    def record_url(self, deal_id: str) -> str:
        return self._call(lambda c: c.record_url(deal_id))

    def usage(self) -> ApiUsage | None:
        # Not worth a login: no connector yet means nothing spent yet.
        with self._lock:
            current = self._current
        return current.usage() if current is not None else None


# --- Slack: owners by email, and notices as DMs --------------------------------------------


class SlackUserDirectory:
    """Finds a CRM owner's Slack user by email with `users.lookupByEmail`, cached a while.

    "Nobody has this email" is an answer (None); Slack being slow or down is not, and raises
    SlackUnavailable, so a Slack outage is never reported to admins as unmatched owners.
    """

    CACHE_SECONDS = 600.0

    def __init__(
        self, *, client: WebClient, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self._monotonic = monotonic
        self._found: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def user_by_email(self, email: str) -> str | None:
        key = email.strip().lower()
        if not key:
            return None
        now = self._monotonic()
        with self._lock:
            cached = self._found.get(key)
        if cached is not None and now - cached[0] < self.CACHE_SECONDS:
            return cached[1]
        # Slack keeps addresses in lower case; CRMs keep what was typed ("Ana@Initech.com").
        user_id = self._lookup(key)
        with self._lock:
            self._found[key] = (now, user_id)
        return user_id

    def _lookup(self, email: str) -> str | None:
        try:
            answer = self.client.users_lookupByEmail(email=email)
        except SlackApiError as error:
            reason = str(error.response.get("error"))
            if reason == "users_not_found":
                return None
            # Never the email itself in logs: it is a person's address.
            logger.warning("users.lookupByEmail failed: %s", reason)
            raise SlackUnavailable(reason) from error
        except (SlackClientError, OSError) as error:
            logger.warning("users.lookupByEmail failed: %s", type(error).__name__)
            raise SlackUnavailable(type(error).__name__) from error
        user = answer.get("user") or {}
        if user.get("deleted") or user.get("is_bot") or not user.get("id"):
            return None  # a deactivated account cannot own deals
        return str(user["id"])


def _digest(*parts: object) -> str:
    """Return a short stable digest of `parts`, to tell apart notices about one deal."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class OutboxNotices:
    """The engine's notices as DMs, recorded in the jobs' outbox under `job`.

    Recording is all a notice does while the engine works; `flush` sends what is pending
    (a job's delivery does it for the jobs). A DM that cannot go now stays pending and the
    scheduler's outbox sweep retries it, so nothing is lost. The key (job, day, recipient,
    subject) makes a notice recorded twice on one day, by a rerun, go out once.
    """

    def __init__(
        self,
        *,
        database: Database,
        client: WebClient,
        clock: Clock,
        kind: CrmKind,
        job: str = CRM_SYNC_JOB,
    ) -> None:
        self.database = database
        self.client = client
        self.clock = clock
        self.kind = kind
        self.crm = CRM_LABELS[kind]
        self.job = job

    def conflict(self, notice: ConflictNotice) -> None:
        crm_won = notice.kept_from != "Slack"
        yours, theirs = (notice.lost, notice.kept) if crm_won else (notice.kept, notice.lost)
        reply = blocks.crm_conflict_notice(
            deal_name=notice.deal_name,
            field=notice.field,
            yours=yours,
            theirs=theirs,
            crm=self.crm,
            crm_won=crm_won,
            today=self.clock.now().date(),
        )
        subject = f"crm-conflict:{notice.deal_id}:{_digest(notice.field, notice.kept, notice.lost)}"
        self._record((notice.rep,), subject, reply)

    def refused(self, notice: RefusalNotice) -> None:
        reply = blocks.crm_refused_notice(
            deal_name=notice.deal_name, fields=notice.fields, message=notice.message, crm=self.crm
        )
        subject = f"crm-refused:{notice.deal_id}:{_digest(notice.fields, notice.message)}"
        self._record((notice.rep,), subject, reply)

    def owners_without_slack_user(self, admins: tuple[str, ...], emails: tuple[str, ...]) -> None:
        if not emails:
            return
        if not admins:
            logger.warning(
                "%d %s owner(s) have no Slack user, and DEALBOT_ADMINS names nobody to tell",
                len(emails),
                self.crm,
            )
            return
        reply = blocks.crm_owners_notice(emails, crm=self.crm)
        self._record(admins, f"crm-owners:{_digest(*sorted(emails))}", reply)

    def login_refused(self, admins: tuple[str, ...], message: str) -> None:
        logger.warning("%s refused dealbot's login", self.crm)
        if not admins:
            return
        reply = blocks.crm_login_refused_notice(message, crm=self.crm, kind=self.kind)
        self._record(admins, f"crm-login:{_digest(message)}", reply)

    def flush(self) -> DeliverySummary:
        """Send this job's pending notices now; return what was sent and what is left."""
        delivery = Delivery(database=self.database, client=self.client)
        return delivery.send_pending(self.job, now=self.clock.now())

    def _record(self, recipients: Sequence[str], subject: str, reply: blocks.Reply) -> None:
        period = self.clock.now().astimezone(dt.UTC).date().isoformat()
        messages = [
            OutgoingMessage(
                recipient=recipient,
                subject=subject,
                period=period,
                text=reply.text,
                blocks=reply.block_dicts(),
            )
            for recipient in dict.fromkeys(recipients)
        ]
        Delivery(database=self.database, client=self.client).record(self.job, messages)


# --- the engine, and the jobs that run it ---------------------------------------------------


class SyncEngine(Protocol):
    """What the CLI, the jobs and the webhook call on `crm.sync.CrmSync` (a double in tests)."""

    def run(self, *, full: bool = False, dry_run: bool = False) -> SyncReport: ...

    def push_pending(self) -> SyncReport: ...

    def pull_deals(self, ids: Sequence[str]) -> SyncReport: ...

    def status(self) -> CrmStatus: ...


EngineFactory = Callable[..., SyncEngine]


class CrmRuntime:
    """The CRM pieces one process shares: its one connector, and how an engine is built.

    `engine_factory` takes CrmSync's keywords; tests pass a double.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        connect: Callable[[], CrmConnector] | None = None,
        engine_factory: EngineFactory = CrmSync,
    ) -> None:
        kind = settings.crm_kind
        if kind is None:
            raise SettingsError(CRM_IS_NONE)
        settings.require_crm_settings()
        self.settings = settings
        self.kind: CrmKind = kind
        self.connector = ReconnectingConnector(
            kind=kind,
            connect=connect or (lambda: build_connector(settings, clock=SystemClock())),
        )
        self.engine_factory = engine_factory

    def engine(
        self, *, database: Database, client: WebClient, clock: Clock, job: str = CRM_SYNC_JOB
    ) -> tuple[SyncEngine, OutboxNotices]:
        """Return an engine on this process's connector, and the notices it records into."""
        notices = OutboxNotices(
            database=database, client=client, clock=clock, kind=self.kind, job=job
        )
        engine = self.engine_factory(
            database=database,
            connector=self.connector,
            directory=SlackUserDirectory(client=client),
            notices=notices,
            clock=clock,
            admins=self.settings.dealbot_admins,
            default_currency=self.settings.dealbot_currency,
            default_timezone=self.settings.timezone,
            # Read at each run: a team that took the CRM's stages since start is in it.
            stage_book=load_stage_book(self.settings.dealbot_stages_dir),
        )
        return engine, notices


CRM_SYNC_SCHEDULE = Schedule(cron={"minute": "*/5"}, timezone="UTC")
CRM_PUSH_SCHEDULE = Schedule(cron={"minute": "*"}, timezone="UTC")


def crm_run_in_progress(database: Database, *, job: Job, now: dt.datetime) -> bool:
    """Return whether another CRM run holds the CRM, so this one should stand down.

    The scheduler's job-run row makes each firing run once across instances; this keeps
    firings from overlapping: a `crm-sync` that outlives five minutes (a first sync) is not
    joined by the next one, and `crm-push` waits while any other CRM run works (a sync
    pushes too). A `crm-sync` does not wait for a push, or a busy minute would starve it.
    """
    fire_time = last_fire_time(trigger_for(job, "UTC"), now=now, since=now - CATCH_UP_WINDOW)
    with database.session() as session:
        running = JobRunRepository(session).running(CRM_JOBS, since=now - RUN_STALE_AFTER)
    own = (job.name, job.schedule.timezone, fire_time)
    others = [name for name, scope, fired in running if (name, scope, fired) != own]
    if job.name == CRM_PUSH_JOB:
        return bool(others)
    return job.name in others


class CrmBusy(Exception):
    """Another CRM sync is running; the message says since when."""


# The job-run scope of a sync started by hand (`dealbot crm sync`), as for manual runs.
MANUAL_SCOPE = "all"


def claim_manual_sync(database: Database, *, now: dt.datetime, runner: str) -> int:
    """Return the job-run row of a sync started by hand, or raise CrmBusy.

    The row is what keeps the scheduled `crm-sync` and `crm-push` from starting while it
    works, as a scheduled sync's own row does.
    """
    with database.session() as session:
        running = JobRunRepository(session).running((CRM_SYNC_JOB,), since=now - RUN_STALE_AFTER)
    if running:
        fired = running[0][2].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise CrmBusy(f"a crm-sync is already running (since {fired}); try again when it ends")
    with database.session() as session:
        run_id = JobRunRepository(session).claim_firing(
            job=CRM_SYNC_JOB, scope=MANUAL_SCOPE, fire_time=now, runner=runner[:120], at=now
        )
    if run_id is None:
        raise CrmBusy("a crm-sync started this very instant; try again when it ends")
    return run_id


def finish_manual_sync(
    database: Database, run_id: int, *, status: str, summary: str, at: dt.datetime
) -> None:
    with database.session() as session:
        JobRunRepository(session).finish(run_id, status=status, summary=summary, at=at)


def crm_jobs(settings: Settings, *, runtime: CrmRuntime | None = None) -> dict[str, Job]:
    """Return the `crm-sync` and `crm-push` jobs, or none when DEALBOT_CRM is none."""
    if settings.crm_kind is None:
        return {}
    shared = runtime or CrmRuntime(settings)
    crm = CRM_LABELS[shared.kind]

    def plan(job: Job, context: JobContext) -> list[OutgoingMessage]:
        if crm_run_in_progress(context.database, job=job, now=context.now):
            logger.info("%s: another CRM run is still working; standing down", job.name)
            return []
        engine, _ = shared.engine(
            database=context.database,
            client=context.client,
            clock=context.services.clock,
            job=job.name,
        )
        try:
            report = engine.push_pending() if job.name == CRM_PUSH_JOB else engine.run()
        except CrmError as error:
            # The engine has told the admins about a refused login; the log says which CRM.
            logger.warning("%s: %s answered: %s", job.name, crm, error.message)
            return []
        except SlackUnavailable as error:
            logger.warning("%s: Slack could not match owners by email (%s)", job.name, error)
            return []
        logger.info("%s: %s", job.name, report.summary())
        # The notices are in the outbox under this job: its delivery sends them.
        return []

    sync = Job(
        name=CRM_SYNC_JOB,
        description=f"pull what changed in {crm} and push what changed in Slack",
        schedule=CRM_SYNC_SCHEDULE,
        plan=lambda context: plan(sync, context),
    )
    push = Job(
        name=CRM_PUSH_JOB,
        description=f"push changes made in Slack to {crm} within a minute",
        schedule=CRM_PUSH_SCHEDULE,
        plan=lambda context: plan(push, context),
    )
    return {sync.name: sync, push.name: push}


def hubspot_webhooks_app(
    settings: Settings,
    *,
    database: Database,
    client: WebClient,
    runtime: CrmRuntime,
    clock: Clock,
    executor: Executor | None = None,
) -> HubSpotWebhooks:
    """Return POST /crm/hubspot/webhooks: each deal event pulls its deal in the background."""
    if settings.hubspot_webhook_secret is None:
        raise SettingsError("HUBSPOT_WEBHOOK_SECRET is not set (the app's client secret)")

    def pull(ids: Sequence[str]) -> None:
        engine, notices = runtime.engine(
            database=database, client=client, clock=clock, job=CRM_SYNC_JOB
        )
        try:
            report = engine.pull_deals(ids)
            logger.info("HubSpot webhook: %s", report.summary())
        finally:
            notices.flush()

    return HubSpotWebhooks(
        secret=settings.hubspot_webhook_secret.get_secret_value(),
        clock=clock,
        on_deals=pull,
        executor=executor,
    )
