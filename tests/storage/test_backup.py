"""`supportbot db backup` and `db restore`: a consistent copy while the bot runs, a restore that refuses
what it must (a running bot, a file that is not ours) and a bot that starts on what it restored."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from storage import tickets_repo
from storage.backup import pg_dump_command
from storage.db import Database

ROOT = Path(__file__).resolve().parents[2]


def _env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_SECRET", "_URL"))}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite+aiosqlite:///{folder}/data/supportbot.db",
        KB_PATH=str(ROOT / "tests" / "data" / "kb"),
        COMPONENTS_FILE=str(ROOT / "tests" / "data" / "components.yml"),
        MATCHER="lexical",
        WEB_ENABLED="false",
    )
    env.update(extra)
    return env


def supportbot(folder: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """The command in a process of its own (for a bot that runs, or a call inside a running loop)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(folder, **env),
        cwd=folder,
        timeout=120,
    )


Supportbot = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Supportbot]:
    """The command in this process (a second faster than a new one), same environment as `supportbot`."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def call(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patch:
            for name in os.environ:
                if name.endswith(("_TOKEN", "_SECRET", "_URL")):
                    patch.delenv(name)
            for name, value in _env(folder, **env).items():
                patch.setenv(name, value)
            patch.chdir(folder)
            capsys.readouterr()
            code = main(list(args))
            out, err = capsys.readouterr()
            root.handlers[:] = handlers  # main() logs to the stderr pytest captured for this call
            root.setLevel(level)
        return subprocess.CompletedProcess(list(args), code, out, err)

    yield call


@contextmanager
def running_console_bot(folder: Path) -> Iterator[subprocess.Popen[str]]:
    """A real bot on the console, asked a question again and again until the block ends."""
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(folder),
        cwd=folder,
    )
    assert bot.stdin is not None and bot.stdout is not None
    started = bot.stdout.readline()
    assert "supportbot console" in started, started + bot.stderr.read() if bot.stderr else ""
    answers: list[str] = []
    reader = threading.Thread(target=lambda: answers.extend(bot.stdout or []), daemon=True)
    reader.start()
    stop = threading.Event()

    def ask() -> None:
        questions = ("how do I get a refund?", "where is my invoice?", "is the api down?")
        number = 0
        while not stop.is_set():
            bot.stdin.write(f"{questions[number % len(questions)]} ({number})\n")  # type: ignore[union-attr]
            bot.stdin.flush()  # type: ignore[union-attr]
            number += 1
            stop.wait(0.005)

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    try:
        yield bot
    finally:
        stop.set()
        asker.join()
        bot.stdin.close()
        bot.wait(timeout=60)
        reader.join(timeout=10)
    assert bot.returncode == 0
    assert len(answers) > 10, "the bot answered little: no traffic ran"


async def open_ticket(database: Database, number: int) -> None:
    now = datetime.now(UTC)
    async with database.transaction() as session:
        await tickets_repo.open_ticket(
            session,
            requester_key=f"console:customer-{number}",
            requester_name=f"Customer {number}",
            platform="console",
            workspace_id="",
            channel_id=f"dm-{number}",
            thread_id=None,
            is_direct=True,
            conversation_key=f"console::dm-{number}",
            summary=f"export {number} failed",
            reason="requested",
            priority="normal",
            now=now,
            first_response_due=now + timedelta(hours=4),
            first_line=tickets_repo.NewLine(
                kind="customer", text=f"export {number} failed", author_name=f"Customer {number}", at=now
            ),
            author_key=f"console:customer-{number}",
        )


def tickets_in(path: Path) -> dict[int, str]:
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT t.number, t.summary, count(m.id) FROM tickets t "
            "LEFT JOIN ticket_messages m ON m.ticket_id = t.id GROUP BY t.id"
        ).fetchall()
    assert all(messages >= 1 for _, _, messages in rows), "a ticket without its first message: torn copy"
    return {number: summary for number, summary, _ in rows}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_backup_while_the_bot_runs_restores_into_a_new_folder_with_every_ticket(
    tmp_path: Path, command: Supportbot
) -> None:
    live, elsewhere = tmp_path / "live", tmp_path / "elsewhere"
    live.mkdir()
    elsewhere.mkdir()
    backup_file = tmp_path / "backups" / "supportbot.db"
    backup_file.parent.mkdir()
    database = Database.from_url(f"sqlite+aiosqlite:///{live}/data/supportbot.db")
    opened = 0
    try:
        with running_console_bot(live):
            stop_writing, thirty = asyncio.Event(), asyncio.Event()

            async def write_tickets() -> None:
                nonlocal opened
                while not stop_writing.is_set() or opened < 60:
                    opened += 1
                    await open_ticket(database, opened)
                    if opened == 30:
                        thirty.set()
                    await asyncio.sleep(0.002)

            writer = asyncio.create_task(write_tickets())
            await thirty.wait()
            before_backup = opened
            backup = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "db",
                "backup",
                str(backup_file),
                env=_env(live),
                cwd=live,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await backup.communicate()
            after_backup = opened
            assert after_backup > before_backup, "no ticket was written while the backup ran"
            stop_writing.set()
            await writer
            assert backup.returncode == 0, err.decode()
            assert "integrity ok" in out.decode()

            # A bot holds the database: restore refuses and leaves it alone.
            refused = command(live, "db", "restore", str(backup_file))
            assert refused.returncode == 2
            assert refused.stderr.splitlines() == [
                f"supportbot db restore: a running supportbot uses {live}/data/supportbot.db: "
                "stop it first, then restore"
            ]
            mine = set(tickets_in(live / "data" / "supportbot.db").values())
            assert {f"export {n} failed" for n in range(1, opened + 1)} <= mine
    finally:
        await database.dispose()

    with closing(sqlite3.connect(backup_file)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    saved = tickets_in(backup_file)
    # A consistent snapshot: every ticket opened before the backup began, numbers without a gap, and
    # nothing the live database does not have (the console bot opens tickets of its own, too).
    written = {int(s.split()[1]) for s in saved.values() if s.startswith("export ")}
    assert set(range(1, before_backup + 1)) <= written <= set(range(1, after_backup + 1))
    assert written == set(range(1, max(written) + 1))
    assert sorted(saved) == list(range(1, len(saved) + 1))
    live_tickets = tickets_in(live / "data" / "supportbot.db")
    assert all(live_tickets[number] == summary for number, summary in saved.items())

    restored = command(elsewhere, "db", "restore", str(backup_file))
    assert restored.returncode == 0, restored.stderr
    assert f"{len(saved)} tickets" in restored.stdout
    last = max(saved)
    chat = supportbot(elsewhere, "run", "--console", "--as-staff", stdin=f"/ticket status {last}\n/tickets\n")
    assert chat.returncode == 0, chat.stderr
    assert saved[last] in chat.stdout, chat.stdout
    assert tickets_in(elsewhere / "data" / "supportbot.db") == saved


def test_restore_keeps_the_previous_database_beside_it(tmp_path: Path, command: Supportbot) -> None:
    assert command(tmp_path, "db", "upgrade").returncode == 0
    assert command(tmp_path, "db", "backup", "empty.db").returncode == 0
    database = tmp_path / "data" / "supportbot.db"
    asyncio.run(_open_one(database))
    result = command(tmp_path, "db", "restore", "empty.db")
    assert result.returncode == 0, result.stderr
    assert tickets_in(database) == {}
    assert tickets_in(database.with_name("supportbot.db.before-restore")) == {1: "export 1 failed"}
    assert not database.with_name("supportbot.db-wal").exists()


def test_a_second_restore_never_replaces_the_database_the_first_set_aside(
    tmp_path: Path, command: Supportbot
) -> None:
    assert command(tmp_path, "db", "upgrade").returncode == 0
    assert command(tmp_path, "db", "backup", "empty.db").returncode == 0
    database = tmp_path / "data" / "supportbot.db"
    asyncio.run(_open_one(database))  # the team's only copy of ticket 1
    assert command(tmp_path, "db", "restore", "empty.db").returncode == 0
    again = command(tmp_path, "db", "restore", "empty.db")  # by mistake, or to be sure
    assert again.returncode == 0, again.stderr
    assert "supportbot.db.before-restore-2" in again.stdout
    assert tickets_in(database.with_name("supportbot.db.before-restore")) == {1: "export 1 failed"}
    assert tickets_in(database.with_name("supportbot.db.before-restore-2")) == {}


def test_a_restore_after_a_removed_copy_sets_aside_past_the_newest(
    tmp_path: Path, command: Supportbot
) -> None:
    """The highest number is the newest copy, also after the team deleted one in the middle: a
    restore never fills the gap (that would make an older copy look newer than this one)."""
    assert command(tmp_path, "db", "upgrade").returncode == 0
    assert command(tmp_path, "db", "backup", "empty.db").returncode == 0
    database = tmp_path / "data" / "supportbot.db"
    for kept in ("supportbot.db.before-restore", "supportbot.db.before-restore-3"):
        shutil.copy(tmp_path / "empty.db", database.with_name(kept))
    result = command(tmp_path, "db", "restore", "empty.db")
    assert result.returncode == 0, result.stderr
    assert "supportbot.db.before-restore-4" in result.stdout
    assert not database.with_name("supportbot.db.before-restore-2").exists()


async def _open_one(path: Path) -> None:
    database = Database.from_url(f"sqlite+aiosqlite:///{path}")
    try:
        await open_ticket(database, 1)
    finally:
        await database.dispose()


def _plain_sqlite(path: Path) -> None:
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.commit()


def _future_schema(path: Path, tmp_path: Path) -> None:
    shutil.copy(tmp_path / "data" / "supportbot.db", path)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        connection.commit()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda path, _: path.write_text("hello"), "is not a SQLite database"),
        (lambda path, _: _plain_sqlite(path), "not supportbot's (no alembic_version table)"),
        (_future_schema, "has schema 9999_from_the_future, which this supportbot does not know"),
        (lambda path, _: None, "no such file"),
    ],
)
def test_restore_refuses_what_is_not_a_supportbot_backup_without_touching_the_database(
    tmp_path: Path, command: Supportbot, make: Callable[[Path, Path], object], says: str
) -> None:
    assert command(tmp_path, "db", "upgrade").returncode == 0
    database = tmp_path / "data" / "supportbot.db"
    asyncio.run(_open_one(database))
    before = digest(database)
    candidate = tmp_path / "candidate.db"
    make(candidate, tmp_path)
    result = command(tmp_path, "db", "restore", str(candidate))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("supportbot db restore: ") and says in line, line
    assert digest(database) == before
    assert not database.with_name("supportbot.db.before-restore").exists()


def test_a_backup_holds_personal_data_so_only_its_owner_may_read_it(
    tmp_path: Path, command: Supportbot
) -> None:
    """A backup is every ticket and every person's words: made 0644, anyone on the host reads it."""
    assert command(tmp_path, "db", "upgrade").returncode == 0
    assert command(tmp_path, "db", "backup", "b.db").returncode == 0
    assert (tmp_path / "b.db").stat().st_mode & 0o777 == 0o600


