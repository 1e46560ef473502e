"""Telling a broken database connection, or a transaction the server ended to resolve a conflict,
from a failing statement."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError


def causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it was raised from: the driver's error, under SQLAlchemy's, under ours."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def lost_connection(error: BaseException) -> bool:
    """The error is the database connection breaking (a server restart, a failover, a cut network),
    not the statement: a fresh connection may well succeed. Nothing of the transaction was committed,
    unless the break came during COMMIT; then a retry finds its own claim and does nothing."""
    import asyncpg

    for seen in causes(error):
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(
            seen,
            OSError
            | asyncpg.exceptions.ConnectionDoesNotExistError
            | asyncpg.exceptions.PostgresConnectionError
            | asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
        ):
            return True
        if isinstance(seen, asyncpg.exceptions.InterfaceError) and "connection is closed" in str(seen):
            return True
        if isinstance(seen, asyncpg.exceptions.InternalClientError) and "cannot switch to state" in str(seen):
            return True  # the server's FATAL "terminating connection" arrived between two statements
    return False


CONFLICT_STATES = frozenset({"40001", "40P01"})
"""serialization_failure and deadlock_detected: PostgreSQL ended the transaction so that another
could go on; it kept nothing of it, and the same work run again normally succeeds."""


def transaction_conflict(error: BaseException) -> bool:
    """The server rolled the transaction back to break a deadlock or a serialization conflict."""
    return any(getattr(seen, "sqlstate", None) in CONFLICT_STATES for seen in causes(error))
