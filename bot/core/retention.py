"""Housekeeping: forget inbound-event claims once no platform can redeliver the event.

The dedupe table gains a row for every event the bot handles; without this it grows forever. Runs in
every bot process; deleting the same old rows twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from storage import events_repo
from storage.db import Database

log = logging.getLogger(__name__)

BATCH = 5_000


async def forget_old_events(database: Database, *, before: datetime, batch: int = BATCH) -> int:
    """Delete every claim older than `before`, one short transaction per batch; returns how many."""
    total = 0
    while True:
        async with database.transaction() as session:
            deleted = await events_repo.forget_handled_before(session, before=before, limit=batch)
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # let events waiting for the database go first


async def run_forever(
    database: Database,
    *,
    keep: timedelta,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    every: float = 3600.0,
) -> None:
    """A pass at start, then every `every` seconds until `stop` is set; stopping waits for a pass in
    progress (the first one always runs, so a bot restarted often still cleans up)."""
    while True:
        try:
            forgotten = await forget_old_events(database, before=clock() - keep)
            if forgotten:
                log.info("housekeeping: forgot %d handled events older than %s", forgotten, keep)
        except Exception:
            log.exception("housekeeping pass failed; trying again next time")
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