def test_backup_never_overwrites_a_file_that_is_not_a_backup(tmp_path: Path, command: Supportbot) -> None:
    assert command(tmp_path, "db", "upgrade").returncode == 0
    (tmp_path / "notes.txt").write_text("keep me")
    result = command(tmp_path, "db", "backup", "notes.txt")
    assert result.returncode == 2
    assert "is not a SQLite database" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert command(tmp_path, "db", "backup", "b.db").returncode == 0
    assert command(tmp_path, "db", "backup", "b.db").returncode == 0, "an earlier backup is replaced"


def test_backup_without_a_database_is_one_line_and_exit_2(tmp_path: Path, command: Supportbot) -> None:
    result = command(tmp_path, "db", "backup", "b.db")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "no database at" in line and "DATABASE_URL" in line


POSTGRES = "postgresql+asyncpg://support:hunter2@db.example.com:5433/supportbot?ssl=require"


def test_on_postgres_backup_prints_pg_dump_without_the_password(tmp_path: Path, command: Supportbot) -> None:
    result = command(tmp_path, "db", "backup", "nightly.dump", DATABASE_URL=POSTGRES)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    printed = result.stdout.splitlines()[-1]
    assert printed == (
        "pg_dump --format=custom --file=nightly.dump "
        "'--dbname=postgresql://support@db.example.com:5433/supportbot?sslmode=require'"
    )


