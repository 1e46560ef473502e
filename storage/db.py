"""The async engine and session factory for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes a second process wait for the
    # write lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """An engine for `url`. `schema` (PostgreSQL only) isolates a test or a tenant in its own schema."""
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        # One connection: SQLite has one writer at a time anyway, and queueing for the connection in
        # asyncio is fair and cheap, while several connections contending for the file lock sleep
        # in SQLite's busy handler (tens of milliseconds each time) and wreck the tail latency.
        engine = create_async_engine(
            url,
            connect_args={"timeout": 10},
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

    def __init__(self, engine: AsyncEngine, *, url: str = "", schema: str | None = None) -> None:
        self.engine = engine
        self.url = url
        self.schema = schema
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None) -> Database:
        return cls(create_engine(url, schema=schema), url=url, schema=schema)

    def another_connection_pool(self) -> Database:
        """The same database through a separate engine, as a second bot process would see it."""
        return Database.from_url(self.url, schema=self.schema)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> AsyncSession:
        return self._sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block ends and rolls back if it raises."""
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
