"""A broadcast worker in its own process, for the crash and multi-process tests:
`python -m tests.status.worker_process DB_URL SCHEMA SINK_URL OWNER LEASE_S`. Prints `ready`, waits
for a line on stdin, sends everything it can claim, prints `done <sent>`."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from bot.core.events import Platform
from bot.status.broadcast.pacing import LanePolicy
from bot.status.broadcast.worker import BroadcastWorker, WorkerConfig
from storage.db import Database
from tests.status.sink import SinkAdapter


async def main(url: str, schema: str, sink_url: str, owner: str, lease: float) -> None:
    database = Database.from_url(url, schema=schema or None)
    adapter = SinkAdapter(sink_url, owner=owner, gives_up_after=lease / 2)
    await adapter.start(lambda event: asyncio.sleep(0))  # type: ignore[arg-type,return-value]
    worker = BroadcastWorker(
        database,
        {Platform.CONSOLE: adapter},
        policy=lambda lane: LanePolicy(rate=None),
        staff_channel=None,
        page_url="http://status.test/",
        # A send may wait as long as half the lease (the worker's own cap): under a loaded machine the
        # sink's "both owners seen" gate can hold the first answers for seconds, and a send that timed
        # out is retried (at least once, by design), which would blur what the tests count.
        config=WorkerConfig(lease=timedelta(seconds=lease), send_timeout=lease / 2),
        owner=owner,
    )
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await worker.run_until_idle(limit_s=60)
    print(f"done {worker.sent}", flush=True)
    await adapter.stop()
    await database.dispose()


if __name__ == "__main__":
    db_url, db_schema, sink, name, lease_s = sys.argv[1:6]
    asyncio.run(main(db_url, db_schema, sink, name, float(lease_s)))
