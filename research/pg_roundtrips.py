"""Where an event's time goes on PostgreSQL: statements, round trips and CPU per kind of event.

`bench.pipeline`'s workload on a fresh schema. Serially, every asyncpg call is counted per kind of
event (a round trip each: BEGIN, COMMIT, a statement through SQLAlchemy or straight on asyncpg),
with the bot process's CPU and wall time per event. With `--concurrent`, the benchmark's 8 clients
run instead, and the report adds the CPU per event of the bot process and of its 8 server backends
(when the server runs on this machine), and what those sessions were waiting for (sampled from
`pg_stat_activity`):
`ClientRead` inside a transaction means the server waits for the bot. The figures are in
research/notes/postgres_throughput.md.

    TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m research.pg_roundtrips [--events 1000] [--concurrent]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from asyncpg import connection as asyncpg_connection
from asyncpg import prepared_stmt
from sqlalchemy import text

from bench.pipeline import Workload, fresh_postgres, open_some_tickets, percentile, start_bot, write_kb
from bench.pipeline_kinds import kind_of
from research.server_cpu import server_cpu_seconds

CALLS: Counter[str] = Counter()


def _count(cls: type, method: str, label: str) -> None:
    """Count calls of an asyncpg coroutine method: each is one round trip to the server."""
    original: Callable[..., Awaitable[Any]] = getattr(cls, method)

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        CALLS[label] += 1
        return await original(self, *args, **kwargs)

    setattr(cls, method, counted)


_count(asyncpg_connection.Connection, "execute", "simple (BEGIN, COMMIT)")
_count(asyncpg_connection.Connection, "fetch", "statement on asyncpg")
_count(prepared_stmt.PreparedStatement, "fetch", "statement via SQLAlchemy")
_count(asyncpg_connection.Connection, "prepare", "prepare (SQLAlchemy's cache missed)")


async def pool_pids(bot: Any, clients: int) -> list[int]:
    """The server pids of the connections the clients will use: `clients` transactions held open
    together, each on its own pooled connection."""
    together = asyncio.Barrier(clients)
    pids: list[int] = []

    async def hold() -> None:
        async with bot.database.transaction() as session:
            pids.append(int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
            await together.wait()

    await asyncio.gather(*(hold() for _ in range(clients)))
    return pids


async def sample_waits(url: str, pids: list[int], stop: asyncio.Event) -> Counter[str]:
    """What the benchmark's server sessions wait for, sampled every 10 ms (other sessions on the
    same server, other tests and benchmarks, are left out)."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    seen: Counter[str] = Counter()
    samples = 0
    while not stop.is_set():
        rows = await connection.fetch(
            "SELECT state, wait_event FROM pg_stat_activity WHERE pid = any($1::int[])", pids
        )
        samples += 1
        for row in rows:
            seen[f"{row['state']}: {row['wait_event'] or 'on CPU'}"] += 1
        await asyncio.sleep(0.01)
    await connection.close()
    return Counter({key: round(count / max(1, samples), 2) for key, count in seen.items()})


async def serial(bot: Any, workload: Workload, events: int) -> None:
    calls: dict[str, Counter[str]] = defaultdict(Counter)
    count: Counter[str] = Counter()
    wall: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    for index in range(events):
        event = workload.event(index)
        kind = kind_of(event)
        before = CALLS.copy()
        started, cpu_started = time.perf_counter(), time.process_time()
        await bot.dispatcher.handle(event)
        wall[kind] += time.perf_counter() - started
        cpu[kind] += time.process_time() - cpu_started
        calls[kind].update(CALLS - before)
        count[kind] += 1
    for kind, n in count.most_common():
        trips = sum(calls[kind].values()) / n
        detail = ", ".join(f"{label} {value / n:.2f}" for label, value in sorted(calls[kind].items()))
        print(
            f"{kind:20} {n:5} events  {trips:5.2f} round trips ({detail})  "
            f"CPU {cpu[kind] / n * 1000:.2f} ms  wall {wall[kind] / n * 1000:.2f} ms"
        )
    total = sum(count.values())
    trips = sum(sum(c.values()) for c in calls.values()) / total
    print(
        f"{'all':20} {total:5} events  {trips:5.2f} round trips  "
        f"CPU {sum(cpu.values()) / total * 1000:.2f} ms  wall {sum(wall.values()) / total * 1000:.2f} ms"
    )


async def concurrent(bot: Any, workload: Workload, events: int, url: str) -> None:
    stream = (workload.event(index) for index in range(events))
    latencies: list[float] = []

    async def client() -> None:
        for event in stream:
            started = time.perf_counter()
            await bot.dispatcher.handle(event)
            latencies.append((time.perf_counter() - started) * 1000)

    stop = asyncio.Event()
    pids = await pool_pids(bot, 8)
    waits = asyncio.create_task(sample_waits(url, pids, stop))
    cpu_started, server_started, started = time.process_time(), server_cpu_seconds(pids), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(8)))
    elapsed = time.perf_counter() - started
    bot_cpu, server_cpu = time.process_time() - cpu_started, server_cpu_seconds(pids) - server_started
    stop.set()
    print(
        f"8 clients: {events / elapsed:.1f} events/s, p50 {statistics.median(latencies):.2f} ms, "
        f"p99 {percentile(latencies, 0.99):.2f} ms; CPU per event: bot {bot_cpu / events * 1000:.2f} ms, "
        f"server {server_cpu / events * 1000:.2f} ms; load average {os.getloadavg()[0]:.1f}"
    )
    print("the 8 connections' server sessions, on average:")
    for key, share in (await waits).most_common(8):
        print(f"  {share:5.2f}  {key}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrent", action="store_true", help="8 clients, as bench.pipeline runs")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", ""))
    args = parser.parse_args()
    if not args.database_url:
        parser.error("needs PostgreSQL: --database-url or TEST_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        kb_path = Path(tmp) / "kb"
        write_kb(kb_path, 1000)
        database, drop = await fresh_postgres(args.database_url)
        try:
            bot = await start_bot(database, kb_path)
            workload = Workload(7, customers=max(50, args.events // 20))
            await open_some_tickets(bot, workload)
            warm = Workload(8, customers=50)
            for index in range(300):  # fill the statement caches
                await bot.dispatcher.handle(warm.event(10**6 + index))
            if args.concurrent:
                await concurrent(bot, workload, args.events, args.database_url)
            else:
                await serial(bot, workload, args.events)
            await database.dispose()
        finally:
            await drop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
