"""create_app(): the Bolt app wired to storage, the domain and the Slack client."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk import WebClient

from bot.email_setup import build_follow_ups
from bot.replays import once_per_request
from bot.settings import Settings
from bot.slack import SlackDirectory, build_in_request_client, build_web_client
from domain.clock import Clock, SystemClock, ZoneCache
from domain.deals import Actor, DealService
from domain.stages import load_stage_book
from domain.teams import TeamService
from reminders.delivery import Delivery, OutgoingMessage
from reminders.email.drafts import FollowUps, RepProfile
from storage.database import Database

logger = logging.getLogger(__name__)

# Listeners answer inside the request (process_before_response), so this pool only runs
# lazy listeners: slow follow-ups such as posting to a response_url. A handful is plenty
# and bounds how hard one burst of clicks can hit the database.
LISTENER_THREADS = 8


class ListenerPool(ThreadPoolExecutor):
    """Bolt's pool for work done after an ack, which can say when it has all finished.

    The demo waits on it to print a click's or an event's effect before the next prompt,
    and the end-to-end tests before they assert on what that work did.
    """

    def __init__(self, *, max_workers: int = LISTENER_THREADS) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="dealbot-listener")
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        with self._lock:
            # Finished work is dropped as new work arrives, so the list stays short.
            self._futures = [f for f in self._futures if not f.done()]
            self._futures.append(future)
        return future

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Return once all work handed over so far, and any it handed on, has finished."""
        while True:
            with self._lock:
                pending = [f for f in self._futures if not f.done()]
                self._futures = pending
            if not pending:
                return
            _, not_done = wait(pending, timeout=timeout)
            if not_done:
                raise TimeoutError(f"{len(not_done)} listener(s) still running after {timeout} s")


class WithoutRequestBodies(logging.Filter):
    """Shortens Bolt's "invalid signature" record, which carries the whole request body.

    Bolt logs the body of every request whose signature fails, at INFO: a refused 400 MB
    POST becomes 400 MB of log, and a real request's `token` and `response_url` end up
    in it. The record keeps one short line and drops the body, signature and timestamp.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Invalid request signature detected"):
            record.msg = "Refused a request: invalid Slack signature or stale timestamp"
            record.args = ()
        return True


_BODY_FILTER = WithoutRequestBodies()
# Bolt names its middleware loggers after their classes, under "slack_bolt.".
BOLT_LOGGERS_WITH_BODIES = ("slack_bolt.RequestVerification", "slack_bolt.AsyncRequestVerification")


def keep_request_bodies_out_of_logs(*loggers: logging.Logger) -> None:
    """Install the filter that keeps request bodies out of Bolt's log records (idempotent)."""
    for each in (*loggers, *map(logging.getLogger, BOLT_LOGGERS_WITH_BODIES)):
        if _BODY_FILTER not in each.filters:
            each.addFilter(_BODY_FILTER)


@dataclass(frozen=True)
class Services:
    """What listeners call: the domain services plus the few Slack-only facts."""

    settings: Settings
    database: Database
    deals: DealService
    teams: TeamService
    directory: SlackDirectory
    clock: Clock
    # For the calls made while a slash command's user waits (views.open, users.info).
    in_request_client: WebClient
    # Follow-up email drafts (reminders/email/); None only in tests that build Services by hand.
    follow_ups: FollowUps | None = None
    # Bolt's listener pool: work a reply promises runs there, after the reply (see
    # `handlers.listeners.after_reply`); None runs it in the request.
    after_reply: Executor | None = None

    def actor(self, user_id: str) -> Actor:
        return Actor(user_id=user_id, is_admin=lambda: self.directory.is_admin(user_id))

    def send_dm(
        self,
        client: WebClient,
        *,
        job: str,
        recipient: str,
        subject: str,
        period: str,
        text: str,
        blocks: Sequence[Mapping[str, Any]],
    ) -> str:
        """Return the delivery summary after sending one message through the jobs' outbox.

        A listener's late DM takes the jobs' idempotent path, under `job`'s name, so a retry
        never sends it twice; handlers reach it here because they may not import reminders.
        """
        message = OutgoingMessage(
            recipient=recipient, subject=subject, period=period, text=text, blocks=blocks
        )
        delivery = Delivery(database=self.database, client=client)
        delivery.record(job, [message])
        return delivery.send_pending(job, now=self.clock.now()).line()


