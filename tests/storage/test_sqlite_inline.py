"""The in-loop SQLite driver: statements run on the event loop, but waiting for another connection's
write lock never blocks it, and a lock that is never released still fails after the timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import events_repo, migrate
from storage.db import Database
from storage.sqlite.inline import InlineConnection, inline_creator


def test_sqlite_uses_the_in_loop_driver_unless_asked_for_the_thread(tmp_path: Path) -> None:
    inline = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    threaded = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/b.db", sqlite_driver="thread")
    assert (inline.sqlite_driver, threaded.sqlite_driver) == ("inline", "thread")
    assert inline.another_connection_pool().sqlite_driver == "inline"


async def test_a_writer_waits_for_another_connections_lock_while_the_loop_lets_the_holder_finish(
    tmp_path: Path,
) -> None:
    first = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/shared.db")
    await migrate.upgrade(first.engine)
    second = first.another_connection_pool()  # a second process would see the file like this
    second_tries = asyncio.Event()
    order: list[str] = []

    async def hold_the_lock() -> None:
        async with first.transaction() as session:
            assert await events_repo.claim_event(session, platform="slack", event_id="E1")
            # Still holding the write lock: let the other connection try. With SQLite's busy handler
            # sleeping on the loop thread, this coroutine could not resume until that one gave up.
            await second_tries.wait()
            order.append("first commits")

    async def write_meanwhile() -> None:
        second_tries.set()
        # The transaction begins by taking the write lock (BEGIN IMMEDIATE): it waits here, in asyncio.
        async with second.transaction() as session:
            assert await events_repo.claim_event(session, platform="slack", event_id="E2")
            order.append("second wrote")

    started = time.monotonic()
    try:
        await asyncio.gather(hold_the_lock(), write_meanwhile())
        async with second.session() as session:
            stored = (await session.execute(text("SELECT event_id FROM processed_events"))).scalars().all()
    finally:
        await second.dispose()
        await first.dispose()
    assert order == ["first commits", "second wrote"]
    assert sorted(stored) == ["E1", "E2"]
    assert time.monotonic() - started < 5  # nowhere near the 10 s busy timeout


async def _inline(path: Path, *, busy_timeout: float) -> InlineConnection:
    return await inline_creator(str(path), busy_timeout=busy_timeout)()


async def test_a_lock_that_is_never_released_fails_after_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.commit()
    holder.execute("INSERT INTO t VALUES (1)")  # an open write transaction, never committed
    waiter = await _inline(path, busy_timeout=0.2)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await waiter.execute("INSERT INTO t VALUES (2)")
    finally:
        ticker.cancel()
        await waiter.close()
        holder.close()
    assert 0.2 <= time.monotonic() - started < 2
    assert ticks > 10  # the loop kept running other tasks while the statement waited


async def test_a_write_on_an_outdated_snapshot_fails_at_once_instead_of_waiting(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (x INTEGER)")
    reader = await _inline(path, busy_timeout=5)
    try:
        await reader.execute("BEGIN")
        await (await reader.execute("SELECT count(*) FROM t")).fetchall()  # the snapshot starts here
        other.execute("INSERT INTO t VALUES (1)")  # someone else commits after it
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError) as raised:
            await reader.execute("INSERT INTO t VALUES (2)")
        assert raised.value.sqlite_errorcode == sqlite3.SQLITE_BUSY_SNAPSHOT
        assert time.monotonic() - started < 1  # retrying could never succeed, so it does not wait
    finally:
        await reader.close()
        other.close()


async def test_commits_on_the_loop_leave_wal_checkpoints_to_a_thread(tmp_path: Path) -> None:
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/wal.db")
    try:
        await migrate.upgrade(database.engine)
        async with database.transaction() as session:
            # A checkpoint inside a commit would run (and fsync) on the event loop.
            assert (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
        for index in range(300):
            async with database.transaction() as session:
                await events_repo.claim_event(session, platform="slack", event_id=f"E{index}")
        checkpointer = database._checkpointer
        assert checkpointer is not None
        for _ in range(100):  # the thread checkpoints every 0.25 s
            if checkpointer.last[1]:
                break
            await asyncio.sleep(0.05)
        frames, copied = checkpointer.last
        assert copied > 0 and copied == frames, "the thread copied the WAL back into the database"
    finally:
        await database.dispose()
    assert not database._checkpointer._thread.is_alive()  # type: ignore[union-attr]
