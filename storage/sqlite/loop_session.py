"""The SQLite session that runs on the event loop: SQLite's default way of running a transaction.

Repositories and handlers take a `DbSession` (storage/session.py): with `sqlite_driver="thread"` that
is SQLAlchemy's `AsyncSession` (PostgreSQL has its own, storage/postgres/session.py); by default it is a
`LoopSession`, a plain synchronous ORM session whose statements run right here on the event loop
thread.

Why: a local SQLite statement takes microseconds, and `AsyncSession` wraps each call in a greenlet and
each driver call (cursor, execute, fetch, close, commit) in a switch back to the loop. Under the
pipeline benchmark that wrapping cost about a fifth of every event (docs/BENCHMARKS.md, pipeline).
Running the sync session directly is what the in-loop driver (`storage/sqlite/inline.py`) already did
underneath, without the wrapping.

The one thing a synchronous call must never do on the loop is wait for a lock held by a coroutine
that the loop itself would have to run. Two rules keep that from happening:

- one `LoopSession` at a time per `Database` (an asyncio lock: SQLite has one writer anyway, and the
  pool has one connection), so no session in this process ever waits for another one;
- every transaction starts with `BEGIN IMMEDIATE`, taking the write lock before anything else. If
  another connection (a second process, a second engine in tests) holds it, SQLite answers BUSY at
  once (busy timeout 0) and we wait in `asyncio.sleep` before trying again, up to the timeout. Once
  begun, no statement in the transaction can meet a lock.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Executable, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from storage.sqlite.inline import retry_busy
from storage.sqlite.journal import use_wal_if_ours

_T = TypeVar("_T")


class LoopSession:
    """`AsyncSession`'s methods over a synchronous `Session`, called directly on the loop."""

    __slots__ = ("_driver", "sync_session")

    def __init__(self, sync_session: Session) -> None:
        self.sync_session = sync_session
        self._driver: sqlite3.Connection | None = None

    def driver_rows(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Run `sql` on the session's own sqlite3 connection, inside its transaction (see `Prepared`).
        Pending ORM changes are flushed first, as SQLAlchemy's autoflush would before a query."""
        self.sync_session.flush()
        if self._driver is None:
            self._driver = self.sync_session.connection().connection.driver_connection
        assert self._driver is not None
        return self._driver.execute(sql, args).fetchall()

    @property
    def bind(self) -> Engine | Connection:
        return self.sync_session.get_bind()

    async def execute(
        self, statement: Executable, params: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None
    ) -> Result[Any]:
        return self.sync_session.execute(statement, params)

    async def get(self, entity: type[_T], ident: Any) -> _T | None:
        return self.sync_session.get(entity, ident)

    def add(self, instance: object) -> None:
        self.sync_session.add(instance)

    async def flush(self) -> None:
        self.sync_session.flush()

    async def close(self) -> None:
        self.sync_session.close()


class LoopSessions:
    """Hands out `LoopSession`s for one SQLite file, one at a time (see the module docstring)."""

    def __init__(self, database: str, *, busy_timeout: float, **connect_args: Any) -> None:
        self.busy_timeout = busy_timeout
        connect_args.pop("timeout", None)
        connect_args["check_same_thread"] = False  # SQLAlchemy may close it from the GC's thread

        def connect() -> sqlite3.Connection:
            # isolation_level=None: sqlite3 issues no BEGIN of its own; ours is `BEGIN IMMEDIATE`.
            connection: sqlite3.Connection = sqlite3.connect(
                database, timeout=0, isolation_level=None, **connect_args
            )
            return connection

        self.engine = create_sync_engine(
            "sqlite://",
            creator=connect,
            poolclass=StaticPool,  # one connection, and one session at a time uses it (the lock)
            pool_reset_on_return=None,  # sessions end their own transactions
        )
        event.listen(self.engine, "connect", _tune)
        event.listen(self.engine, "begin", _begin_immediate)
        self._lock: asyncio.Lock | None = None

    def _turn(self) -> asyncio.Lock:
        if self._lock is None:  # created on first use, inside the loop that will use it
            self._lock = asyncio.Lock()
        return self._lock

    @asynccontextmanager
    async def session(self) -> AsyncIterator[LoopSession]:
        """A session for reading; whatever it did is rolled back when the block ends."""
        async with self._turn():
            sync_session = await self._begun()
            with sync_session:
                yield LoopSession(sync_session)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[LoopSession]:
        """A session holding the write lock; commits when the block ends, rolls back if it raises."""
        async with self._turn():
            sync_session = await self._begun()
            with sync_session:
                try:
                    yield LoopSession(sync_session)
                except BaseException:
                    sync_session.rollback()
                    raise
                sync_session.commit()

    async def _begun(self) -> Session:
        def begin() -> Session:
            sync_session = Session(self.engine, expire_on_commit=False)
            try:
                sync_session.connection()  # runs BEGIN IMMEDIATE (the "begin" listener)
            except BaseException:
                sync_session.close()
                raise
            return sync_session

        return await retry_busy(begin, self.busy_timeout)

    def dispose(self) -> None:
        self.engine.dispose()


def _tune(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    use_wal_if_ours(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=0")  # waiting happens in asyncio (see `_begun`)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # a thread checkpoints (`WalCheckpointer`)
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    # Straight to sqlite3: this runs for every transaction, and SQLAlchemy's execution path cost
    # several times the statement.
    connection.connection.driver_connection.execute("BEGIN IMMEDIATE")
