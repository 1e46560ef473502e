"""Maintenance windows begin and end by the clock: the subscriptions that were told one was coming
hear when it starts and when it is over, as they would from Statuspage.

Runs in every bot process; a claim in the database (the one inbound events use) makes sure each
start or end is announced by exactly one of them. A window ended or cancelled with `/maintenance
end` was announced by that command and is left alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.core import periodic
from bot.status import messages
from storage import events_repo, outbox_repo, status_repo
from storage.db import Database

log = logging.getLogger(__name__)

CLAIM_PLATFORM = "maintenance"
"""These claims sit beside inbound events' (platform, event id) claims."""
RECENT = timedelta(hours=1)
"""A start or end older than this when a pass first sees it (the bot was down) is not news any more.
Claims are kept longer than this (housekeeping keeps them at least 12 hours), so a restart within
it announces nothing twice."""


async def announce_turns(database: Database, *, at: datetime) -> int:
    """Queue a notice for each window that began or ended by the clock in the last `RECENT`, unless
    another pass (this process's or another's) already did; how many were queued."""
    async with database.session() as session:
        turning = await status_repo.maintenance_turning(session, since=at - RECENT, until=at)
    queued = 0
    for window in turning:
        assert window.starts_at is not None and window.ends_at is not None
        ended = window.ends_at <= at
        async with database.transaction() as session:
            claimed = await events_repo.claim_event(
                session, platform=CLAIM_PLATFORM, event_id=f"{window.id}:{'ended' if ended else 'started'}"
            )
            if claimed is None:
                continue
            if ended:
                title, text = messages.maintenance_ended_notice(window, cancelled=False, note="")
            else:
                title, text = messages.maintenance_started_notice(window)
            await outbox_repo.create_broadcast(
                session,
                kind="announce",
                incident_id=None,
                title=title,
                body=text,
                components=status_repo.split_names(window.components),
                at=at,
            )
            queued += 1
    return queued


async def run_forever(
    database: Database,
    *,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    every: float = 30.0,
    wake: Callable[[], None] | None = None,
) -> None:
    """A pass every `every` seconds until `stop` is set; `wake` tells the broadcast worker there is
    work. A pass that fails is logged and the next one tries again."""

    async def announce() -> None:
        if await announce_turns(database, at=clock()) and wake is not None:
            wake()

    await periodic.every(
        every, stop, announce, log=log, failed="maintenance notices pass failed; trying again next time"
    )