def test_pg_dump_command_quotes_what_the_shell_would_split() -> None:
    command = pg_dump_command("postgresql+asyncpg://a:p%40ss@h/db", Path("my backups/x.dump"))
    assert "p@ss" not in command and "p%40ss" not in command
    assert "'--file=my backups/x.dump'" in command


def test_on_postgres_restore_says_to_stop_the_bots_and_use_pg_restore(
    tmp_path: Path, command: Supportbot
) -> None:
    """A running bot keeps decision ids it reserved from the sequence a restore resets (and would
    write into the database being replaced): stopping every process comes first."""
    result = command(tmp_path, "db", "restore", "nightly.dump", DATABASE_URL=POSTGRES)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "stop every supportbot process" in line and "pg_restore" in line and "hunter2" not in line


def _no_database(tmp_path: Path, kind: str) -> str:
    """A DATABASE_URL naming `kind` ("a text file" or "a folder") where a database should be."""
    wrong = tmp_path / "notes"
    if kind == "a folder":
        wrong.mkdir()
    else:
        wrong.write_text("not a database\n")
    return f"sqlite+aiosqlite:///{wrong}"


@pytest.mark.parametrize("kind", ["a text file", "a folder"])
@pytest.mark.parametrize(
    "args",
    [
        ("db", "upgrade"),
        ("db", "backup", "b.db"),
        ("report", "--days", "7", "--out", "reports"),
        ("privacy", "export", "console:U7CASEY", "casey.json"),
    ],
)
def test_a_database_url_naming_no_database_is_one_line_and_exit_2(
    tmp_path: Path, command: Supportbot, kind: str, args: tuple[str, ...]
) -> None:
    result = command(tmp_path, *args, DATABASE_URL=_no_database(tmp_path, kind))
    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert "DATABASE_URL" in line, line


