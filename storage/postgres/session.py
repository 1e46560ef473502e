"""PostgreSQL's transactions: one pooled connection each, whose BEGIN, COMMIT and `Prepared`
statements go to asyncpg directly, while the ORM, when a handler uses it, runs on the same connection.

Why: through SQLAlchemy's `AsyncSession` a statement cost ~200 µs of CPU here (a greenlet switch, the
ORM and Core execution contexts, the adapter's own statement cache, result wrapping) where asyncpg's
own `fetch` of the same prepared statement costs ~65 µs, and every inbound event runs four to seven
statements plus BEGIN and COMMIT. On a machine where the bot and PostgreSQL share the cores, that CPU
was most of what made PostgreSQL slower than SQLite (research/notes/postgres_throughput.md).

How: the connection is checked out of SQLAlchemy's pool (the one `Database.engine` uses) with the
isolation level AUTOCOMMIT, which makes SQLAlchemy's asyncpg adapter send no BEGIN or COMMIT of its
own: this module sends them, so the ORM's statements and the direct ones share one transaction. The
ORM session is created only when something asks for it; events that only run `Prepared` statements
never build one.

The rules that keep a connection from going back to the pool in a bad state: every transaction ends
with COMMIT or ROLLBACK on this connection; if that fails, or the connection is left inside a
transaction, or it was closed under us, it is invalidated rather than reused; and a connection
closed by the server (a restart) also invalidates every connection opened before it, as
SQLAlchemy does when it sees a disconnect, so one failed transaction is enough to recover.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Executable
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.errors import lost_connection

_T = TypeVar("_T")


class PgSession:
    """`DbSession` over one connection, inside a transaction that `PgSessions` began."""

    __slots__ = ("_connection", "_orm", "driver")

    def __init__(self, connection: AsyncConnection, driver: Any) -> None:
        self._connection = connection
        self.driver = driver  # the asyncpg connection
        self._orm: AsyncSession | None = None

    @property
    def bind(self) -> AsyncEngine:
        return self._connection.engine

    async def driver_fetch(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Run `sql` on asyncpg inside this transaction (see `Prepared`). Pending ORM changes are
        flushed first, as SQLAlchemy's autoflush would before a query."""
        orm = self._orm
        if orm is not None and (orm.new or orm.dirty or orm.deleted):
            await orm.flush()
        rows: list[Any] = await self.driver.fetch(sql, *args)
        return rows

    def _session(self) -> AsyncSession:
        if self._orm is None:
            self._orm = AsyncSession(bind=self._connection, expire_on_commit=False)
        return self._orm

    async def execute(
        self, statement: Executable, params: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None
    ) -> Result[Any]:
        return await self._session().execute(statement, params)

    async def get(self, entity: type[_T], ident: Any) -> _T | None:
        return await self._session().get(entity, ident)

    def add(self, instance: object) -> None:
        self._session().add(instance)

    async def flush(self) -> None:
        if self._orm is not None:
            await self._orm.flush()

    async def _end_orm(self, *, commit: bool) -> None:
        """Flush what the ORM session holds (before COMMIT) and close it. Closing sends nothing (the
        connection autocommits at SQLAlchemy's level) and leaves the objects loaded, detached, for
        use after the transaction, as a commit with `expire_on_commit=False` would; `commit()`
        itself cost several times the flush for nothing here."""
        if self._orm is None:
            return
        try:
            if commit:
                await self._orm.flush()
        finally:
            await self._orm.close()


class PgSessions:
    """Hands out `PgSession`s on `engine`'s pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Shares the engine's pool; SQLAlchemy resets the isolation level when a connection returns.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgSession]:
        """A transaction on its own connection: commits when the block ends, rolls back if it raises."""
        connection = await self._engine.connect()
        assert connection.sync_connection is not None, "connected"
        fairy = connection.sync_connection.connection  # checked out just now: no I/O
        driver: Any = fairy.driver_connection  # asyncpg's Connection
        try:
            try:
                await driver.execute("BEGIN")
            except BaseException as error:
                # A connection the server ended (a restart) can fail here without looking closed.
                await _discard(connection, fairy, closed=driver.is_closed() or lost_connection(error))
                raise
            session = PgSession(connection, driver)
            try:
                yield session
                await session._end_orm(commit=True)
                await driver.execute("COMMIT")
            except BaseException:
                await _roll_back(session)
                raise
        finally:
            if not connection.invalidated and (driver.is_closed() or driver.is_in_transaction()):
                await _discard(connection, fairy, closed=driver.is_closed())
            await connection.close()


async def _roll_back(session: PgSession) -> None:
    """Undo what the failed block did. If that fails too, the connection is left inside its
    transaction (or closed), and `_discard` keeps it out of the pool."""
    with contextlib.suppress(Exception):
        await session._end_orm(commit=False)
    driver = session.driver
    if driver.is_in_transaction() and not driver.is_closed():
        with contextlib.suppress(Exception):
            await driver.execute("ROLLBACK")


async def _discard(connection: AsyncConnection, fairy: Any, *, closed: bool) -> None:
    """Never hand this connection out again; if the server closed it, nor any opened before it."""
    if closed:
        # What SQLAlchemy does when it sees a disconnect itself (`Connection._handle_dbapi_exception`
        # calls this): after a server restart every pooled connection is dead, and each would otherwise
        # fail one more transaction before being replaced. Only the timestamp here; the connection
        # itself is closed below, in SQLAlchemy's greenlet.
        connection.sync_engine.pool._invalidate(fairy, _checkin=False)
    await connection.invalidate()
