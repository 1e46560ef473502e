"""Inbound-event deduplication: claim (platform, event id) once, across retries and processes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from storage import dialect
from storage.models import ProcessedEvent
from storage.session import DbSession, Prepared
from storage.types import utcnow

_TABLE: Table = ProcessedEvent.__table__  # type: ignore[attr-defined]

# Built once: this runs for every inbound event, and building the statement (and its cache key) each
# time cost more than executing it. A Core statement on the table also skips the ORM's bulk-insert path.
_KEYS = ("platform", "event_id", "handled_at")
_CLAIM: dict[str, Prepared] = {
    "postgresql": Prepared(
        postgresql.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.id), keys=_KEYS
    ),
    "sqlite": Prepared(sqlite.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.id), keys=_KEYS),
}
_PLAIN_CLAIM = Prepared(insert(_TABLE).returning(_TABLE.c.id), keys=_KEYS)


async def claim_event(session: DbSession, *, platform: str, event_id: str) -> bool:
    """True if this session is the first to see the event; False for a duplicate.

    On PostgreSQL a second transaction inserting the same key waits for the first; if the first
    commits it gets False, if the first rolls back it gets True. So exactly one handler commits.
    """
    statement = _CLAIM.get(dialect.name(session), _PLAIN_CLAIM)
    rows = await statement.rows(session, {"platform": platform, "event_id": event_id, "handled_at": utcnow()})
    return bool(rows)


async def forget_handled_before(session: DbSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` claims older than `before`; returns how many. Platforms stop redelivering
    an event within hours, so old claims only cost disk; deleting in batches keeps each lock short."""
    oldest = (
        select(col(ProcessedEvent.id))
        .where(col(ProcessedEvent.handled_at) < before)
        .order_by(col(ProcessedEvent.handled_at))
        .limit(limit)
    )
    result = await session.execute(
        delete(ProcessedEvent).where(ProcessedEvent.id.in_(oldest.scalar_subquery()))  # type: ignore[union-attr]
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
