"""When the database drops its connections (a PostgreSQL restart, a failover), an event being
handled is handled again on a fresh connection rather than answered with an apology: the platform
already has its acknowledgement and will not send it again."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.dispatch import Outcome
from bot.core.events import Delivery, SentRef
from storage.db import Database
from tests.conftest import POSTGRES_URL
from tests.harness import COMMUNITY, STAFF_CHANNEL, BotHarness, make_settings


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


def refuse_connections_for(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`server_down(seconds=...)`: new connections are refused for that long, as while a restarting
    server is not listening yet."""
    connect = asyncpg.connect

    def server_down(*, seconds: float) -> None:
        until = time.monotonic() + seconds

        async def refused(*args: Any, **kwargs: Any) -> Any:
            if time.monotonic() < until:
                raise ConnectionRefusedError(111, "Connection refused")
            return await connect(*args, **kwargs)

        monkeypatch.setattr(asyncpg, "connect", refused)

    return server_down


async def test_a_card_posted_just_before_the_database_drops_its_connections_still_takes_the_teams_answer(
    postgres_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card's thread is noted on the ticket once the card is posted: a restart between the two
    must not leave the team answering in a thread the bot no longer knows is the ticket's."""
    bot = await BotHarness.create(make_settings(tmp_path), database=postgres_database)
    try:
        await bot.customer_says("hello")  # the pool now holds a connection
        post = bot.adapter.send

        async def post_then_restart(delivery: Delivery) -> SentRef:
            sent = await post(delivery)
            if delivery.conversation.channel_id == STAFF_CHANNEL:
                await _drop_pooled_connections(postgres_database)
                server_down(seconds=1.5)
            return sent

        server_down = refuse_connections_for(monkeypatch)
        monkeypatch.setattr(bot.adapter, "send", post_then_restart)
        await bot.customer_says("I want to talk to a person")
        monkeypatch.setattr(bot.adapter, "send", post)
        (card,) = bot.staff_posts()

        replies = await bot.says(
            bot.staff, "Try signing out and in again", conversation=bot.staff_room, thread=card.ref.message_id
        )

        assert [r.text for r in replies if r.channel_id == COMMUNITY and "signing out" in r.text], [
            (r.channel_id, r.text) for r in replies
        ]
    finally:
        await bot.close()
