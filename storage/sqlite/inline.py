"""An in-loop SQLite driver for SQLAlchemy's `sqlite+aiosqlite` dialect.

aiosqlite runs every call (open cursor, execute, fetch, close, commit) on a helper thread and wakes the
event loop when it is done, so one statement costs several thread hand-offs, each far dearer than the
statement: a local WAL insert or indexed select takes a few microseconds, a hand-off tens to hundreds
(more when another thread holds the GIL). This module gives the aiosqlite dialect a connection with
the same async methods that run the stdlib `sqlite3` call directly on the event loop thread instead.

The one thing a thread hides is waiting for the write lock while *another connection* holds it (a
second process on the same file, or a second engine in this one). SQLite's own busy handler would
sleep with the loop blocked, and when the lock holder is a coroutine on this same loop it could never
finish. So the connection is opened with SQLite's busy timeout off, and a statement refused with
SQLITE_BUSY is retried after an `asyncio.sleep` until the same timeout has passed: the loop keeps
running while it waits, just as it did with the thread. What still runs on the loop is the statement
itself, and now and then a WAL checkpoint at commit (milliseconds at most with synchronous=NORMAL).

Use it with `create_async_engine("sqlite+aiosqlite:///...", async_creator=inline_creator(...))`
(see `storage/db.py`); SQLAlchemy wraps it exactly as it wraps an aiosqlite connection.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

T = TypeVar("T")

log = logging.getLogger(__name__)

_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05


def _is_busy(error: Exception) -> bool:
    """Plain SQLITE_BUSY, raised by sqlite3 itself or wrapped by SQLAlchemy."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    return isinstance(orig, sqlite3.OperationalError) and orig.sqlite_errorcode == sqlite3.SQLITE_BUSY


async def retry_busy(call: Callable[[], T], patience: float) -> T:
    """Run `call`; while SQLite says another connection holds the lock, wait without blocking the loop.

    Only plain SQLITE_BUSY is retried: the statement did nothing, so running it again is what SQLite's
    busy handler would have done. SQLITE_BUSY_SNAPSHOT (a write after reading a now outdated snapshot)
    can never succeed in this transaction and is raised at once, as it is with the busy handler.
    """
    deadline = time.monotonic() + patience
    pause = _FIRST_PAUSE
    while True:
        try:
            return call()
        except (sqlite3.OperationalError, DBAPIError) as error:
            if not _is_busy(error) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)


class InlineCursor:
    """The async cursor API SQLAlchemy's aiosqlite adapter awaits, answered synchronously."""

    __slots__ = ("_cursor", "_timeout")

    def __init__(self, cursor: sqlite3.Cursor, timeout: float) -> None:
        self._cursor = cursor
        self._timeout = timeout

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        await retry_busy(lambda: self._cursor.execute(sql, parameters), self._timeout)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)  # a retry must see the same rows again, not an exhausted iterator
        await retry_busy(lambda: self._cursor.executemany(sql, rows), self._timeout)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None


class _InlineQueue:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses directly to set isolation_level."""

    __slots__ = ()

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)


class InlineConnection:
    """An aiosqlite-compatible connection whose calls run on the calling (event loop) thread."""

    def __init__(self, connection: sqlite3.Connection, *, busy_timeout: float) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._busy_timeout = busy_timeout
        self._tx = _InlineQueue()

    @property
    def _connection(self) -> sqlite3.Connection | None:
        # SQLAlchemy's adapter checks this before commit/rollback to see whether we are still open.
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._open().in_transaction

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._open().cursor(), self._busy_timeout)

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        connection = self._open()
        await retry_busy(connection.commit, self._busy_timeout)

    async def rollback(self) -> None:
        self._open().rollback()

    async def create_function(
        self, name: str, num_params: int, func: Any, deterministic: bool = False
    ) -> None:
        self._open().create_function(name, num_params, func, deterministic=deterministic)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close now (also what SQLAlchemy calls when it terminates a connection outside the loop)."""
        if self._conn is not None:
            connection, self._conn = self._conn, None
            connection.close()


class WalCheckpointer:
    """Copies the WAL back into the database file from a thread of its own, every `interval` seconds.

    SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, on whichever
    connection made it: here, the event loop. That commit then writes the pages back and fsyncs the
    file, 5–25 ms on this kind of machine, about one commit in seventy under the pipeline benchmark,
    and it was most of all commit time and every p99 outlier. So the loop's connection is opened
    with `wal_autocheckpoint=0` and this thread does the work instead, with a connection of its own.
    A PASSIVE checkpoint never waits for (or blocks) the writer, and sqlite3 releases the GIL while
    it writes and syncs, so the loop keeps running. Durability is unchanged: with synchronous=NORMAL
    the WAL is synced at checkpoints either way.
    """

    def __init__(self, database: str, *, interval: float = 0.25, **connect_args: Any) -> None:
        self._database = database
        self._interval = interval
        self._connect_args = connect_args
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
        self.checkpoints = 0
        self.last: tuple[int, int] = (0, 0)
        """(frames in the WAL, frames copied back) at the last checkpoint."""

    def start(self) -> None:
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    def stop(self) -> None:
        """Stop, after one last checkpoint so the WAL left on disk is short."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(
                self._database, timeout=1.0, check_same_thread=False, **self._connect_args
            )
        except sqlite3.Error:  # no database there (a folder, say): opening it says so, in one line
            return
        try:
            while True:
                stopping = self._stop.wait(self._interval)
                try:
                    ((_busy, frames, copied),) = connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    self.checkpoints += 1
                    self.last = (frames, copied)
                except sqlite3.Error as error:  # busy with another checkpointer, or the file is gone
                    log.debug("WAL checkpoint skipped: %s", error)
                if stopping:
                    return
        finally:
            connection.close()


def inline_creator(
    database: str, *, busy_timeout: float = 10.0, **connect_args: Any
) -> Callable[[], Awaitable[InlineConnection]]:
    """An `async_creator` for `create_async_engine` that opens `database` with the in-loop driver.

    `connect_args` go to `sqlite3.connect` (e.g. uri=True); SQLite's own busy timeout is always 0
    because waiting for the lock happens in `retry_busy`, off the loop's critical path.
    """
    connect_args.pop("timeout", None)
    # Used on the loop thread only, but SQLAlchemy may close a connection it discards from another
    # thread (garbage collection), which sqlite3's same-thread check would turn into an error.
    connect_args["check_same_thread"] = False

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(database, timeout=0, **connect_args)
        return InlineConnection(connection, busy_timeout=busy_timeout)

    return connect


__all__: Sequence[str] = (
    "InlineConnection",
    "InlineCursor",
    "WalCheckpointer",
    "inline_creator",
    "retry_busy",
)
