"""SQLite's default session runs on the loop, and the hottest statements go straight to sqlite3
(`storage/session.py`). What they write must be exactly what SQLAlchemy writes, or queries that
compare stored values (dates are text in SQLite) would quietly disagree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import select

from storage import decisions_repo, events_repo, migrate
from storage.db import Database
from storage.models import KBDecision
from storage.sqlite.loop_session import LoopSession


async def _databases(tmp_path: Path) -> tuple[Database, Database]:
    """The same kind of file twice: once with the loop session, once through aiosqlite's thread."""
    loop = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/loop.db")
    thread = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/thread.db", sqlite_driver="thread")
    for database in (loop, thread):
        await migrate.upgrade(database.engine)
    return loop, thread


async def _record(database: Database, at: datetime) -> None:
    async with database.transaction() as session:
        await decisions_repo.record(
            session,
            actor_key="fake:C1",
            platform="fake",
            conversation_key="fake:W1:community:m1",
            question="how do I reset my API key?",
            band="answer",
            candidates=[("reset-api-key", 0.97), ("rotate-token", 0.41)],
            at=at,
        )


async def test_the_driver_path_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    loop, thread = await _databases(tmp_path)
    at = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC)
    try:
        async with loop.transaction() as session:
            assert isinstance(session, LoopSession)
        stored = []
        for database in (loop, thread):
            await _record(database, at)
            async with database.session() as session:
                raw = (await session.execute(text("SELECT at, candidates FROM kb_decisions"))).one()
                loaded = (await session.execute(select(KBDecision))).scalar_one()
                recent = await decisions_repo.recent_questions(
                    session, actor_key="fake:C1", since=at - timedelta(microseconds=1)
                )
                later = await decisions_repo.recent_questions(
                    session, actor_key="fake:C1", since=at + timedelta(microseconds=1)
                )
            stored.append(tuple(raw))
            assert loaded.at == at and loaded.top_entry_id == "reset-api-key"
            assert (recent, later) == (["how do I reset my API key?"], [])
        assert stored[0] == stored[1], "the same text in the file either way"
    finally:
        await loop.dispose()
        await thread.dispose()


async def test_a_claim_sees_what_the_session_has_not_flushed_yet(tmp_path: Path) -> None:
    """The driver path flushes pending ORM changes first, as SQLAlchemy's autoflush does."""
    loop, thread = await _databases(tmp_path)
    await thread.dispose()
    try:
        async with loop.transaction() as session:
            session.add(
                KBDecision(
                    actor_key="fake:C1",
                    platform="fake",
                    conversation_key="c",
                    question="pending question",
                    band="answer",
                    at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
                )
            )
            recent = await decisions_repo.recent_questions(
                session, actor_key="fake:C1", since=datetime(2026, 11, 24, tzinfo=UTC)
            )
            assert recent == ["pending question"]
            assert await events_repo.claim_event(session, platform="fake", event_id="E1")
            assert not await events_repo.claim_event(session, platform="fake", event_id="E1")
    finally:
        await loop.dispose()
