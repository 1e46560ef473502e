"""What repositories and handlers may use of a database session, whatever the engine.

`Database` (storage/db.py) hands out a `DbSession`: for transactions, a `PgSession` on PostgreSQL
(storage/postgres/session.py) and by default a `LoopSession` on SQLite, which runs on the event loop
(storage/sqlite/loop_session.py); each module says why. Reading sessions, and SQLite with
`sqlite_driver="thread"`, use SQLAlchemy's `AsyncSession`. `Prepared` statements take the fastest path
each session offers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import Executable, text
from sqlalchemy.engine import Result

_T = TypeVar("_T")

# What a `Prepared` statement does to its transaction, for a session that can use it (PostgreSQL's):
# "read" needs no transaction of its own (a plain SELECT: under READ COMMITTED it sees what it would
# see inside one); "deferred" is a write whose result nobody reads, sent with the next write or folded
# into the "last" statement, the one after which the transaction runs nothing more; "write" is
# everything else. Anything not marked is a "write".
StatementKind = Literal["read", "write", "deferred", "last"]
# What a session that folds deferred writes into the last statement calls it, and the condition a
# deferred write's `if_last` form adds to write only if that statement returned a row.
LAST_STATEMENT = "last_statement"
IF_LAST_RETURNED_A_ROW = text(f"EXISTS (SELECT 1 FROM {LAST_STATEMENT})")


class DbSession(Protocol):
    """The session API our repositories and handlers use (a subset of `AsyncSession`'s)."""

    @property
    def bind(self) -> Any: ...

    async def execute(
        self, statement: Executable, params: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None
    ) -> Result[Any]: ...

    async def get(self, entity: type[_T], ident: Any) -> _T | None: ...

    def add(self, instance: object) -> None: ...

    async def flush(self) -> None: ...


class Prepared:
    """A Core statement for the hottest paths, compiled once per dialect: on a session that runs SQL on
    its driver it goes to the driver directly (`driver_rows`: SQLite's `LoopSession`,
    storage/sqlite/loop_session.py; `driver_fetch`: PostgreSQL's `PgSession`,
    storage/postgres/session.py), elsewhere through `session.execute` as usual.

    Why: SQLAlchemy's execution path (cache key, execution context, result wrapping) costs ~80 µs per
    statement on SQLite, several times what SQLite takes to run one of these, and ~135 µs of CPU on
    top of asyncpg's own ~65 µs on PostgreSQL; every inbound event runs a few of them (the dedupe
    claim, the held-ticket check, repeat detection, the decision row). Parameters still go through the
    column types' bind processors (UTC datetimes), so the stored values are exactly what SQLAlchemy
    would store. Rows come back as the driver returns them (tuples, asyncpg `Record`s: read them by
    position), without result processing: use it for statements whose columns are integers or text.
    An INSERT names its columns in `keys` (the driver gets exactly those parameters).
    """

    __slots__ = ("_compiled", "_if_last", "_keys", "kind", "statement")

    def __init__(
        self,
        statement: Any,
        *,
        keys: Sequence[str] | None = None,
        kind: StatementKind = "write",
        if_last: Any = None,
    ) -> None:
        """`if_last`, for a "deferred" write: the same write as a statement that may follow the
        transaction's last statement inside one `WITH` (PostgreSQL's data-modifying CTEs); most
        write only if the last statement returned a row (`IF_LAST_RETURNED_A_ROW`), as a decision
        does only if its event's claim did."""
        if (kind == "deferred") != (if_last is not None):
            raise ValueError("a deferred write, and only one, says how it follows the last statement")
        self.statement = statement
        self.kind: StatementKind = kind
        self._if_last = if_last
        self._keys = list(keys) if keys is not None else None  # an INSERT's columns
        self._compiled: dict[tuple[str, bool], tuple[str, Any, tuple[tuple[str, Any], ...]]] = {}

    async def rows(self, session: DbSession, params: dict[str, Any]) -> list[Any]:
        """Run it; the rows it returns (none for a write without RETURNING)."""
        driver_rows = getattr(session, "driver_rows", None)
        if driver_rows is not None:
            rows: list[Any] = driver_rows(*self._bound(session.bind.dialect, params))
            return rows
        driver_fetch = getattr(session, "driver_fetch", None)
        if driver_fetch is not None:
            dialect = session.bind.dialect
            sql, args = self._bound(dialect, params)
            if_last = self._bound(dialect, params, if_last=True) if self._if_last is not None else None
            fetched: list[Any] = await driver_fetch(sql, args, kind=self.kind, if_last=if_last)
            return fetched
        result = await session.execute(self.statement, params)
        # ORM-enabled selects come back as rows-only results without `returns_rows`.
        return list(result.all()) if getattr(result, "returns_rows", True) else []

    def _bound(self, dialect: Any, params: dict[str, Any], *, if_last: bool = False) -> tuple[str, list[Any]]:
        """The SQL in `dialect`'s paramstyle, and the driver's positional arguments for `params`."""
        sql, compiled, processors = self._compiled.get((dialect.name, if_last)) or self._compile(
            dialect, if_last
        )
        values = compiled.construct_params(params)  # adds the statement's own literals (LIMIT 20)
        return sql, [processor(values[name]) if processor else values[name] for name, processor in processors]

    def _compile(self, dialect: Any, if_last: bool) -> tuple[str, Any, tuple[tuple[str, Any], ...]]:
        statement = self._if_last if if_last else self.statement
        compiled = statement.compile(dialect=dialect, column_keys=self._keys)
        if "POSTCOMPILE" in compiled.string:
            raise TypeError("Prepared statements cannot use expanding IN lists; write the OR out")
        binds = compiled.binds
        processors = tuple(
            # dialect_impl: SQLite's own DATETIME text format, as SQLAlchemy stores it (the generic
            # type's processor would leave it to sqlite3, which writes another format).
            (name, binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or ()
        )
        self._compiled[(dialect.name, if_last)] = (compiled.string, compiled, processors)
        return self._compiled[(dialect.name, if_last)]
