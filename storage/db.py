"""The async engine and session factory for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from storage.session import DbSession, LoopSessions
from storage.sqlite.inline import InlineConnection, WalCheckpointer, inline_creator

SqliteDriver = Literal["inline", "thread"]
"""How SQLite statements run: on the event loop (`storage/sqlite/inline.py`) or on aiosqlite's thread."""

SQLITE_BUSY_TIMEOUT = 10.0
"""Seconds a statement waits for another connection's write lock before failing."""


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes a second process wait for the
    # write lock instead of failing at once. The in-loop driver waits in asyncio instead (its own
    # retry), so SQLite's handler must not sleep on the event loop thread: 0 for it.
    in_loop = isinstance(getattr(dbapi_connection, "driver_connection", None), InlineConnection)
    busy_ms = 0 if in_loop else int(SQLITE_BUSY_TIMEOUT * 1000)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    if in_loop:
        # Checkpoints would run inside a commit on the loop; `Database` runs them on a thread.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def create_engine(
    url: str, *, schema: str | None = None, sqlite_driver: SqliteDriver = "inline"
) -> AsyncEngine:
    """An engine for `url`. `schema` (PostgreSQL only) isolates a test or a tenant in its own schema.

    `sqlite_driver="inline"` (the default) runs SQLite statements on the event loop thread: a local
    statement takes microseconds, less than one hand-off to aiosqlite's thread (see
    `storage/sqlite/inline.py` and the pipeline section of docs/BENCHMARKS.md). "thread" keeps
    aiosqlite's own thread, e.g. to compare the two.
    """
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        options: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}
        if sqlite_driver == "inline":

            async def connect() -> InlineConnection:
                database, kwargs = _sqlite_file(engine)
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
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        return engine
    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(url, pool_size=10, max_overflow=10, connect_args=connect_args)


class Database:
    """Owns the engine; hands out sessions. One session per inbound event, committed once."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        url: str = "",
        schema: str | None = None,
        sqlite_driver: SqliteDriver = "inline",
    ) -> None:
        self.engine = engine
        self.url = url
        self.schema = schema
        self.sqlite_driver = sqlite_driver
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._loop_sessions: LoopSessions | None = None
        self._checkpointer: WalCheckpointer | None = None
        if sqlite_driver == "inline" and engine.dialect.name == "sqlite":
            self._run_on_the_loop(engine)

    def _run_on_the_loop(self, engine: AsyncEngine) -> None:
        """SQLite's default: sessions run on the loop without AsyncSession's wrapping, and WAL
        checkpoints on a thread (storage/session.py, `WalCheckpointer`). The async engine stays for
        migrations and health checks. An in-memory database keeps AsyncSession: a second connection
        would open a second, empty database (and there is nothing on disk to checkpoint)."""
        database, kwargs = _sqlite_file(engine)
        if not database or database == ":memory:" or "mode=memory" in database:
            return
        self._loop_sessions = LoopSessions(database, busy_timeout=SQLITE_BUSY_TIMEOUT, **kwargs)
        options = {k: v for k, v in kwargs.items() if k not in ("timeout", "check_same_thread")}
        self._checkpointer = WalCheckpointer(database, **options)
        self._checkpointer.start()

    @classmethod
    def from_url(
        cls, url: str, *, schema: str | None = None, sqlite_driver: SqliteDriver = "inline"
    ) -> Database:
        engine = create_engine(url, schema=schema, sqlite_driver=sqlite_driver)
        return cls(engine, url=url, schema=schema, sqlite_driver=sqlite_driver)

    def another_connection_pool(self) -> Database:
        """The same database through a separate engine, as a second bot process would see it."""
        return Database.from_url(self.url, schema=self.schema, sqlite_driver=self.sqlite_driver)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[DbSession]:
        """A session for reading; it commits nothing unless the caller does."""
        if self._loop_sessions is not None:
            async with self._loop_sessions.session() as loop_session:
                yield loop_session
            return
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DbSession]:
        """A session that commits when the block ends and rolls back if it raises."""
        if self._loop_sessions is not None:
            async with self._loop_sessions.transaction() as loop_session:
                yield loop_session
            return
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._loop_sessions is not None:
            self._loop_sessions.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)


def _sqlite_file(engine: AsyncEngine) -> tuple[str, dict[str, Any]]:
    """The file name and sqlite3 options (uri=true, ...) the dialect reads from the URL."""
    (database, *_), kwargs = engine.dialect.create_connect_args(engine.sync_engine.url)
    return database, kwargs
