"""Backups: an online, consistent copy of a SQLite database, its restore, and pg_dump's command line.

A running bot holds a shared lock on `<database>.lock` (`held_by_a_bot`); a restore takes it
exclusively, so it refuses while any bot runs on the database and no bot starts while it swaps files.
The lock is flock(2) on a file of its own: it ends with the process, even a killed one, and never
touches SQLite's own locks on the database file.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import URL, make_url

try:
    import fcntl
except ImportError:  # not a POSIX system: no lock, and restore refuses (see _exclusive)
    fcntl = None  # type: ignore[assignment]

SQLITE_MAGIC = b"SQLite format 3\x00"
_OUR_TABLES = ("alembic_version", "tickets", "processed_events")


class BackupError(Exception):
    """What the operator must fix, in one line."""


@dataclass(frozen=True)
class Copy:
    path: Path
    revision: str
    tickets: int
    size: int


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:" or "mode=memory" in str(url):
        return None
    return Path(parsed.database)


def lock_file(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextmanager
def held_by_a_bot(database: Path) -> Iterator[None]:
    """Held by every running bot (shared): `restore` refuses while anyone holds it."""
    if fcntl is None:
        yield
        return
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        lock = open(lock_file(database), "a+b")  # noqa: SIM115 (closed below, after the yield)
    except OSError as error:
        raise BackupError(f"cannot open the lock file {lock_file(database)}: {error.strerror}") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"{database} is being restored; start the bot when that is done") from None
        yield


@contextmanager
def _exclusive(database: Path) -> Iterator[None]:
    if fcntl is None:
        raise BackupError("restore needs a POSIX system (it cannot tell here whether a bot is running)")
    with open(lock_file(database), "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"a running supportbot uses {database}: stop it first, then restore") from None
        yield


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=10)


def _missing_table(connection: sqlite3.Connection) -> str | None:
    """The first of the tables every supportbot database has that this one lacks, else None."""
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return next((table for table in _OUR_TABLES if table not in tables), None)


def check_database(path: Path) -> str:
    """The schema revision of a supportbot database file, or BackupError saying what it is not."""
    if path.is_dir():
        raise BackupError(f"{path} is a folder; name a file (e.g. {path / 'supportbot.db'})")
    if not path.exists():
        raise BackupError(f"{path}: no such file")
    if not path.is_file():  # a device (/dev/null), a pipe or a socket: not something to keep
        raise BackupError(f"{path} is not a regular file; name a file")
    with open(path, "rb") as head:
        if head.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise BackupError(f"{path} is not a SQLite database, so not a supportbot backup")
    try:
        with closing(_read_only(path)) as connection:
            if (missing := _missing_table(connection)) is not None:
                raise BackupError(f"{path} is a SQLite database but not supportbot's (no {missing} table)")
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            problem = connection.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path}: unreadable as a database ({error})") from None
    if problem != "ok":
        raise BackupError(f"{path} is damaged (quick_check: {problem})")
    from storage.migrate import known_revisions

    if row is None or row[0] not in known_revisions():
        raise BackupError(
            f"{path} has schema {row[0] if row else 'none'}, which this supportbot does not know "
            "(made by a newer version?)"
        )
    return str(row[0])


def _copy(source: sqlite3.Connection, temporary: Path, destination: Path) -> None:
    """A consistent copy in one step (one read transaction: writers carry on beside it in WAL mode),
    as a single self-contained file (rollback journal, so no -wal file belongs with it)."""
    temporary.unlink(missing_ok=True)
    try:
        # Made first, so a folder that takes no files (read-only, /proc) is named as the fault;
        # SQLite would say only "unable to open database file", as for a database it cannot open.
        # Owner-only: a backup holds every person's words, so no one else on the host may read it.
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        raise BackupError(
            f"cannot write {destination} ({error.strerror}); choose a folder you can write in"
        ) from None
    with closing(sqlite3.connect(temporary)) as target:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")
        problem = target.execute("PRAGMA integrity_check").fetchone()[0]
    if problem != "ok":
        temporary.unlink(missing_ok=True)
        raise BackupError(f"the copy failed its integrity check ({problem}); nothing was replaced")
    _fsync(temporary)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _replace(temporary: Path, path: Path) -> None:
    os.replace(temporary, path)
    _fsync(path.parent)


def _describe(path: Path) -> Copy:
    revision = check_database(path)
    with closing(_read_only(path)) as connection:
        tickets = connection.execute("SELECT count(*) FROM tickets").fetchone()[0]
    return Copy(path=path, revision=revision, tickets=tickets, size=path.stat().st_size)


def backup(database: Path, target: Path) -> Copy:
    """Copy the live database to `target` (replacing an earlier backup there, never another file)."""
    if not database.is_file():
        raise BackupError(f"no database at {database}: nothing to back up (check DATABASE_URL)")
    if target.exists():
        if target.resolve() == database.resolve():
            raise BackupError(f"{target} is the database itself; choose another file")
        check_database(target)  # only an earlier backup may be replaced
    if not target.parent.is_dir():
        # Not created: a typo in the path would leave a tree of folders, and the backup where
        # nobody looks for it.
        raise BackupError(f"there is no folder {target.parent}; check the path, or create it first")
    temporary = target.with_name(f".{target.name}.partial")
    with closing(sqlite3.connect(database, timeout=10)) as source:
        # Before copying: the copy of another program's database would be refused only under the
        # backup's name, and left where it blocks the next backup.
        if (missing := _missing_table(source)) is not None:
            raise BackupError(
                f"{database} is a SQLite database but not supportbot's (no {missing} table; "
                "check DATABASE_URL)"
            )
        _copy(source, temporary, target)
    _replace(temporary, target)
    return _describe(target)


def restore(source: Path, database: Path) -> tuple[Copy, Path | None]:
    """Replace `database` with the backup `source`. Returns the new database and where the previous
    one was kept. Nothing is touched unless the backup checks out and no bot uses the database."""
    check_database(source)
    if database.exists():
        if database.resolve() == source.resolve():
            raise BackupError(f"{source} is the database itself; nothing to restore")
        with open(database, "rb") as head:
            if head.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise BackupError(f"{database} (DATABASE_URL) is not a SQLite database; not replacing it")
        if (missing := _theirs(database)) is not None:
            raise BackupError(
                f"{database} (DATABASE_URL) is another program's database (no {missing} table); "
                "not replacing it"
            )
    database.parent.mkdir(parents=True, exist_ok=True)
    temporary = database.with_name(f".{database.name}.restoring")
    with _exclusive(database):
        with closing(_read_only(source)) as reader:
            _copy(reader, temporary, database)
        kept = None
        try:
            if database.exists():
                kept = _set_aside(database)
            _replace(temporary, database)
        finally:
            temporary.unlink(missing_ok=True)
    return _describe(database), kept


def _theirs(database: Path) -> str | None:
    """The table of ours that a SQLite file holding other tables lacks (another program's database),
    else None: also for an empty file, and one too damaged to tell, which is what restores are for."""
    try:
        with closing(_read_only(database)) as connection:
            if connection.execute("SELECT 1 FROM sqlite_master WHERE type='table'").fetchone() is None:
                return None
            return _missing_table(connection)
    except sqlite3.DatabaseError:
        return None


def _set_aside(database: Path) -> Path:
    """Fold the WAL into the current database and keep it beside as `<name>.before-restore` (or
    `-2`, `-3`, ... after it: an earlier one is never replaced)."""
    try:
        with closing(sqlite3.connect(database, timeout=0)) as current:
            # Needs every other connection closed: a program that is not a supportbot run (so holds
            # no lock file) but has the database open is caught here.
            mode = current.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError as error:
        raise BackupError(f"another program has {database} open ({error}): close it first") from None
    if mode != "delete":
        raise BackupError(f"another program has {database} open: close it first")
    for leftover in ("-wal", "-shm"):
        database.with_name(database.name + leftover).unlink(missing_ok=True)
    kept = _free_name(database.with_name(database.name + ".before-restore"))
    try:
        os.link(database, kept)
    except OSError:  # a file system without hard links
        shutil.copy2(database, kept)
    return kept


def _free_name(path: Path) -> Path:
    """`path`, or `path-2`, `path-3`, ... past the highest taken: a second restore must not replace
    the database the first one set aside (that may be the only copy of what the team had), and the
    highest number stays the newest copy when one in the middle was deleted."""
    taken = [1] if os.path.lexists(path) else []
    prefix = f"{path.name}-"
    for sibling in path.parent.iterdir():
        number = sibling.name.removeprefix(prefix)
        if sibling.name.startswith(prefix) and number.isdigit():
            taken.append(int(number))
    return path.with_name(f"{prefix}{max(taken) + 1}") if taken else path


def pg_dump_command(url: str, target: Path) -> str:
    """The pg_dump command line for a PostgreSQL URL, without its password."""
    parsed = make_url(url)
    query = dict(parsed.query)
    if "ssl" in query:  # asyncpg's name; libpq calls it sslmode
        query["sslmode"] = query.pop("ssl")
    # SQLAlchemy's, not libpq's: pg_dump would refuse the whole URL for it.
    query.pop("prepared_statement_cache_size", None)
    libpq = URL.create(  # every part but the password (set() would keep it: None there means "unchanged")
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=query,
    )
    return shlex.join(
        [
            "pg_dump",
            "--format=custom",
            f"--file={target}",
            f"--dbname={libpq.render_as_string(hide_password=False)}",
        ]
    )
