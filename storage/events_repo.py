"""Inbound-event deduplication: claim (platform, event id) once, across retries and processes."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedEvent
from storage.types import utcnow


async def claim_event(session: AsyncSession, *, platform: str, event_id: str) -> bool:
    """True if this session is the first to see the event; False for a duplicate.

    On PostgreSQL a second transaction inserting the same key waits for the first; if the first
    commits it gets False, if the first rolls back it gets True. So exactly one handler commits.
    """
    values = {"platform": platform, "event_id": event_id, "handled_at": utcnow()}
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    statement: object
    if dialect == "postgresql":
        statement = postgresql.insert(ProcessedEvent).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(ProcessedEvent).values(**values).on_conflict_do_nothing()
    else:
        statement = insert(ProcessedEvent).values(**values)
    result = await session.execute(statement.returning(ProcessedEvent.id))  # type: ignore[attr-defined]
    return result.scalar_one_or_none() is not None
