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

BEGIN is not sent until a statement needs it (`StatementKind` in storage/session.py; through the
ORM, a SELECT without FOR UPDATE is a read). Plain reads run before it: under READ COMMITTED a
statement sees the same inside a transaction as outside one. Writes nobody reads back wait for the
next write. When the transaction's last statement (the event's claim) comes before any other write,
a waiting write is folded into it as a data-modifying CTE that writes only if it returned a row, and
it runs alone, with no BEGIN or COMMIT (several waiting writes go first, in order: CTEs side by side
do not see each other's rows). A question the knowledge base answers then costs three
round trips instead of six: two reads, and one statement that claims the event and records the
decision together, atomically.

The rules that keep a connection from going back to the pool in a bad state: every transaction ends
with COMMIT or ROLLBACK on this connection; if that fails, or the connection is left inside a
transaction, or it was closed under us, it is invalidated rather than reused; and a connection
closed by the server (a restart) also invalidates every connection opened before it, as
SQLAlchemy does when it sees a disconnect, so one failed transaction is enough to recover.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Executable, Select, event
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.errors import lost_connection
from storage.session import LAST_STATEMENT, StatementKind

_T = TypeVar("_T")


class PgSession:
    """`DbSession` over one connection. `PgSessions` ends the transaction, if one was begun."""

    __slots__ = ("_begun", "_connection", "_finished", "_orm", "_waiting", "driver")

    def __init__(self, connection: AsyncConnection, driver: Any) -> None:
        self._connection = connection
        self.driver = driver  # the asyncpg connection
        self._orm: AsyncSession | None = None
        self._begun = False
        self._finished = False  # the last statement has run: nothing may follow it
        # Deferred writes not sent yet: (sql, arguments, the same write after the last statement).
        self._waiting: list[tuple[str, Sequence[Any], tuple[str, Sequence[Any]]]] = []

    @property
    def bind(self) -> AsyncEngine:
        return self._connection.engine

    async def driver_fetch(
        self,
        sql: str,
        args: Sequence[Any],
        *,
        kind: StatementKind = "write",
        if_last: tuple[str, Sequence[Any]] | None = None,
    ) -> list[Any]:
        """Run `sql` on asyncpg (see `Prepared`), beginning the transaction first unless `kind` lets
        it wait. Pending ORM changes are flushed first, as SQLAlchemy's autoflush would before a
        query, and so are deferred writes before anything that might read them."""
        self._refuse_after_last()
        if self._orm_changed():
            await self._ready_to_write()
            assert self._orm is not None
            await self._orm.flush()
        if kind == "deferred":
            assert if_last is not None, "a deferred write says how it follows the last statement"
            self._waiting.append((sql, args, if_last))
            return []
        if kind == "last":
            if len(self._waiting) > 1:
                # Folded side by side, no write would see another's rows (a decision settled in the
                # event that records it would stay unsettled): in order, inside a transaction.
                await self._ready_to_write()
            # Alone, outside any transaction, when nothing began one; else inside it, before COMMIT.
            self._finished = True
            return await self._with_waiting(sql, args)
        if kind != "read" or self._waiting:
            await self._ready_to_write()
        rows: list[Any] = await self.driver.fetch(sql, *args)
        return rows

    def _refuse_after_last(self) -> None:
        if self._finished:
            raise RuntimeError("the transaction's last statement has run: nothing may follow it")

    def _orm_changed(self) -> bool:
        """Whether the ORM holds changes not flushed yet."""
        orm = self._orm
        return orm is not None and bool(orm.new or orm.dirty or orm.deleted)

    async def _ready_to_write(self) -> None:
        """BEGIN if not yet begun, then the writes waiting to be sent, in the order they were made."""
        self._refuse_after_last()
        if not self._begun:
            # Named, not inherited: reads that ran before BEGIN saw what they would have seen inside
            # it only at READ COMMITTED, whatever a database's default_transaction_isolation says.
            await self.driver.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            self._begun = True
        waiting, self._waiting = self._waiting, []
        for sql, args, _ in waiting:
            await self.driver.fetch(sql, *args)

    async def _with_waiting(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """The last statement with the deferred writes folded in, as one statement: they happen
        only if it returned a row (a claim that finds the event already claimed writes nothing)."""
        if not self._waiting:
            return list(await self.driver.fetch(sql, *args))
        parts = [f"{LAST_STATEMENT} AS ({sql})"]
        arguments = list(args)
        for number, (_, _, (then_sql, then_args)) in enumerate(self._waiting):
            parts.append(f"deferred_{number} AS ({_shift_parameters(then_sql, len(arguments))})")
            arguments.extend(then_args)
        self._waiting = []
        return list(
            await self.driver.fetch(f"WITH {', '.join(parts)} SELECT * FROM {LAST_STATEMENT}", *arguments)
        )

    async def _orm_session(self, *, reads: bool) -> AsyncSession:
        """The ORM session, inside the transaction unless the statement `reads` only and nothing
        waits to be flushed (which its autoflush would send first)."""
        orm = self._session()
        if not reads or self._orm_changed() or self._waiting:
            await self._ready_to_write()
        self._refuse_after_last()
        return orm

    def _session(self) -> AsyncSession:
        if self._orm is None:
            self._orm = AsyncSession(bind=self._connection, expire_on_commit=False)
        return self._orm

    async def execute(
        self, statement: Executable, params: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None
    ) -> Result[Any]:
        reads = isinstance(statement, Select) and statement._for_update_arg is None
        return await (await self._orm_session(reads=reads)).execute(statement, params)

    async def get(self, entity: type[_T], ident: Any) -> _T | None:
        return await (await self._orm_session(reads=True)).get(entity, ident)

    def add(self, instance: object) -> None:
        # Sends nothing yet; whatever flushes it begins the transaction first. After the last
        # statement nothing could: refused at once, where the mistake is.
        self._refuse_after_last()
        self._session().add(instance)

    async def flush(self) -> None:
        if self._orm is not None:
            await self._ready_to_write()
            await self._orm.flush()

    async def _end(self) -> None:
        """Commit what was begun; send what still waits (deferred writes with no last statement)."""
        if self._waiting or self._orm_changed():
            await self._ready_to_write()
        await self._end_orm(commit=True)
        if self._begun:
            await self.driver.execute("COMMIT")

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


def _read_committed(dbapi_connection: Any, _: Any) -> None:
    """READ COMMITTED for every statement of a new connection, not only inside BEGIN: the reads
    before BEGIN and the last statement run alone, each its own transaction at the database's
    default level. Under REPEATABLE READ a duplicate's claim would fail with a serialization error
    where it should wait and find the event taken."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # outside a transaction, which the pool would roll back
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cursor.close()
    finally:
        dbapi_connection.autocommit = autocommit


def _shift_parameters(sql: str, by: int) -> str:
    """`sql` with its positional parameters renumbered after the `by` that come before it. Our
    statements are compiled from Core with every value bound, so `$n` appears only as a parameter."""
    return _PARAMETER.sub(lambda match: f"${int(match.group(1)) + by}", sql)


_PARAMETER = re.compile(r"\$(\d+)")


class PgSessions:
    """Hands out `PgSession`s on `engine`'s pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Shares the engine's pool; SQLAlchemy resets the isolation level when a connection returns.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        event.listen(engine.sync_engine, "connect", _read_committed)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgSession]:
        """A transaction on its own connection: commits when the block ends, rolls back if it raises.
        BEGIN waits for the first statement that needs it (see the module's docstring)."""
        connection = await self._engine.connect()
        assert connection.sync_connection is not None, "connected"
        fairy = connection.sync_connection.connection  # checked out just now: no I/O
        driver: Any = fairy.driver_connection  # asyncpg's Connection
        try:
            session = PgSession(connection, driver)
            try:
                yield session
                await session._end()
            except BaseException as error:
                await _roll_back(session)
                if driver.is_closed() or lost_connection(error):
                    # A connection the server ended (a restart) can fail without looking closed.
                    await _discard(connection, fairy, closed=True)
                elif not isinstance(error, Exception):
                    # Cancelled, perhaps mid-statement outside any transaction: not worth trusting.
                    await _discard(connection, fairy, closed=False)
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
