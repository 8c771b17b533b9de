"""The `dealbot` command: serve, demo, db upgrade."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.settings import Settings, SettingsError, load_settings

logger = logging.getLogger("dealbot")

EXIT_OK = 0
EXIT_FAILED = 1
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
        help="web only: do not run scheduled jobs in this process",
    )

    demo = commands.add_parser("demo", help="the whole product offline, on a sample pipeline")
    demo.add_argument(
        "--database",
        default="sqlite:///dealbot-demo.db",
        help="where the demo keeps its data (re-seeded on every run)",
    )

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply migrations up to the newest schema")
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
        return _serve(settings, scheduler=not arguments.no_scheduler)
    except SettingsError as error:
        print(f"dealbot: {error}", file=sys.stderr)
        return EXIT_USAGE


def _db_upgrade(settings: Settings) -> int:
    from storage.migrate import upgrade

    upgrade(settings.database_url)
    print("database is at the newest schema")
    return EXIT_OK


def _serve(settings: Settings, *, scheduler: bool) -> int:
    from bot.app import create_app
    from bot.server import build_wsgi_app, make_server
    from storage.database import Database
    from storage.migrate import is_up_to_date, upgrade

    settings.require_slack_credentials()
    database = Database.from_url(settings.database_url)
    if database.engine.dialect.name == "sqlite":
        # A single-file database has a single server: keeping it current is safe and saves
        # a newcomer a step. Shared databases are upgraded on purpose with `dealbot db upgrade`.
        upgrade(settings.database_url)
    elif not is_up_to_date(database.engine):
        raise SettingsError("DATABASE_URL: the schema is not current; run `dealbot db upgrade`")
    app = create_app(settings, database=database)
    if scheduler:
        logger.info("no scheduled jobs are configured yet; serving Slack requests only")
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        logger.info("connecting to Slack in Socket Mode")
        SocketModeHandler(app, settings.slack_app_token.get_secret_value()).start()
        return EXIT_OK
    server = make_server(build_wsgi_app(app), host=settings.host, port=settings.port)
    logger.info("listening on http://%s:%s/slack/events", settings.host, settings.port)
    try:
        server.run()
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        server.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
