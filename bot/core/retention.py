"""Housekeeping: forget inbound-event claims once no platform can redeliver the event, and (with
DATA_RETENTION_DAYS) what people wrote once it is older than that. Inbox rows (requests stored before
their acknowledgement, normally deleted within seconds) that are older than either go first: a row
must not outlive the claim that makes its replay a no-op, nor keep text past its retention.

The dedupe table gains a row for every event the bot handles; without this it grows forever. Runs in
every bot process; deleting (or purging) the same old rows twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.core import periodic, privacy
from storage import events_repo, inbox_repo
from storage.db import Database
from storage.session import DbSession

log = logging.getLogger(__name__)

BATCH = 5_000


async def _in_batches(
    database: Database, step: Callable[[DbSession, int], Awaitable[int]], *, batch: int, enough: int
) -> int:
    """Run `step(session, batch)` in one short transaction per batch until it changes fewer than
    `enough` rows; returns how many it changed in all."""
    total = 0
    while True:
        async with database.transaction() as session:
            changed = await step(session, batch)
        total += changed
        if changed < enough:
            return total
        await asyncio.sleep(0)  # let events waiting for the database go first


async def forget_old_events(database: Database, *, before: datetime, batch: int = BATCH) -> int:
    """Delete every claim older than `before`, one short transaction per batch; returns how many."""

    async def delete(session: DbSession, limit: int) -> int:
        return await events_repo.forget_handled_before(session, before=before, limit=limit)

    return await _in_batches(database, delete, batch=batch, enough=batch)


async def forget_old_requests(database: Database, *, before: datetime, batch: int = BATCH) -> int:
    """Delete every inbox row received before `before`; how many."""

    async def delete(session: DbSession, limit: int) -> int:
        return await inbox_repo.forget_received_before(session, before=before, limit=limit)

    return await _in_batches(database, delete, batch=batch, enough=batch)


async def purge_old_text(database: Database, *, before: datetime, batch: int = BATCH) -> int:
    """Replace questions and transcripts older than `before` (tickets closed before then), one short
    transaction per batch; rows stay, so counts do too. Returns how many rows changed."""

    async def purge(session: DbSession, limit: int) -> int:
        return await privacy.purge_expired(session, before=before, limit=limit)

    # Its limit is per table, so a batch that changed fewer rows than it is not the last one.
    return await _in_batches(database, purge, batch=batch, enough=1)


async def run_forever(
    database: Database,
    *,
    keep: timedelta,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    every: float = 3600.0,
    keep_text: timedelta | None = None,
) -> None:
    """A pass at start, then every `every` seconds until `stop` is set; stopping waits for a pass in
    progress (the first one always runs, so a bot restarted often still cleans up). `keep_text`
    (DATA_RETENTION_DAYS; None keeps it forever) is how long what people wrote is kept."""

    async def housekeeping() -> None:
        dropped = await forget_old_requests(database, before=clock() - min(keep, keep_text or keep))
        if dropped:
            log.warning("housekeeping: dropped %d stored requests never handled", dropped)
        forgotten = await forget_old_events(database, before=clock() - keep)
        if forgotten:
            log.info("housekeeping: forgot %d handled events older than %s", forgotten, keep)
        if keep_text is not None:
            purged = await purge_old_text(database, before=clock() - keep_text)
            if purged:
                log.info("housekeeping: removed the text of %d rows older than %s", purged, keep_text)

    await periodic.every(
        every,
        stop,
        housekeeping,
        log=log,
        failed="housekeeping pass failed; trying again next time",
        first_even_if_stopped=True,
    )
