"""What one statement costs the PostgreSQL server, by shape: the floor under the bot's per-event cost.

One connection, statements sent one after another; the server backend's CPU (from /proc, so the
server must run on this machine) and the wall time are divided by the statements sent. Shapes: a
keyed read, an insert in autocommit (a commit each), the same inside one transaction (no commit
each), BEGIN + insert + COMMIT as three round trips (the shape before stop 23), and 16 rows in one
statement (what batching events together would cost per event). Figures:
research/notes/postgres_throughput.md ("Stop 24").

    TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m research.pg_statement_cost [--statements 4000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable

import asyncpg

from research.server_cpu import server_cpu_seconds

TABLE = "research_statement_cost"
BATCH = 16


async def measure(url: str, statements: int) -> dict[str, dict[str, float]]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    insert = f"INSERT INTO {TABLE} (k) VALUES ($1) ON CONFLICT DO NOTHING"
    try:
        pid = await connection.fetchval("SELECT pg_backend_pid()")
        await connection.execute(f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, k text UNIQUE)")

        async def autocommit() -> None:
            for i in range(statements):
                await connection.execute(insert, f"a{i}")

        async def keyed_read() -> None:
            for i in range(statements):
                await connection.fetchrow(f"SELECT * FROM {TABLE} WHERE k = $1", f"a{i}")

        async def in_one_transaction() -> None:
            async with connection.transaction():
                for i in range(statements):
                    await connection.execute(insert, f"b{i}")

        async def begin_insert_commit() -> None:
            for i in range(statements):
                await connection.execute("BEGIN")
                await connection.execute(insert, f"c{i}")
                await connection.execute("COMMIT")

        async def rows_in_one_statement() -> None:
            for i in range(statements // BATCH):
                keys = [f"d{i}_{j}" for j in range(BATCH)]
                await connection.fetch(
                    f"INSERT INTO {TABLE} (k) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING id",
                    keys,
                )

        shapes: dict[str, Callable[[], Awaitable[None]]] = {
            "insert, autocommit": autocommit,
            "keyed read": keyed_read,
            "insert inside one transaction": in_one_transaction,
            "BEGIN + insert + COMMIT": begin_insert_commit,
            f"insert, {BATCH} rows a statement (per row)": rows_in_one_statement,
        }
        figures: dict[str, dict[str, float]] = {}
        for name, run in shapes.items():
            cpu, started = server_cpu_seconds([pid]), time.perf_counter()
            await run()
            figures[name] = {
                "wall_ms": round((time.perf_counter() - started) / statements * 1000, 3),
                "server_cpu_ms": round((server_cpu_seconds([pid]) - cpu) / statements * 1000, 3),
            }
        return figures
    finally:
        await connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", ""))
    parser.add_argument("--statements", type=int, default=4000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("needs PostgreSQL on this machine: --database-url or TEST_DATABASE_URL")
    figures = asyncio.run(measure(args.database_url, args.statements))
    for name, row in figures.items():
        print(f"{name:42s} wall {row['wall_ms']:.3f} ms  server CPU {row['server_cpu_ms']:.3f} ms")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
