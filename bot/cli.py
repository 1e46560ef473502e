"""The `supportbot` command: run the bot, manage the database and the knowledge base."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from bot import __version__
from bot.logs import configure
from bot.settings import Settings, SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supportbot", description="A support bot for Slack, Discord and the console."
    )
    parser.add_argument("--version", action="version", version=f"supportbot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the bot (console when no platform is configured)")
    run.add_argument("--console", action="store_true", help="chat with the bot in this terminal")
    run.add_argument("--as-staff", action="store_true", help="in the console, act as a staff member")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations (also done on every start)")
    db_commands.add_parser("current", help="print the schema revision")
    return parser


async def _db(settings: Settings, action: str) -> int:
    from storage import migrate
    from storage.db import Database

    database = Database.from_url(settings.database_url)
    try:
        if action == "upgrade":
            await migrate.upgrade(database.engine)
        revision = await migrate.current_revision(database.engine)
        print(f"schema at {revision or 'empty'} (head {migrate.head_revision()})")
    finally:
        await database.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"supportbot: setting {error}", file=sys.stderr)
        return 2
    # Console chat owns stdout; logs go to stderr.
    configure(
        settings.log_level if args.command != "run" or not _console(args, settings) else "WARNING",
        stream=sys.stderr,
    )
    if args.command == "db":
        return asyncio.run(_db(settings, args.db_command))
    if args.command == "run":
        from bot.app import run

        try:
            return asyncio.run(run(settings, console=args.console, as_staff=args.as_staff))
        except KeyboardInterrupt:
            return 130
        except OSError as error:
            print(f"supportbot: cannot start: {error}", file=sys.stderr)
            return 1
    return 2


def _console(args: argparse.Namespace, settings: Settings) -> bool:
    return bool(args.console) or settings.active_platforms == ["console"]


if __name__ == "__main__":
    sys.exit(main())
