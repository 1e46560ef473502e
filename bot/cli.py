"""The `supportbot` command: set up a site, run the bot, manage the database and the knowledge base,
answer privacy requests."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import NoReturn

from bot import __version__
from bot.logs import ErrorReportingUnavailable, configure, report_errors_to_sentry
from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)
NO_KB = "no knowledge base here: run `supportbot init`, or set KB_PATH"


class _Parser(argparse.ArgumentParser):
    """A wrong argument is one line saying what to do (argparse would print the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments, or one line from the (sub)command they were given to: `supportbot db upgrade:
    unrecognized arguments: --x (see `supportbot db upgrade --help`)`. Subcommands are declared
    optional and checked here, after unknown arguments: argparse would take `supportbot --bogus` for
    a missing command, and name only `supportbot` for an unknown argument of any subcommand."""
    parser = _parser()
    parsed, unknown = parser.parse_known_args(argv)
    where, missing = _innermost(parser, parsed)
    if unknown:
        where.error(f"unrecognized arguments: {' '.join(unknown)}")
    if missing is not None:
        where.error(f"the following arguments are required: {missing}")
    return parsed


def _innermost(
    parser: argparse.ArgumentParser, parsed: argparse.Namespace
) -> tuple[argparse.ArgumentParser, str | None]:
    """The parser of the subcommand given (`supportbot db upgrade`), and the subcommand it still needs."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(parsed, action.dest, None)
            if chosen is None:
                return parser, action.dest
            return _innermost(action.choices[chosen], parsed)
    return parser, None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="supportbot", description="A support bot for Slack, Discord and the console.")
    parser.add_argument("--version", action="version", version=f"supportbot {__version__}")
    commands = parser.add_subparsers(dest="command")

    init = commands.add_parser("init", help="write a starter kb/, components.yml and .env (never overwrites)")
    init.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR", help="default: here")

    run = commands.add_parser(
        "run",
        help="start the bot (no platform configured: the console in a terminal, else the web server only)",
    )
    run.add_argument("--console", action="store_true", help="chat with the bot in this terminal")
    run.add_argument("--as-staff", action="store_true", help="in the console, act as a staff member")

    db = commands.add_parser("db", help="database: schema, backup, restore")
    db_commands = db.add_subparsers(dest="db_command")
    db_commands.add_parser("upgrade", help="apply migrations (also done on every start)")
    db_commands.add_parser("current", help="print the schema revision")
    backup = db_commands.add_parser(
        "backup", help="SQLite: a consistent copy, also while the bot runs; PostgreSQL: the pg_dump command"
    )
    backup.add_argument("file", type=Path, metavar="FILE")
    restore = db_commands.add_parser(
        "restore", help="SQLite: replace the database with a backup (refused while a bot runs)"
    )
    restore.add_argument("file", type=Path, metavar="FILE")

    privacy = commands.add_parser(
        "privacy", help="privacy requests: export or erase what is stored about a person"
    )
    privacy_commands = privacy.add_subparsers(dest="privacy_command")
    export = privacy_commands.add_parser("export", help="everything stored about a person, as one JSON file")
    export.add_argument("person", metavar="platform:user_id")
    export.add_argument("file", type=Path, metavar="FILE", help="a new file (never overwritten)")
    erase = privacy_commands.add_parser(
        "erase", help="replace a person's words and pseudonymise them everywhere (asks to confirm)"
    )
    erase.add_argument("person", metavar="platform:user_id")
    erase.add_argument("--yes", action="store_true", help="do not ask (for scripts)")

    from bot.insights.cli import add_parser as add_report_parser

    add_report_parser(commands)

    kb = commands.add_parser("kb", help="knowledge base: check, reload, evaluate")
    kb_commands = kb.add_subparsers(dest="kb_command")
    check = kb_commands.add_parser(
        "check", help="validate the YAML files (file:line: problem) and say how the KB will answer"
    )
    check.add_argument("--path", type=Path, help="KB folder or file (default: KB_PATH)")
    check.add_argument("--matcher", choices=("lexical", "semantic"), help="default: what `run` would use")
    reload = kb_commands.add_parser("reload", help="validate, then make the running bot reload")
    reload.add_argument("--path", type=Path, help="KB folder (default: KB_PATH)")
    evaluate = kb_commands.add_parser("eval", help="measure matching on labelled examples and queries")
    evaluate.add_argument("--examples", type=Path, required=True, help='JSONL of {"text", "label"}: the KB')
    evaluate.add_argument("--queries", type=Path, required=True, help='JSONL of {"text", "label" or null}')
    evaluate.add_argument("--matcher", choices=("lexical", "semantic"), help="default: what `run` would use")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument(
        "--no-traffic",
        action="store_true",
        help="keep the point chosen at load instead of adapting it to the queries, as a running bot does",
    )
    return parser


