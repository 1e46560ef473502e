"""The database: which engine and which sessions, for SQLite (default) and PostgreSQL. Each database's
own execution paths live in storage/sqlite/ and storage/postgres/."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from storage.errors import lost_connection as lost_connection  # re-exported for the dispatcher
from storage.errors import transaction_conflict as transaction_conflict
from storage.postgres.session import PgSessions
from storage.session import DbSession
from storage.sqlite.engine import SQLITE_BUSY_TIMEOUT, SqliteDriver, create_sqlite_engine, sqlite_file
from storage.sqlite.inline import WalCheckpointer
from storage.sqlite.loop_session import LoopSessions


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
        return create_sqlite_engine(url, driver=sqlite_driver)
    connect_args: dict[str, Any] = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(_asyncpg_url(url), pool_size=10, max_overflow=10, connect_args=connect_args)


def _asyncpg_url(url: str) -> URL:
    """`url` with libpq's `sslmode` (what hosting providers hand out) as asyncpg's `ssl`: asyncpg
    takes every query parameter as an argument of connect(), and knows the mode only by that name.
    Its string modes are libpq's, with the same meaning. The URL is kept as written elsewhere, so
    pg_dump (libpq) is given the name it knows."""
    parsed = make_url(url)
    if "sslmode" not in parsed.query:
        return parsed
    query = dict(parsed.query)
    query.setdefault("ssl", query.pop("sslmode"))
    return parsed.set(query=query)


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
        self._pg_sessions: PgSessions | None = None
        if sqlite_driver == "inline" and engine.dialect.name == "sqlite":
            self._run_on_the_loop(engine)
        elif engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg":
            self._pg_sessions = PgSessions(engine)

    def _run_on_the_loop(self, engine: AsyncEngine) -> None:
        """SQLite's default: sessions run on the loop without AsyncSession's wrapping
        (storage/sqlite/loop_session.py), and WAL checkpoints on a thread (`WalCheckpointer`,
        storage/sqlite/inline.py). The async engine stays for migrations and health checks. An
        in-memory database keeps AsyncSession: a second connection would open a second, empty
        database (and there is nothing on disk to checkpoint)."""
        database, kwargs = sqlite_file(engine)
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
        if self._pg_sessions is not None:
            async with self._pg_sessions.transaction() as pg_session:
                yield pg_session
            return
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Open a connection and read the schema's header. Raises one of `CANNOT_OPEN` when the URL
        names no database (a text file, a folder) or a server that does not answer. Catch those
        around this alone: a migration that fails afterwards is a bug to see whole, not a wrong URL."""
        sqlite = self.engine.dialect.name == "sqlite"
        async with self.engine.connect() as connection:
            # SQLite opens files lazily: reading the schema's version finds a file that is not one.
            await connection.exec_driver_sql("PRAGMA schema_version" if sqlite else "SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._loop_sessions is not None:
            self._loop_sessions.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)


# What opening a database that is not one (a mistyped DATABASE_URL) or a server that does not answer
# raises, before anything is done with it: `Database.ping` raises only these.
CANNOT_OPEN = (SQLAlchemyError, sqlite3.Error, OSError)


def cannot_open(database_url: str, error: BaseException) -> str:
    """One line saying why the database at `database_url` cannot be opened, without its password."""
    return f"database {_where(database_url)}: {_reason(error)} (check DATABASE_URL)"


def cannot_upgrade(database_url: str, error: BaseException) -> str:
    """One line saying that the database opened but its schema could not be brought up to date (a
    database of another program, one another process holds locked, or a migration's own bug: its
    traceback is logged at DEBUG)."""
    return f"database {_where(database_url)}: the schema upgrade failed: {_reason(error)}"


def cannot_read_revision(database_url: str, error: BaseException) -> str:
    """One line saying that the database opened but its schema revision could not be read (an
    `alembic_version` table that is not ours, or one the user may not read)."""
    return f"database {_where(database_url)}: the schema revision could not be read: {_reason(error)}"


def _where(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def _reason(error: BaseException) -> str:
    """The driver's own first line, not SQLAlchemy's wrapping of it."""
    reason = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    said = str(reason).strip().splitlines()
    return said[0] if said else type(reason).__name__


def no_database(database_url: str) -> str | None:
    """`no database at data/x.db (check DATABASE_URL)` when the URL names a SQLite file that does
    not exist, else None: for commands that only read, which opening it would create (folders too)."""
    from storage import backup

    database_file = backup.sqlite_file(database_url)
    if database_file is not None and not database_file.is_file():
        return f"no database at {database_file} (check DATABASE_URL)"
    return None


async def open_migrated(database_url: str) -> Database | str:
    """The database at `database_url`, open, when it exists and its schema is the one this version
    needs; otherwise one line saying what is wrong. For one-shot commands (reports, privacy
    requests): nothing is created, so a mistyped DATABASE_URL leaves no empty database behind."""
    from storage import migrate

    if (missing := no_database(database_url)) is not None:
        return missing
    database = Database.from_url(database_url)
    try:
        await migrate.check_ours_or_new(database.engine)
        revision = await migrate.current_revision(database.engine)
    except CANNOT_OPEN as error:
        await database.dispose()
        return cannot_open(database_url, error)
    except migrate.AnotherProgramsDatabase as error:
        await database.dispose()
        return str(error)
    except BaseException:
        await database.dispose()
        raise
    if revision != migrate.head_revision():
        await database.dispose()
        return (
            f"the database schema is at {revision or 'nothing'}, this version needs "
            f"{migrate.head_revision()} (run `supportbot db upgrade`)"
        )
    return database