@pytest.mark.parametrize(
    ("kind", "says"), [("a text file", "file is not a database"), ("a folder", "unable to open")]
)
def test_run_on_a_database_url_naming_no_database_is_one_line_and_exit_2(
    tmp_path: Path, kind: str, says: str
) -> None:
    result = supportbot(tmp_path, "run", "--console", DATABASE_URL=_no_database(tmp_path, kind))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert says in line and "DATABASE_URL" in line and "WEB_PORT" not in line, line


def test_a_database_of_another_program_says_the_upgrade_failed_not_to_check_the_url(
    tmp_path: Path, command: Supportbot
) -> None:
    """The URL names a database, but one the schema cannot be brought onto: not a wrong URL. The
    traceback (a migration's own bug looks the same from here) is logged at DEBUG."""

    def theirs(name: str) -> str:
        path = tmp_path / name
        with closing(sqlite3.connect(path)) as connection:
            connection.execute("CREATE TABLE processed_events (whatever TEXT)")
            connection.commit()
        return f"sqlite+aiosqlite:///{path}"

    for args in (("db", "upgrade"), ("run", "--console")):
        result = command(tmp_path, *args, DATABASE_URL=theirs(f"{args[0]}.db"))
        assert result.returncode == 2, result
        (line,) = result.stderr.splitlines()
        assert "the schema upgrade failed: table processed_events already exists" in line, line
        assert "check DATABASE_URL" not in line
    debug = command(tmp_path, "db", "upgrade", DATABASE_URL=theirs("debug.db"), LOG_LEVEL="DEBUG")
    assert "Traceback" in debug.stderr


def test_an_upgrade_that_fails_half_way_leaves_another_programs_database_as_it_was(
    tmp_path: Path, command: Supportbot
) -> None:
    """Its tables do not clash with the first migrations, only with a later one: the error is one
    line, and the file holds what it held, none of the tables made before the clash."""
    path = tmp_path / "theirs.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE their_notes (body TEXT)")
        connection.execute("INSERT INTO their_notes VALUES ('keep me')")
        connection.execute("CREATE TABLE status_components (whatever TEXT)")
        connection.commit()

    def schema() -> list[tuple[str, str, str | None]]:
        with closing(sqlite3.connect(path)) as connection:
            return connection.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()

    before = schema()
    result = command(tmp_path, "db", "upgrade", DATABASE_URL=f"sqlite+aiosqlite:///{path}")
    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert "the schema upgrade failed: table status_components already exists" in line, line
    assert schema() == before
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT body FROM their_notes").fetchall() == [("keep me",)]


