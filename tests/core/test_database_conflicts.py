"""When PostgreSQL ends an event's transaction to break a deadlock (or a serialization failure),
nothing the event did was kept: the event is handled again, and the customer never sees an apology
for a conflict that a second try resolves."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.core.dispatch import Outcome
from bot.core.events import MessageReceived
from storage import tickets_repo
from storage.db import Database
from tests.harness import BotHarness, make_settings

_WAITING_BACKEND = text(
    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() LIMIT 1"
)
_ITS_ADVISORY_LOCK = text(
    "SELECT classid::bigint, objid::bigint FROM pg_locks"
    " WHERE locktype = 'advisory' AND pid = :pid AND granted"
)


def _advisory_key(classid: int, objid: int) -> int:
    """The bigint key `pg_advisory_xact_lock(key)` took, from the halves pg_locks shows."""
    key = (classid << 32) | objid
    return key - (1 << 64) if key >= 1 << 63 else key


async def test_an_escalation_caught_in_a_deadlock_is_handled_again_not_apologised_for(
    postgres_database: Database, tmp_path: Path
) -> None:
    bot = await BotHarness.create(make_settings(tmp_path), database=postgres_database)
    try:
        await bot.customer_says("I want to talk to a human about my invoice")  # the counter row exists
        engine = postgres_database.engine
        async with engine.connect() as other:
            # Another transaction holds the ticket counter, as a second process's escalation would.
            # Its own deadlock check waits longer, so the bot's transaction is the one PostgreSQL ends.
            await other.execute(text("SET deadlock_timeout = '20s'"))
            await other.execute(text("SELECT value FROM counters WHERE name = 'ticket' FOR UPDATE"))

            asked = bot.says(bot.other_customer, "Please get me a human, my export failed")
            escalation = asyncio.create_task(asked)
            for _ in range(200):  # the bot holds its conversation's lock and waits for the counter
                async with engine.connect() as probe:
                    pid = (await probe.execute(_WAITING_BACKEND)).scalar()
                    held = (await probe.execute(_ITS_ADVISORY_LOCK, {"pid": pid})).first() if pid else None
                if held is not None:
                    break
                await asyncio.sleep(0.05)
            assert held is not None, "the escalation never waited for the counter"

            # Now wait for the bot's conversation lock: a cycle, which PostgreSQL breaks by ending
            # the bot's transaction after its deadlock_timeout.
            await other.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _advisory_key(*held)})
            await other.commit()

        replies = await asyncio.wait_for(escalation, timeout=30)

        assert bot.last_outcome is Outcome.HANDLED
        assert [r.text for r in replies if "went wrong" in r.text] == []
        async with postgres_database.transaction() as session:
            tickets = await tickets_repo.open_for_requester(session, requester_key=bot.other_customer.key)
        assert len(tickets) == 1
    finally:
        await bot.close()


async def test_a_decision_id_another_process_took_after_a_restore_is_not_apologised_for(
    postgres_database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each process reserves decision ids from the sequence a block at a time. A restore (or a
    failover that lost WAL) with bots running moves the sequence back, so another process is handed
    ids this one still holds, and uses them first."""
    first = await BotHarness.create(make_settings(tmp_path), database=postgres_database)
    other_pool = postgres_database.another_connection_pool()
    second = await BotHarness.create(make_settings(tmp_path), database=other_pool)
    try:
        await first.customer_says("How do I reset my API key?")  # reserves a block, uses its first id
        async with postgres_database.transaction() as session:
            await session.execute(
                text("SELECT setval(pg_get_serial_sequence('kb_decisions', 'id'), max(id)) FROM kb_decisions")
            )
        # `second` is handed the id `first` holds next, and uses it first.
        asked = MessageReceived(
            actor=second.other_customer,
            conversation=second.community,
            text="where can I see my invoices?",
            message_id="second-1",
            event_id="second-1",
        )
        assert await second.send(asked) and second.last_outcome is Outcome.HANDLED

        with caplog.at_level(logging.WARNING, logger="bot.core.dispatch"):
            replies = await first.customer_says("my csv export failed")

        assert first.last_outcome is Outcome.HANDLED
        assert [r.text for r in replies if "went wrong" in r.text] == []
        retried = [r.getMessage() for r in caplog.records if "again in" in r.getMessage()]
        assert retried and "kb_decisions_pkey" in retried[0], "the id was taken, and the event ran again"
    finally:
        await second.close()
        await first.close()
        await other_pool.dispose()
