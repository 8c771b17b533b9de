"""`dealbot crm status` and `dealbot crm sync [--full] [--dry-run]`.

Exit codes as `dealbot jobs run`: 0 when nothing failed, 1 when something did (a deal the
CRM refused, a status that is not connected), 2 on a usage or connection error, named in
one line: the setting to fix, or the CRM's own message.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from slack_sdk import WebClient

from bot.crm_setup import (
    CrmBusy,
    CrmRuntime,
    OutboxNotices,
    SyncEngine,
    claim_manual_sync,
    crm_label,
    finish_manual_sync,
)
from bot.settings import Settings, SettingsError
from bot.slack import SlackUnavailable, build_web_client
from crm.records import CrmError
from crm.sync import CrmStatus
from domain.clock import Clock, SystemClock

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

RuntimeFactory = Callable[[Settings], CrmRuntime]


def crm_status(
    settings: Settings,
    *,
    out: TextIO | None = None,
    runtime: CrmRuntime | None = None,
    clock: Clock | None = None,
) -> int:
    """Print whether the CRM is connected and how the sync stands; 0 connected, 1 not."""
    out = out or sys.stdout
    crm = crm_label(settings)
    client = WebClient(base_url=settings.slack_api_url)  # status sends nothing to Slack
    with _engine(settings, runtime=runtime, client=client, clock=clock) as (engine, _):
        try:
            status = engine.status()
        except CrmError as error:
            return _crm_error(crm, error)
    for line in status_lines(status, crm=crm):
        print(line, file=out)
    return EXIT_OK if status.connected else EXIT_FAILED


def status_lines(status: CrmStatus, *, crm: str) -> list[str]:
    """Return `dealbot crm status` as lines: one fact a line, "none" rather than blanks."""
    connected = "connected" if status.connected else "not connected"
    if not status.connected and status.message:
        connected += f": {status.message}"
    owners = ", ".join(status.owners_without_slack_user) or "none"
    lines = [
        f"{crm}: {connected}",
        f"last pull: {_when(status.last_pull_at)}",
        f"cursor: {status.cursor or 'none (the next sync is a full one)'}",
        f"pending pushes: {status.pending_pushes}",
        f"refused pushes: {status.refused_pushes}",
        f"owners with no Slack user: {owners}",
    ]
    # getattr: the engine adds these to CrmStatus; a status without them says nothing.
    share = getattr(status, "api_usage_share", None)
    if share is not None:
        slowed = " (pulls slowed down to spare it)" if getattr(status, "slowed", False) else ""
        lines.append(f"API allowance used: {share:.0%}{slowed}")
    return lines


def crm_sync(
    settings: Settings,
    *,
    full: bool,
    dry_run: bool,
    out: TextIO | None = None,
    runtime: CrmRuntime | None = None,
    client: WebClient | None = None,
    clock: Clock | None = None,
) -> int:
    """Run one sync now; print `pulled N, pushed M, conflicts K, failed F`; return the code."""
    out = out or sys.stdout
    crm = crm_label(settings)
    if client is None:
        if settings.slack_bot_token is None:
            # Owners are matched by email and notices DMed: both need the bot token.
            raise SettingsError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-...)")
        client = build_web_client(
            token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
        )
    clock = clock or SystemClock()
    with _engine(settings, runtime=runtime, client=client, clock=clock) as (engine, notices):
        database = notices.database
        # A dry run writes nothing, so it may overlap a sync; a real one takes its turn.
        run_id = None
        if not dry_run:
            try:
                run_id = claim_manual_sync(database, now=clock.now(), runner=_runner())
            except CrmBusy as busy:
                print(f"dealbot: {busy}", file=sys.stderr)
                return EXIT_USAGE
        status, summary = "failed", "crashed"
        try:
            report = engine.run(full=full, dry_run=dry_run)
            status, summary = "done", report.summary()
        except CrmError as error:
            summary = f"{crm}: {error.message}"
            return _crm_error(crm, error)
        except SlackUnavailable as error:
            summary = "Slack unavailable"
            print(f"dealbot: Slack could not match owners by email ({error})", file=sys.stderr)
            return EXIT_USAGE
        finally:
            # Whatever the engine had to tell people before it stopped goes now (or stays
            # pending for the scheduler's sweep).
            notices.flush()
            if run_id is not None:
                finish_manual_sync(database, run_id, status=status, summary=summary, at=clock.now())
    # stdout is the one summary line, dry run or not, for scripts that read it.
    print(report.summary(), file=out)
    if dry_run:
        print("dealbot: dry run: nothing was written to dealbot or the CRM", file=sys.stderr)
    return EXIT_OK if report.failed == 0 else EXIT_FAILED


@contextmanager
def _engine(
    settings: Settings,
    *,
    runtime: CrmRuntime | None,
    client: WebClient,
    clock: Clock | None,
) -> Iterator[tuple[SyncEngine, OutboxNotices]]:
    from bot.jobs_cli import open_database

    runtime = runtime or CrmRuntime(settings)
    database = open_database(settings)
    try:
        yield runtime.engine(database=database, client=client, clock=clock or SystemClock())
    finally:
        database.dispose()


def _runner() -> str:
    return f"cli:{socket.gethostname()}:{os.getpid()}"


def _crm_error(crm: str, error: CrmError) -> int:
    print(f"dealbot: {crm_says(crm, error.message)}", file=sys.stderr)
    return EXIT_USAGE


def crm_says(crm: str, message: str) -> str:
    """Return the CRM's message naming the CRM once ("Salesforce refused the login: …")."""
    return message if message.startswith(crm) else f"{crm}: {message}"


def _when(moment: dt.datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
