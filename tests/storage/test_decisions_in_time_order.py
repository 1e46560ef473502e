"""Questions are ordered by when they were asked, not by their decision's id: on PostgreSQL each
process numbers decisions from a block of ids of its own (storage/decisions_repo.py), so the ids of
two processes' decisions interleave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import decisions_repo
from storage.db import Database

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


async def _asked(database: Database, question: str, *, at: datetime) -> None:
    async with database.transaction() as session:
        await decisions_repo.record(
            session,
            actor_key="slack:U1",
            platform="slack",
            conversation_key="slack:C1",
            question=question,
            band="escalate",
            candidates=[],
            at=at,
        )


async def test_the_newest_customer_questions_come_first_whichever_process_recorded_them(
    database: Database,
) -> None:
    other_process = database.another_connection_pool()
    try:
        await _asked(database, "first", at=T0)
        await _asked(other_process, "second", at=T0 + timedelta(minutes=1))
        await _asked(database, "third", at=T0 + timedelta(minutes=2))
    finally:
        await other_process.dispose()
    async with database.session() as session:
        newest = await decisions_repo.customer_questions(session, since=T0, limit=2)
    assert newest == ["third", "second"]