def build_services(
    settings: Settings,
    *,
    client: WebClient,
    database: Database | None = None,
    clock: Clock | None = None,
    after_reply: Executor | None = None,
) -> Services:
    database = database or Database.from_url(settings.database_url)
    clock = clock or SystemClock()
    zones = ZoneCache()
    stage_book = load_stage_book(settings.dealbot_stages_dir)
    deals = DealService(
        database=database,
        clock=clock,
        default_timezone=settings.timezone,
        default_currency=settings.dealbot_currency,
        stage_book=stage_book,
        zones=zones,
        # With a CRM connected, every change made in Slack queues its push to the CRM.
        crm=settings.crm_kind,
    )
    in_request_client = build_in_request_client(client)
    directory = SlackDirectory(client=in_request_client, configured_admins=settings.dealbot_admins)
    return Services(
        settings=settings,
        database=database,
        deals=deals,
        teams=TeamService(
            database=database,
            clock=clock,
            default_timezone=settings.dealbot_timezone,
            zones=zones,
            stage_book=stage_book,
            base_currency=settings.dealbot_currency,
            stages_dir=settings.dealbot_stages_dir,
            crm=settings.crm_kind,
        ),
        directory=directory,
        clock=clock,
        in_request_client=in_request_client,
        follow_ups=build_follow_ups(
            settings,
            database=database,
            deals=deals,
            clock=clock,
            rep_profile=lambda user_id: RepProfile(*directory.name_and_email(user_id)),
        ),
        after_reply=after_reply,
    )


def create_app(
    settings: Settings,
    *,
    client: WebClient | None = None,
    database: Database | None = None,
    clock: Clock | None = None,
    verify_requests: bool = True,
    listener_executor: Executor | None = None,
) -> App:
    """Return the Bolt app with every listener registered.

    `verify_requests=False` is for the offline demo only, which feeds Bolt requests
    itself; anything reachable over HTTP keeps Slack's signature check.
    `listener_executor` runs lazy listeners (the work after a button's ack); tests pass
    one they can wait on.
    """
    from handlers import register_all

    if client is None:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        client = build_web_client(token=token, base_url=settings.slack_api_url)
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    )
    listener_executor = listener_executor or ListenerPool()
    bolt_logger = logging.getLogger("dealbot.bolt")
    # Before App(): Bolt copies its base logger's filters to the loggers it creates.
    keep_request_bodies_out_of_logs(bolt_logger)
    app = App(
        client=client,
        signing_secret=signing_secret,
        request_verification_enabled=verify_requests,
        token_verification_enabled=verify_requests,
        # Answer within the request: a fast reply needs no 10 ms ack polling, and the
        # reply lands in the slash command's HTTP response.
        process_before_response=True,
        listener_executor=listener_executor,
        logger=bolt_logger,
        # Unmatched requests reach answer_unhandled instead of Bolt's developer hint.
        raise_error_for_unhandled_request=True,
    )
    app.error(answer_unhandled)
    services = build_services(
        settings, client=client, database=database, clock=clock, after_reply=listener_executor
    )
    # Runs after Bolt's signature check, so only genuine requests leave a receipt.
    app.use(once_per_request(database=services.database, clock=services.clock))
    register_all(app, services)
    return app


def answer_unhandled(
    error: Exception, request: BoltRequest, logger: logging.Logger
) -> BoltResponse | None:
    """Return a friendly private reply to a slash command no listener takes, else None.

    Bolt's default for a request no listener matches logs a Python snippet meant for the
    app's developer and answers 404, which Slack shows a user as a failed command. Here a
    stray slash command (`/pipline`, routed to the app by a workspace's own setup) hears
    the commands dealbot has; any other unmatched request is logged in one line. Every
    other error keeps Bolt's default: logged with its traceback.
    """
    from handlers import blocks, messages
    from handlers.commands.dispatch import COMMANDS

    if not isinstance(error, BoltUnhandledRequestError):
        logger.exception("Failed to run listener function (error: %s)", error)
        return None
    body = request.body if isinstance(request.body, dict) else {}
    command = body.get("command")
    if not isinstance(command, str) or error.last_global_middleware_name is not None:
        logger.warning("No listener for a %s request", body.get("type") or "Slack")
        return None
    logger.info("No listener for the slash command %s", command[:40])
    names = [each.name for each in COMMANDS]
    reply = blocks.error_reply(messages.unknown_command(command, names), "/dealbot help")
    answer = {"response_type": "ephemeral", "text": reply.text, "blocks": reply.block_dicts()}
    return BoltResponse(
        status=200,
        body=json.dumps(answer),
        headers={"content-type": "application/json;charset=utf-8"},
    )