async def _db(settings: Settings, action: str) -> int:
    from storage import migrate
    from storage.db import (
        CANNOT_OPEN,
        Database,
        cannot_open,
        cannot_read_revision,
        cannot_upgrade,
        no_database,
    )

    if action == "current" and (missing := no_database(settings.database_url)) is not None:
        print(f"supportbot db current: {missing}", file=sys.stderr)  # opening it would create it
        return 2
    database = Database.from_url(settings.database_url)
    try:
        try:
            await database.ping()
        except CANNOT_OPEN as error:
            print(f"supportbot db {action}: {cannot_open(settings.database_url, error)}", file=sys.stderr)
            return 2
        if action == "upgrade":
            try:
                await migrate.upgrade(database.engine)
            except (*CANNOT_OPEN, migrate.SchemaRefused) as error:
                log.debug("the schema upgrade failed", exc_info=True)
                said = cannot_upgrade(settings.database_url, error)
                print(f"supportbot db upgrade: {said}", file=sys.stderr)
                return 2
        try:
            await migrate.check_ours_or_new(database.engine)
            revision = await migrate.current_revision(database.engine)
        except migrate.AnotherProgramsDatabase as error:
            print(f"supportbot db {action}: {error}", file=sys.stderr)
            return 2
        except CANNOT_OPEN as error:
            log.debug("reading the schema revision failed", exc_info=True)
            print(
                f"supportbot db {action}: {cannot_read_revision(settings.database_url, error)}",
                file=sys.stderr,
            )
            return 2
        print(f"schema at {revision or 'empty'} (head {migrate.head_revision()})")
    finally:
        await database.dispose()
    return 0


def _init(target: Path) -> int:
    from bot.init_site import init_site, report

    if target.exists() and not target.is_dir():
        print(f"supportbot init: {target} is a file; name a folder (new or existing)", file=sys.stderr)
        return 2
    try:
        result = init_site(target)
    except OSError as error:
        print(f"supportbot init: cannot write into {target}: {error.strerror}", file=sys.stderr)
        return 2
    print(report(target, result))
    return 0


