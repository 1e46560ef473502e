"""Reading the whole status picture once (for answers, commands and the status page)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.status.components import Known
from bot.status.messages import Snapshot
from storage import status_repo
from storage.models import StatusComponent
from storage.session import DbSession


async def load_snapshot(
    session: DbSession,
    *,
    now: datetime,
    page_url: str,
    components: Sequence[StatusComponent] | None = None,
) -> Snapshot:
    """Everything a status answer needs. Pass `components` when the caller has just read them."""
    incidents = await status_repo.active_incidents(session)
    updates = await status_repo.updates_for(session, incident_ids=[i.id for i in incidents if i.id])
    return Snapshot(
        components=list(components) if components is not None else await status_repo.list_components(session),
        incidents=incidents,
        updates=updates,
        maintenance=await status_repo.maintenance_windows(session, at=now),
        now=now,
        page_url=page_url,
    )


async def known_components(session: DbSession) -> list[Known]:
    return [Known.of(c) for c in await status_repo.list_components(session)]


HISTORY_DAYS = 14


def history_start(now: datetime) -> datetime:
    return now - timedelta(days=HISTORY_DAYS)
