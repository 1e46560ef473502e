"""When the database drops its connections (a PostgreSQL restart, a failover), an event being
handled is handled again on a fresh connection rather than answered with an apology: the platform
already has its acknowledgement and will not send it again."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.dispatch import Outcome
from storage.db import Database
from tests.conftest import POSTGRES_URL
from tests.harness import BotHarness, make_settings


async def _drop_pooled_connections(database: Database) -> int:
    """End, on the server, every connection the bot's pool holds (as a restart does)."""
    pool = database.engine.sync_engine.pool
    held = [await database.engine.connect() for _ in range(max(1, pool.checkedin()))]  # type: ignore[attr-defined]
    pids = []
    for connection in held:
        assert connection.sync_connection is not None
        pids.append(connection.sync_connection.connection.driver_connection.get_server_pid())  # type: ignore[union-attr]
        await connection.close()
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        for pid in pids:
            await connection.exec_driver_sql("SELECT pg_terminate_backend($1)", (pid,))
    await admin.dispose()
    return len(pids)


async def test_a_question_asked_as_the_database_drops_its_connections_is_still_answered(
    postgres_database: Database, tmp_path: Path
) -> None:
    bot = await BotHarness.create(make_settings(tmp_path), database=postgres_database)
    try:
        await bot.customer_says("hello")  # the pool now holds a connection
        assert await _drop_pooled_connections(postgres_database) >= 1

        replies = await bot.customer_says("How do I reset my API key?")

        assert bot.last_outcome is Outcome.HANDLED
        assert [r.text for r in replies if "went wrong" in r.text] == []
        assert any("API key" in (r.delivery.message.title or "") + r.text for r in replies), [
            r.text for r in replies
        ]
    finally:
        await bot.close()