def test_db_current_on_a_database_whose_revision_cannot_be_read_is_one_line(
    tmp_path: Path, command: Supportbot
) -> None:
    """The file opens (the ping passes) but its alembic_version is not ours: one line, exit 2, as
    before the ping was split out, not a traceback."""
    path = tmp_path / "theirs.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE alembic_version (whatever TEXT)")
        connection.commit()
    result = command(tmp_path, "db", "current", DATABASE_URL=f"sqlite+aiosqlite:///{path}")
    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert line.startswith("supportbot db current: database ") and "version_num" in line, line


@pytest.mark.parametrize("args", [("db", "upgrade"), ("run", "--console")])
def test_a_database_of_a_newer_version_is_one_line_and_exit_2(
    tmp_path: Path, command: Supportbot, args: tuple[str, ...]
) -> None:
    """A deploy rolled back after a newer version upgraded the schema (or another program's alembic
    database): this version has no migration of that name, and says so instead of a traceback."""
    assert command(tmp_path, "db", "upgrade").returncode == 0
    _future_schema(tmp_path / "newer.db", tmp_path)
    before = digest(tmp_path / "newer.db")
    result = command(tmp_path, *args, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'newer.db'}")
    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert "schema 9999_from_the_future, which this supportbot does not know" in line, line
    assert digest(tmp_path / "newer.db") == before


def test_db_current_on_a_path_with_no_database_creates_nothing(tmp_path: Path, command: Supportbot) -> None:
    """Asking which schema a mistyped DATABASE_URL has must not leave an empty database (and its
    folders) where the typo points, for the next `run` to fill."""
    typo = tmp_path / "dta" / "supportbot.db"
    result = command(tmp_path, "db", "current", DATABASE_URL=f"sqlite+aiosqlite:///{typo}")
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [
        f"supportbot db current: no database at {typo} (check DATABASE_URL)"
    ]
    assert not typo.parent.exists()


def test_an_upgrade_that_has_to_create_the_databases_folder_says_so_once(
    tmp_path: Path, command: Supportbot
) -> None:
    """A mistyped DATABASE_URL (`dta` for `data`) gets a new empty database in a new folder: the
    person who typed it is told which folder was made, and not again once it is there."""
    typo = tmp_path / "dta" / "supportbot.db"
    said = f"created the folder {typo.parent} for the SQLite database (check DATABASE_URL if"

    first = command(tmp_path, "db", "upgrade", DATABASE_URL=f"sqlite+aiosqlite:///{typo}")
    again = command(tmp_path, "db", "upgrade", DATABASE_URL=f"sqlite+aiosqlite:///{typo}")

    assert first.returncode == 0 and again.returncode == 0, (first, again)
    assert [line for line in first.stderr.splitlines() if said in line], first.stderr
    assert " INFO storage.sqlite.engine.folder " in first.stderr
    assert "created the folder" not in again.stderr


def test_a_console_chat_that_has_to_create_the_databases_folder_says_so_too(tmp_path: Path) -> None:
    """The console logs only warnings (its chat owns the terminal), but a mistyped DATABASE_URL
    there starts a new empty database all the same: the folder made for it is named, once."""
    typo = tmp_path / "dta" / "supportbot.db"
    said = f"created the folder {typo.parent} for the SQLite database (check DATABASE_URL if"

    first = supportbot(
        tmp_path, "run", "--console", stdin="help\n", DATABASE_URL=f"sqlite+aiosqlite:///{typo}"
    )
    again = supportbot(
        tmp_path, "run", "--console", stdin="help\n", DATABASE_URL=f"sqlite+aiosqlite:///{typo}"
    )

    assert first.returncode == 0 and again.returncode == 0, (first.stderr, again.stderr)
    lines = first.stderr.splitlines()
    assert [line for line in lines if said in line], first.stderr
    assert [line for line in lines if " INFO " in line and said not in line] == [], "no other below a warning"
    assert "created the folder" not in again.stderr


