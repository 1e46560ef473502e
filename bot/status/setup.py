"""Wiring the status capability into the bot: declared components, the broadcast worker, web routes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from aiohttp import web

from bot.adapters.base import Adapter
from bot.core.events import Conversation, Platform
from bot.settings import Settings
from bot.status.broadcast.pacing import policy_for
from bot.status.broadcast.worker import BroadcastWorker, WorkerConfig
from bot.status.components import ComponentsFileError, load_components_file
from storage import status_repo
from storage.db import Database

log = logging.getLogger(__name__)


async def sync_components_file(database: Database, settings: Settings) -> None:
    """Bring the declared components into the database. A broken file is logged, not fatal: the
    components already stored keep working and staff can fix the file."""
    try:
        declared = load_components_file(settings.components_file)
    except ComponentsFileError as error:
        log.warning("status components not loaded: %s", error)
        return
    async with database.transaction() as session:
        created = await status_repo.sync_components(session, declared=declared)
    log.info("status components: %d declared, %d new", len(declared), created)


def create_broadcaster(
    settings: Settings,
    database: Database,
    adapters: Mapping[Platform, Adapter],
    *,
    staff_channel: Conversation | None,
    **config: object,
) -> BroadcastWorker:
    """The outbox worker, sending through the bot's adapters."""

    def policy(lane: str):  # type: ignore[no-untyped-def]
        return policy_for(
            lane,
            discord_rate=settings.discord_global_rate,
            slack_workspace_rate=settings.slack_workspace_rate,
        )

    return BroadcastWorker(
        database,
        adapters,
        policy=policy,
        staff_channel=staff_channel,
        page_url=settings.public_url.rstrip("/") + "/",
        config=WorkerConfig(lease=timedelta(seconds=settings.broadcast_lease_seconds), **config),  # type: ignore[arg-type]
    )


def web_routes(settings: Settings, clock: Callable[[], datetime]) -> Callable[[web.Application], None]:
    from bot.status.page import installer

    return installer(clock=clock, url=settings.public_url.rstrip("/") + "/")
