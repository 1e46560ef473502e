"""Atomic named counters: sequential numbers that stay unique across processes."""

from __future__ import annotations

from sqlalchemy import text

from storage.session import DbSession, Prepared

_NEXT = Prepared(
    text(
        "INSERT INTO counters (name, value) VALUES (:name, 1) "
        "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value"
    )
)


async def next_value(session: DbSession, *, name: str) -> int:
    """Increment and return. The upsert takes a row lock on PostgreSQL (the write lock on SQLite),
    so two transactions never get the same value; the second waits for the first to finish."""
    ((value,),) = await _NEXT.rows(session, {"name": name})
    return int(value)