def test_a_database_folder_that_cannot_be_made_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the folder should be")
    result = supportbot(tmp_path, "run", "--console", stdin="help\n")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"supportbot: cannot start: the folder {tmp_path / 'data'}: File exists (check DATABASE_URL)"
    ]


def test_db_current_on_another_programs_database_says_whose_it_is_not(
    tmp_path: Path, command: Supportbot
) -> None:
    """ "schema at empty" would tell the operator the next start sets it up; it would be refused."""
    theirs = tmp_path / "theirs.db"
    _plain_sqlite(theirs)
    result = command(tmp_path, "db", "current", DATABASE_URL=f"sqlite+aiosqlite:///{theirs}")
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [
        "supportbot db current: another program's database (its tables: notes); "
        "name a file of supportbot's own, new or made by it"
    ]
    assert result.stdout == ""


def test_a_one_shot_command_on_another_programs_database_says_so(tmp_path: Path, command: Supportbot) -> None:
    """Not "run db upgrade", which would only be refused in turn."""
    theirs = tmp_path / "theirs.db"
    _plain_sqlite(theirs)
    out = tmp_path / "export.json"
    result = command(
        tmp_path, "privacy", "export", "console:ana", str(out), DATABASE_URL=f"sqlite+aiosqlite:///{theirs}"
    )
    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert "another program's database (its tables: notes)" in line, line
    assert not out.exists()


@pytest.mark.parametrize("action", ["backup", "restore"])
def test_a_folder_named_as_the_backup_file_is_called_a_folder(
    tmp_path: Path, command: Supportbot, action: str
) -> None:
    """`db backup backups/` is a natural slip; 'no such file' would send the user looking for one."""
    assert command(tmp_path, "db", "upgrade").returncode == 0
    (tmp_path / "backups").mkdir()
    result = command(tmp_path, "db", action, "backups")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"supportbot db {action}: backups is a folder; name a file (e.g. backups/supportbot.db)"
    ]


def _refused_as_theirs(tmp_path: Path, command: Supportbot, args: tuple[str, ...], path: Path) -> list[Any]:
    """Run `args` on another program's SQLite file holding `moz_places`: one line naming it, exit 2,
    and the file's format left alone; its tables afterwards, by name."""
    result = command(tmp_path, *args, DATABASE_URL=f"sqlite+aiosqlite:///{path}")
    assert result.returncode == 2, result
    (line,) = result.stderr.splitlines()
    assert "another program's database (its tables: moz_places)" in line, line
    with closing(sqlite3.connect(path)) as connection:
        # Nor its file format: WAL, once set, stays in the file and needs -wal and -shm files beside
        # it, which a program that never asked for them may not expect (or be allowed to write).
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        return connection.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall()


@pytest.mark.parametrize("args", [("db", "upgrade"), ("run", "--console")])
def test_a_database_of_another_program_is_refused_even_where_nothing_clashes(
    tmp_path: Path, command: Supportbot, args: tuple[str, ...]
) -> None:
    """A DATABASE_URL naming another program's SQLite file by mistake: none of its tables has one
    of our names, so every migration would run, and the bot would keep its tickets in that file."""
    path = tmp_path / "theirs.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE moz_places (url TEXT)")
        connection.execute("INSERT INTO moz_places VALUES ('https://example.com')")
        connection.commit()
    assert _refused_as_theirs(tmp_path, command, args, path) == [("moz_places",)]
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("SELECT url FROM moz_places").fetchall() == [("https://example.com",)]


@pytest.mark.parametrize("args", [("db", "upgrade"), ("db", "current")])
def test_another_alembic_programs_database_at_base_is_refused_too(
    tmp_path: Path, command: Supportbot, args: tuple[str, ...]
) -> None:
    """An empty alembic_version (another alembic program's, downgraded to base) beside its tables:
    ours never has tables without a revision, since one transaction writes both."""
    path = tmp_path / "theirs.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("CREATE TABLE moz_places (url TEXT)")
        connection.commit()
    assert _refused_as_theirs(tmp_path, command, args, path) == [("alembic_version",), ("moz_places",)]


