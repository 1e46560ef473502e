"""SQLAlchemy's async engine for a SQLite file: its pragmas, and which driver runs the statements."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.sqlite.inline import InlineConnection, inline_creator
from storage.sqlite.journal import use_wal_if_ours

folder_made = logging.getLogger(f"{__name__}.folder")
"""The one line saying a folder was made for a new database: on a logger of its own, so that a run
logging only warnings (`supportbot run --console`) can still let the person who set DATABASE_URL
read it."""

SqliteDriver = Literal["inline", "thread"]
"""How SQLite statements run: on the event loop (`storage/sqlite/inline.py`) or on aiosqlite's thread."""

SQLITE_BUSY_TIMEOUT = 10.0
"""Seconds a statement waits for another connection's write lock before failing."""


def create_sqlite_engine(url: str, *, driver: SqliteDriver) -> AsyncEngine:
    """An engine for a `sqlite+aiosqlite` URL, its folder created if need be."""
    _prepare_file(url)
    options: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}
    if driver == "inline":

        async def connect() -> InlineConnection:
            database, kwargs = sqlite_file(engine)
            return await inline_creator(database, busy_timeout=SQLITE_BUSY_TIMEOUT, **kwargs)()

        options = {"async_creator": connect}
    # One connection: SQLite has one writer at a time anyway, and queueing for the connection in
    # asyncio is fair and cheap, while several connections contending for the file lock sleep
    # in SQLite's busy handler (tens of milliseconds each time) and wreck the tail latency.
    engine = create_async_engine(
        url,
        **options,
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
        # Sessions roll back what they leave open themselves; skipping the pool's own reset saves
        # a round trip to the driver thread on every checkin.
        pool_reset_on_return=None,
    )
    event.listen(engine.sync_engine, "connect", _tune)
    return engine


def sqlite_file(engine: AsyncEngine) -> tuple[str, dict[str, Any]]:
    """The file name and sqlite3 options (uri=true, ...) the dialect reads from the URL."""
    (database, *_), kwargs = engine.dialect.create_connect_args(engine.sync_engine.url)
    return database, dict(kwargs)


def _prepare_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        make_folder(Path(database))


def make_folder(database: Path) -> None:
    """The database file's folder, made if need be, and then named in the log."""
    folder = database.parent
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    # A mistyped DATABASE_URL would otherwise start an empty database in a new folder without a word.
    folder_made.info(
        "created the folder %s for the SQLite database (check DATABASE_URL if it is not meant to be new)",
        folder.absolute(),
    )


def _tune(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes a second process wait for the
    # write lock instead of failing at once. The in-loop driver waits in asyncio instead (its own
    # retry), so SQLite's handler must not sleep on the event loop thread: 0 for it.
    in_loop = isinstance(getattr(dbapi_connection, "driver_connection", None), InlineConnection)
    busy_ms = 0 if in_loop else int(SQLITE_BUSY_TIMEOUT * 1000)
    cursor = dbapi_connection.cursor()
    use_wal_if_ours(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    if in_loop:
        # Checkpoints would run inside a commit on the loop; `Database` runs them on a thread.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()