def _backup_or_restore(settings: Settings, action: str, file: Path) -> int:
    from storage import backup

    database = backup.sqlite_file(settings.database_url)
    if database is None:
        if not settings.database_url.startswith("postgresql"):
            print(f"supportbot db {action}: an in-memory database has nothing to keep", file=sys.stderr)
            return 2
        if action == "restore":
            print(
                "supportbot db restore: on PostgreSQL, stop every supportbot process, then restore with "
                f"pg_restore --clean --if-exists --dbname=<your database> {file}",
                file=sys.stderr,
            )
            return 2
        print("# PostgreSQL: run pg_dump (it asks for the password, or reads PGPASSWORD or ~/.pgpass):")
        print(backup.pg_dump_command(settings.database_url, file))
        return 0
    try:
        if action == "backup":
            copy = backup.backup(database, file)
            print(f"backed up {database} to {file}: {copy.tickets} tickets, schema {copy.revision}, ", end="")
            print(f"{copy.size / 1024:.0f} KiB, integrity ok")
        else:
            copy, kept = backup.restore(file, database)
            print(f"restored {database} from {file}: {copy.tickets} tickets, schema {copy.revision}", end="")
            print(f"; the previous database is kept as {kept}" if kept else "")
    except backup.BackupError as error:
        print(f"supportbot db {action}: {error}", file=sys.stderr)
        return 2
    except sqlite3.Error as error:  # a damaged database: SQLite says so, in one line
        problem = f"{database}: {error} (check DATABASE_URL)" if action == "backup" else error
        print(f"supportbot db {action}: {problem}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"supportbot db {action}: {error.filename or file}: {error.strerror}", file=sys.stderr)
        return 2
    return 0


def _privacy(settings: Settings, args: argparse.Namespace) -> int:
    from bot.core import privacy

    action = args.privacy_command
    try:
        subject = privacy.parse_subject(args.person)
    except privacy.SubjectError as error:
        print(f"supportbot privacy {action}: {error}", file=sys.stderr)
        return 2
    if action == "export" and args.file.exists():
        print(f"supportbot privacy export: {args.file} exists; name a new file", file=sys.stderr)
        return 2
    if action == "erase" and not args.yes and not (sys.stdin is not None and sys.stdin.isatty()):
        print(
            "supportbot privacy erase: not asking without a terminal; add --yes to erase without asking",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(_privacy_request(settings, action, subject, args))
    except OSError as error:
        problem = f"{error.filename}: {error.strerror}" if error.filename else str(error)
        print(f"supportbot privacy {action}: {problem}", file=sys.stderr)
        return 2


async def _privacy_request(settings: Settings, action: str, subject: str, args: argparse.Namespace) -> int:
    # Every handler's `@sent_hook` and `@kept_work` classes, as a bot has them: what a claim still
    # owes is read with them (`forget_owed`), and one naming a class not imported cannot be read,
    # so it would keep the person's words for the bot's sweep to post.
    import bot.app  # noqa: F401
    from bot.core import privacy
    from bot.core.clock import utc_now
    from bot.handlers.privacy import forget_owed
    from bot.kb import teach
    from bot.kb.learned import LearnedFileBusy
    from storage import audit_repo
    from storage.db import open_migrated

    where = f"supportbot privacy {action}"
    database = await open_migrated(settings.database_url)
    if isinstance(database, str):
        print(f"{where}: {database}", file=sys.stderr)
        return 2
    try:
        if action == "export":
            async with database.session() as session:
                document = await privacy.export(session, subject=subject, now=utc_now())
            if document is None:
                print(f"{where}: nothing is stored about {subject}", file=sys.stderr)
                return 2
            privacy.write(document, args.file)
            print(f"wrote {args.file}: {privacy.summary(document)}")
            return 0
        async with database.session() as session:
            known = await privacy.export(session, subject=subject, now=utc_now())
        if known is None:
            print(f"{where}: nothing is stored about {subject}", file=sys.stderr)
            return 2
        exports = privacy.exports_folder(settings.database_url)
        if not args.yes:
            print(f"Stored about {subject}: {privacy.summary(known)}.")
            if deleted_too := privacy.exports_text(exports, subject=subject):
                print(deleted_too.replace("`", ""))
            prompt = f"Erase everything about {subject}? Type the id to confirm: "
            try:
                answer: str | None = (await asyncio.to_thread(input, prompt)).strip()
            except EOFError:
                answer = None
            if answer not in (subject, subject.partition(":")[2]):
                why = "no answer" if answer is None else "the id did not match"
                print(f"{where}: not erased ({why})", file=sys.stderr)
                return 1
        try:
            async with database.transaction() as session:
                erasure = await privacy.erase(session, subject=subject, now=utc_now())
                if erasure is not None:
                    # Inside the transaction, as the chat's erasure does it: killed between the
                    # commit and the cleaning, the command would leave their words in learned.yml
                    # for good (run again, it finds nothing stored). The erasure stands even when
                    # the file cannot be cleaned (`forget_erased` says so), but not while another
                    # process holds it: that one is rolled back, to be tried again. A running bot's
                    # watcher loads it. Lessons still to be written and replies not posted yet lose
                    # their words first: a bot's sweep would write or post them after this.
                    erasure = await forget_owed(session, erasure)
                    erasure = await asyncio.to_thread(teach.forget_erased, settings.kb_path, erasure)
                    erasure = await asyncio.to_thread(privacy.forget_exports, exports, erasure)
                    erased = f"{erasure.pseudonym}: {erasure.rows} rows, {erasure.learned} learned questions"
                    await audit_repo.record(
                        session, actor_key="cli", action="privacy.erase", allowed=True, detail=erased
                    )
        except LearnedFileBusy:
            print(f"{where}: {teach.ERASURE_BUSY}", file=sys.stderr)
            return 2
        if erasure is None:
            print(f"{where}: nothing is stored about {subject}", file=sys.stderr)
            return 2
        print(f"erased {subject}: {erasure.text().replace('`', '')}")
        return 0
    finally:
        await database.dispose()


def _console(args: argparse.Namespace, settings: Settings) -> bool:
    """The console when asked for, or when nothing else is configured and a person is at the terminal."""
    if args.console or settings.platforms == ["console"]:
        return True
    return settings.active_platforms == ["console"] and sys.stdin is not None and sys.stdin.isatty()


def _web_only(args: argparse.Namespace, settings: Settings) -> bool:
    """No platform and no terminal (a container, a service): serve the web page and API, never exit
    when stdin ends."""
    return not _console(args, settings) and settings.active_platforms == ["console"]


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import StartupError, run
    from storage.backup import BackupError, held_by_a_bot, sqlite_file
    from storage.sqlite.engine import make_folder

    if not settings.kb_path.exists():
        where = settings.kb_path
        problem = NO_KB if where == Path("kb") else f"KB_PATH={where}: no such file or folder ({NO_KB})"
        print(f"supportbot: {problem}", file=sys.stderr)
        return 2
    web_only = _web_only(args, settings)
    if web_only and not settings.web_enabled:
        print(
            "supportbot: nothing to run: no platform configured, WEB_ENABLED=false and stdin is not a "
            "terminal (set PLATFORMS, or use --console)",
            file=sys.stderr,
        )
        return 2
    database = sqlite_file(settings.database_url)
    if database is not None:
        try:
            make_folder(database)  # before the lock file beside the database makes it without a word
        except OSError as error:
            problem = f"the folder {database.parent}: {error.strerror} (check DATABASE_URL)"
            print(f"supportbot: cannot start: {problem}", file=sys.stderr)
            return 2
    try:
        with held_by_a_bot(database) if database is not None else nullcontext():
            return asyncio.run(
                run(settings, console=_console(args, settings), as_staff=args.as_staff, web_only=web_only)
            )
    except (StartupError, BackupError) as error:
        print(f"supportbot: cannot start: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        # At start-up that is the web server's address: taken, not ours, or not resolvable.
        print(f"supportbot: cannot start: {error} (check WEB_HOST and WEB_PORT)", file=sys.stderr)
        return 2


def _env_file() -> Path | None:
    """The .env file the settings read, if they read one."""
    env_file = Settings.model_config.get("env_file")
    return Path(env_file) if isinstance(env_file, (str, Path)) else None


def _env_file_problem() -> str | None:
    """The first line of the .env file that sets nothing (python-dotenv would only warn and skip it)."""
    from bot import envfile

    env_file = _env_file()
    return None if env_file is None else envfile.problem(env_file)


def _env_file_typos() -> list[str]:
    """Names in the .env file a letter or two away from a setting's, which the settings ignore."""
    from bot import envfile

    env_file = _env_file()
    settings = {name.upper() for name in Settings.model_fields}
    return [] if env_file is None else envfile.misspelt(env_file, settings)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # Whoever read the output went away (`supportbot kb check | head -1`): stop quietly, as other
        # command-line tools do, with nothing left for Python to flush into the closed pipe at exit.
        from bot.adapters.console import silence

        silence(sys.stdout)
        return 1


def _main(argv: Sequence[str] | None) -> int:
    args = _parse(argv)
    if args.command == "init":
        return _init(args.dir)  # needs no settings: there may be no .env yet
    if (problem := _env_file_problem()) is not None:
        print(f"supportbot: {problem}", file=sys.stderr)
        return 2
    for warning in _env_file_typos():
        print(f"supportbot: {warning}", file=sys.stderr)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"supportbot: setting {error}", file=sys.stderr)
        return 2
    # Console chat owns stdout; logs go to stderr, and only warnings, not to crowd the chat.
    chat = args.command == "run" and _console(args, settings)
    configure(
        "WARNING" if chat else settings.log_level, stream=sys.stderr, json_lines=settings.log_format == "json"
    )
    if chat:
        # But for the folder made for a new database: a mistyped DATABASE_URL would start an empty one unsaid.
        from storage.sqlite.engine import folder_made

        folder_made.setLevel(settings.log_level)
    if args.command == "db":
        if args.db_command in ("backup", "restore"):
            return _backup_or_restore(settings, args.db_command, args.file)
        return asyncio.run(_db(settings, args.db_command))
    if args.command == "privacy":
        return _privacy(settings, args)
    if args.command == "report":
        from bot.insights.cli import report_command

        return report_command(args, settings)
    if args.command == "kb":
        from bot.kb.cli import kb_command

        return kb_command(args, settings)
    if args.command == "run":
        if settings.sentry_dsn is not None:
            try:
                report_errors_to_sentry(
                    settings.sentry_dsn.get_secret_value(), release=f"supportbot@{__version__}"
                )
            except ErrorReportingUnavailable as error:
                print(f"supportbot: {error}", file=sys.stderr)
                return 2
        return _run(args, settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
