"""The outbox survives `kill -9` mid-broadcast, and several processes share one broadcast.

The recipient is an HTTP sink in this test process; the worker runs in a subprocess. The sink counts
every request per idempotency key (sends) and creates one message per key (what readers see), the
way Discord treats `nonce` + `enforce_nonce`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import text

from storage import subscriptions_repo
from storage.db import Database
from tests.harness import BotHarness, make_settings
from tests.status.sink import Sink

ROOT = Path(__file__).resolve().parents[2]


async def _queue_incident(bot: BotHarness, channels: int) -> set[str]:
    async with bot.bot.database.transaction() as session:
        for index in range(channels):
            await subscriptions_repo.subscribe(
                session,
                platform="console",
                workspace_id="W1",
                channel_id=f"news-{index}",
                is_direct=False,
                components=[],
                actor_key="console:S1",
            )
    await bot.staff_runs("/incident open api major API errors")
    return set((await _states(bot.bot.database)).keys())


async def _states(database: Database) -> dict[str, str]:
    async with database.transaction() as session:
        rows = await session.execute(text("SELECT key, state FROM status_outbox"))
        return dict(rows.all())  # type: ignore[arg-type]


async def _some_sent(database: Database) -> None:
    """Until at least one delivery is confirmed sent in the outbox."""
    while True:
        if "sent" in (await _states(database)).values():
            return
        await asyncio.sleep(0.05)


async def _tried_unconfirmed(database: Database) -> set[str]:
    """Rows sent at least once and not confirmed: in flight ("sending"), or back to "pending" for a
    retry after the send timed out with no answer (the sink had it all the same)."""
    async with database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT key FROM status_outbox"
                " WHERE state = 'sending' OR (state = 'pending' AND attempts > 0)"
            )
        )
        return set(rows.scalars())


async def _target(database: Database) -> tuple[str, str]:
    url = database.engine.url.render_as_string(hide_password=False)
    if database.dialect != "postgresql":
        return url, ""
    async with database.transaction() as session:
        return url, (await session.execute(text("SELECT current_schema()"))).scalar_one()


async def _spawn(
    database: Database, sink: Sink, owner: str, *, lease: float = 1.0
) -> asyncio.subprocess.Process:
    url, schema = await _target(database)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.status.worker_process",
        url,
        schema,
        sink.url,
        owner,
        str(lease),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line.strip() == b"ready", line
    return process


def _go(process: asyncio.subprocess.Process) -> None:
    assert process.stdin is not None
    process.stdin.write(b"go\n")


async def _finish(process: asyncio.subprocess.Process) -> str:
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out
    return out.decode()


async def test_kill_9_mid_broadcast_then_restart_loses_nothing_and_repeats_nothing(bot: BotHarness) -> None:
    expected = await _queue_incident(bot, 300)
    # After 100 messages the sink keeps accepting but stops answering: the worker has messages in
    # flight that exist on the "platform" but are not yet confirmed in the outbox. Then: SIGKILL.
    sink = Sink(hang_after=100)
    await sink.start()
    try:
        first = await _spawn(bot.bot.database, sink, "first")
        _go(first)
        await asyncio.wait_for(sink.reached.wait(), 30)
        # The answered sends are confirmed in the outbox by the worker's next commit: on a loaded
        # machine that can come after the sink stopped answering, so the kill waits for it.
        await asyncio.wait_for(_some_sent(bot.bot.database), 30)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        assert first.returncode == -signal.SIGKILL

        at_kill = await _states(bot.bot.database)
        confirmed = {key for key, state in at_kill.items() if state == "sent"}
        # In doubt: sent, never answered. Under a loaded machine the kill can come after the
        # worker's send timeout (half its 1 s lease), which puts those rows back to pending.
        in_doubt = await _tried_unconfirmed(bot.bot.database)
        assert confirmed and in_doubt, "the kill landed mid-broadcast, with sends in flight"
        assert len(confirmed) < len(expected)

        sink.hang_after = None
        second = await _spawn(bot.bot.database, sink, "second")
        _go(second)
        await _finish(second)
    finally:
        await sink.stop()

    assert set((await _states(bot.bot.database)).values()) == {"sent"}
    assert set(sink.created) == expected, "no loss: every subscription got the incident"
    assert all(sink.posts[key] == 1 for key in confirmed), "nothing confirmed before the kill was sent again"
    resent = {key for key, count in sink.posts.items() if count > 1}
    assert resent <= in_doubt, "only deliveries in doubt at the kill were sent twice"
    # ...and those resends carried the same key, so the platform kept one message each.
    assert len(sink.created) == len(expected)


async def test_two_worker_processes_share_one_broadcast_without_duplicates(
    postgres_database: Database, tmp_path: Path
) -> None:
    bot = await BotHarness.create(make_settings(tmp_path), database=postgres_database)
    expected = await _queue_incident(bot, 600)
    sink = Sink(delay=0.005, wait_for_owners=2)
    await sink.start()
    try:
        workers = [await _spawn(postgres_database, sink, name, lease=30) for name in ("one", "two")]
        for worker in workers:
            _go(worker)
        for worker in workers:
            await _finish(worker)
    finally:
        await sink.stop()
        await bot.close()

    assert set(sink.created) == expected
    # A 503 from the sink's gate, or an answer that came after the sender timed out, is a failed send
    # retried by design (same key: the platform keeps one message). What must never happen is one
    # delivery accepted twice while its sender was listening: claimed by both processes, or resent
    # after the sender heard "accepted".
    assert all(any(status == 200 for _, status, _ in tries) for tries in sink.attempts.values())
    twice = sink.accepted_twice()
    assert not twice, f"each delivery was accepted exactly once: {twice}"
    assert sink.by_owner["one"] > 0 and sink.by_owner["two"] > 0, dict(sink.by_owner)
