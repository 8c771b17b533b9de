"""The `dealbot` command: serve, demo, jobs, crm, db upgrade, import, fx, gmail rotate-key."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.crm_setup import CrmRuntime
    from bot.server import WSGIApp
    from storage.database import Database

logger = logging.getLogger("dealbot")

EXIT_OK = 0
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dealbot", description="Slack + Gmail assistant that keeps a sales pipeline honest."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the Slack app (HTTP, or Socket Mode)")
    serve.add_argument(
        "--no-scheduler",
        action="store_true",
        help="web only: run no scheduled jobs",
    )
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="gunicorn worker processes serving Slack (default: one per core); the jobs run "
        "in one more process",
    )

    demo = commands.add_parser("demo", help="the whole product offline, on a sample pipeline")
    demo.add_argument(
        "--database",
        default="sqlite:///dealbot-demo.db",
        help="where the demo keeps its data (re-seeded on every run)",
    )

    jobs = commands.add_parser("jobs", help="scheduled jobs: list them, or run one now")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    job_commands.add_parser("list", help="each job with its schedule and next run")
    run = job_commands.add_parser("run", help="run one job once and print what it sent")
    run.add_argument("job", help="the job's name (see `dealbot jobs list`)")
    run.add_argument(
        "--now",
        type=_iso_datetime,
        default=None,
        help="run as if the clock said this ISO datetime (quiet hours, budget, periods); "
        "without an offset it is read in DEALBOT_TIMEZONE",
    )

    crm = commands.add_parser("crm", help="CRM sync (DEALBOT_CRM): its status, or a sync now")
    crm_commands = crm.add_subparsers(dest="crm_command", required=True, metavar="ACTION")
    crm_commands.add_parser(
        "status",
        help="connected or not, last pull, cursor, pending and refused pushes, unmatched owners",
    )
    sync = crm_commands.add_parser(
        "sync", help="push and pull now; prints pulled N, pushed M, conflicts K, failed F"
    )
    sync.add_argument(
        "--full", action="store_true", help="pull every deal, not only those changed since"
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="say what would change; write nothing anywhere"
    )

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply migrations up to the newest schema")

    importing = commands.add_parser(
        "import", help="deals from a Salesforce or HubSpot CSV export (re-import safe)"
    )
    importing.add_argument("csv", type=Path, help="the exported CSV file")
    importing.add_argument("--owner", help="Slack user id owning rows the owners file misses")
    importing.add_argument(
        "--owners", type=Path, help="CSV of source owner name or email, Slack user id"
    )
    importing.add_argument(
        "--open-only", action="store_true", help="leave closed won/lost rows out"
    )
    importing.add_argument(
        "--dry-run", action="store_true", help="say what would happen; write nothing"
    )
    importing.add_argument(
        "--date-order",
        choices=("mdy", "dmy"),
        help="how to read slashed dates such as 03/04/2026 (ISO dates need nothing)",
    )

    fx = commands.add_parser(
        "fx", help="exchange rates into DEALBOT_CURRENCY: set one, import a CSV, list them"
    )
    fx_commands = fx.add_subparsers(dest="fx_command", required=True, metavar="ACTION")
    fx_set = fx_commands.add_parser(
        "set", help="how much of DEALBOT_CURRENCY one unit of CUR is worth, from a date on"
    )
    fx_set.add_argument("currency", help="ISO code, e.g. EUR")
    fx_set.add_argument("rate", help="units of DEALBOT_CURRENCY per unit of CUR, e.g. 1.08")
    fx_set.add_argument("--date", default=None, help="YYYY-MM-DD it applies from (default: today)")
    fx_import = fx_commands.add_parser(
        "import", help="rates from a CSV with the header currency,rate,date (all or none)"
    )
    fx_import.add_argument("csv", type=Path, help="the rates file")
    fx_commands.add_parser("list", help="the rates in force today, and how many others are kept")

    gmail = commands.add_parser("gmail", help="Gmail drafts: maintenance of stored grants")
    gmail_commands = gmail.add_subparsers(dest="gmail_command", required=True, metavar="ACTION")
    gmail_commands.add_parser(
        "rotate-key",
        help="re-encrypt every stored Gmail token with the first key in DEALBOT_SECRET_KEY",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    # The demo's terminal is for the conversation, not for framework chatter.
    logging.basicConfig(
        level=logging.WARNING if arguments.command == "demo" else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if arguments.command == "demo":
            from bot.demo import run_demo

            return run_demo(database_url=arguments.database)
        settings = load_settings()
        if arguments.command == "db":
            return _db_upgrade(settings)
        if arguments.command == "gmail":
            return _gmail_rotate_key(settings)
        if arguments.command == "crm":
            from bot.crm_cli import crm_status, crm_sync

            if arguments.crm_command == "status":
                return crm_status(settings)
            return crm_sync(settings, full=arguments.full, dry_run=arguments.dry_run)
        if arguments.command == "import":
            from bot.import_cli import run_import

            return run_import(
                settings,
                arguments.csv,
                owner=arguments.owner,
                owners_path=arguments.owners,
                open_only=arguments.open_only,
                dry_run=arguments.dry_run,
                date_order=arguments.date_order,
            )
        if arguments.command == "fx":
            from bot.fx_cli import fx_import, fx_list, fx_set

            if arguments.fx_command == "set":
                return fx_set(settings, arguments.currency, arguments.rate, on=arguments.date)
            if arguments.fx_command == "import":
                return fx_import(settings, arguments.csv)
            return fx_list(settings)
        from domain.checks import default_checks

        # A bad checks file stops start-up here, naming the line, not at 9:00 tomorrow.
        default_checks()
        if arguments.command == "jobs":
            from bot.jobs_cli import list_jobs, run_job_now

            if arguments.jobs_command == "list":
                return list_jobs(settings)
            return run_job_now(settings, arguments.job, now=arguments.now)
        return _serve(settings, scheduler=not arguments.no_scheduler, workers=arguments.workers)
    except SettingsError as error:
        print(f"dealbot: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:
        from domain.checks import ChecksFileError

        if not isinstance(error, ChecksFileError):
            raise
        print(f"dealbot: checks file refused: {error}", file=sys.stderr)
        return EXIT_USAGE


def _iso_datetime(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO datetime, e.g. 2026-11-23T09:00-05:00"
        ) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers (1 or more)")
    return int(text)


def _db_upgrade(settings: Settings) -> int:
    from storage.migrate import upgrade

    upgrade(settings.database_url)
    print("database is at the newest schema")
    return EXIT_OK


def _serve(settings: Settings, *, scheduler: bool, workers: int | None = None) -> int:
    from bot.app import create_app
    from bot.jobs_cli import open_database
    from bot.server import build_wsgi_app, make_server, tune_gc_for_serving

    settings.require_slack_credentials()
    settings.require_crm_settings()
    if settings.slack_app_token is None and os.name != "nt":
        return _serve_with_gunicorn(settings, scheduler=scheduler, workers=workers)
    if settings.slack_app_token is not None and workers not in (None, 1):
        logger.warning("Socket Mode runs in one process: --workers %s is ignored", workers)
    elif os.name == "nt":
        logger.warning(
            "gunicorn does not run on Windows: serving with waitress in one process%s",
            f" (--workers {workers} ignored)" if workers not in (None, 1) else "",
        )
    database = open_database(settings)
    app = create_app(settings, database=database)
    google_oauth = _google_oauth_pages(settings, database)
    crm_runtime = None
    if settings.crm_kind is not None:
        from bot.crm_setup import CrmRuntime

        # One login per process, shared by the CRM jobs and the HubSpot webhook.
        crm_runtime = CrmRuntime(settings)
    hubspot_webhooks = (
        _hubspot_webhooks(settings, database, app.client, crm_runtime)
        if crm_runtime is not None and settings.hubspot_webhooks_enabled
        else None
    )
    job_scheduler = None
    if scheduler:
        from bot.jobs_cli import build_scheduler

        job_scheduler = build_scheduler(
            settings, database=database, client=app.client, crm=crm_runtime
        )
        job_scheduler.start()
        logger.info("scheduler started (%s)", ", ".join(job_scheduler.jobs))
    else:
        logger.info("--no-scheduler: serving Slack requests only")
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        if google_oauth is not None or hubspot_webhooks is not None:
            # Socket Mode needs no public URL for Slack, but Google's redirect and
            # HubSpot's webhooks still do.
            from bot.server import BackgroundServer, build_side_pages

            pages = build_side_pages(google_oauth=google_oauth, hubspot_webhooks=hubspot_webhooks)
            BackgroundServer(pages, host=settings.host, port=settings.port).start()
            logger.info("web pages on http://%s:%s", settings.host, settings.port)
        logger.info("connecting to Slack in Socket Mode")
        SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()
        return EXIT_OK
    wsgi = build_wsgi_app(
        app, google_oauth=google_oauth, hubspot_webhooks=hubspot_webhooks, database=database
    )
    server = make_server(wsgi, host=settings.host, port=settings.port)
    tune_gc_for_serving()
    logger.info("listening on http://%s:%s/slack/events", settings.host, settings.port)
    try:
        server.run()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        server.close()
        if job_scheduler is not None:
            job_scheduler.shutdown()
    return EXIT_OK


def _hubspot_webhooks(
    settings: Settings, database: Database, client: WebClient, runtime: CrmRuntime
) -> WSGIApp:
    """Return POST /crm/hubspot/webhooks: checked, answered at once, pulled in the background."""
    from bot.crm_setup import hubspot_webhooks_app
    from domain.clock import SystemClock

    return hubspot_webhooks_app(
        settings, database=database, client=client, runtime=runtime, clock=SystemClock()
    )


def _serve_with_gunicorn(settings: Settings, *, scheduler: bool, workers: int | None) -> int:
    """Serve over HTTP with gunicorn workers, and the jobs in a process of their own."""
    from bot.gunicorn_app import DealbotGunicorn, default_workers
    from bot.jobs_cli import open_database

    # Once, here, before any fork: upgrade a SQLite file or refuse a PostgreSQL schema
    # that is behind. The engine is disposed of so that no child inherits its connections.
    open_database(settings).dispose()
    count = workers or default_workers()
    logger.info(
        "serving http://%s:%s/slack/events with %d gunicorn worker(s)",
        settings.host,
        settings.port,
        count,
    )
    # The arbiter (and each worker forked from it) ends by raising SystemExit: left to go up.
    DealbotGunicorn(settings, workers=count, scheduler=scheduler).run()
    return EXIT_OK


def _gmail_rotate_key(settings: Settings) -> int:
    from bot.email_setup import build_gmail_connect
    from domain.clock import SystemClock
    from storage.database import Database

    connect = build_gmail_connect(
        settings, database=Database.from_url(settings.database_url), clock=SystemClock()
    )
    if connect is None:
        raise SettingsError("DEALBOT_EMAIL_BACKEND: rotate-key is for gmail with per-rep OAuth")
    print(f"re-encrypted {connect.rotate_key()} Gmail grant(s) with the newest key")
    return EXIT_OK


def _google_oauth_pages(settings: Settings, database: Database) -> WSGIApp | None:
    """Return the WSGI app of the Gmail connect pages when reps connect with OAuth, else None."""
    from bot.email_setup import build_gmail_connect
    from bot.google_oauth import google_oauth_wsgi
    from domain.clock import SystemClock

    connect = build_gmail_connect(settings, database=database, clock=SystemClock())
    return google_oauth_wsgi(connect) if connect is not None else None


if __name__ == "__main__":
    sys.exit(main())