def test_a_new_database_that_litestream_already_replicates_is_set_up_not_refused(
    tmp_path: Path, command: Supportbot
) -> None:
    """Litestream started on the empty file before the bot's first start: its two control tables
    (and WAL mode) are there, which are not another program's data; the bot sets up its schema
    beside them and leaves them be."""
    path = tmp_path / "supportbot.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode = wal")
        connection.execute("CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER)")
        connection.execute("CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER)")
        connection.execute("INSERT INTO _litestream_seq (id, seq) VALUES (1, 1)")
        connection.commit()
    result = command(tmp_path, "db", "upgrade", DATABASE_URL=f"sqlite+aiosqlite:///{path}")
    assert result.returncode == 0, result
    with closing(sqlite3.connect(path)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"_litestream_seq", "_litestream_lock", "tickets", "alembic_version"} <= tables
        assert connection.execute("SELECT seq FROM _litestream_seq").fetchall() == [(1,)]


def test_backup_of_another_programs_database_names_it_and_writes_nothing(
    tmp_path: Path, command: Supportbot
) -> None:
    """DATABASE_URL names another program's SQLite file: the copy was made, then refused as 'not
    supportbot's' under the backup's name, and left there, where the next backup may not replace it."""
    theirs = tmp_path / "theirs.db"
    _plain_sqlite(theirs)
    result = command(tmp_path, "db", "backup", "b.db", DATABASE_URL=f"sqlite+aiosqlite:///{theirs}")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"supportbot db backup: {theirs} is a SQLite database but not supportbot's "
        "(no alembic_version table; check DATABASE_URL)"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.db"]


def test_restore_never_replaces_another_programs_database(tmp_path: Path, command: Supportbot) -> None:
    """DATABASE_URL naming another program's SQLite file by mistake: a restore would swap that
    program's data out from under it (kept aside, but under a name it does not know)."""
    assert command(tmp_path, "db", "upgrade").returncode == 0
    assert command(tmp_path, "db", "backup", "b.db").returncode == 0
    theirs = tmp_path / "theirs.db"
    _plain_sqlite(theirs)
    before = digest(theirs)
    result = command(tmp_path, "db", "restore", "b.db", DATABASE_URL=f"sqlite+aiosqlite:///{theirs}")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"supportbot db restore: {theirs} (DATABASE_URL) is another program's database "
        "(no alembic_version table); not replacing it"
    ]
    assert digest(theirs) == before
    assert not theirs.with_name("theirs.db.before-restore").exists()


def test_backup_into_a_folder_that_does_not_exist_creates_none(tmp_path: Path, command: Supportbot) -> None:
    """A typo in the path (`backpus/nightly/`) is refused, not made into a tree of folders."""
    assert command(tmp_path, "db", "upgrade").returncode == 0
    (tmp_path / "backups").mkdir()
    result = command(tmp_path, "db", "backup", "backpus/nightly/b.db")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "supportbot db backup: there is no folder backpus/nightly; check the path, or create it first"
    ]
    assert not (tmp_path / "backpus").exists()
    assert command(tmp_path, "db", "backup", "backups/b.db").returncode == 0, "one that exists is fine"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be made")
def test_a_backup_where_no_file_can_be_made_blames_the_destination_not_the_database(
    tmp_path: Path, command: Supportbot
) -> None:
    assert command(tmp_path, "db", "upgrade").returncode == 0
    result = command(tmp_path, "db", "backup", "/proc/x.db")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("supportbot db backup: cannot write /proc/x.db ("), line
    assert line.endswith("); choose a folder you can write in"), line
    assert "DATABASE_URL" not in line and "supportbot.db" not in line


@pytest.mark.parametrize("action", ["backup", "restore"])
def test_a_device_named_as_the_backup_file_is_called_not_a_regular_file(
    tmp_path: Path, command: Supportbot, action: str
) -> None:
    """/dev/null exists: 'no such file' would send the user looking for one."""
    assert command(tmp_path, "db", "upgrade").returncode == 0
    result = command(tmp_path, "db", action, "/dev/null")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"supportbot db {action}: /dev/null is not a regular file; name a file"
    ]
