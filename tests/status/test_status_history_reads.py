"""The status page and API read the components' status history only where an answer shows it:
in each incident update's `affected_components`, and only as far back as the updates shown."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from storage import status_repo
from storage.models import ComponentStatusChange
from tests.harness import BotHarness

HISTORY_TABLE = "status_component_history"


@contextmanager
def history_reads() -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent to the database (on any engine: SQLite's loop sessions have their own)
    that touches the status history table, with its parameters, while the block runs."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if HISTORY_TABLE in statement:
            seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _moments(parameters: Any) -> list[datetime]:
    """The datetimes bound to a statement, as each driver receives them (SQLite: text, no zone)."""
    values = parameters.values() if isinstance(parameters, dict) else parameters
    found = []
    for value in values:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                continue
        if isinstance(value, datetime):
            found.append(value if value.tzinfo else value.replace(tzinfo=UTC))
    return found


async def _fetch(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        await response.read()


async def test_the_page_and_the_status_answers_never_read_the_status_history(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/maintenance schedule dashboard 2026-11-24T10:00Z 2026-11-24T13:00Z Upgrade")
    await bot.staff_runs("/incident open api major API slow")
    bot.clock.advance(minutes=10)
    await bot.staff_runs("/incident update 1 identified impact=critical Every call fails")

    for path in ("/", "/api/v2/status.json", "/api/v2/components.json"):
        with history_reads() as reads:
            await _fetch(f"{page_url}{path}")
        assert reads == [], f"{path} shows no update's components, yet read the history"


async def _old_history_then_an_incident(bot: BotHarness) -> datetime:
    """A window long done, hundreds of status changes after it, then an incident today: when it
    was opened."""
    await bot.staff_runs("/maintenance schedule dashboard 2026-11-24T10:00Z 2026-11-24T13:00Z Upgrade")
    bot.clock.advance(hours=4)
    bot.clock.advance(days=60)
    long_ago = bot.clock.now - timedelta(days=59)
    async with bot.bot.database.transaction() as session:
        (api,) = [c for c in await status_repo.list_components(session) if c.name == "api"]
        assert api.id is not None
        for n in range(300):
            old, new = ("operational", "degraded_performance")[:: 1 if n % 2 == 0 else -1]
            at = long_ago + timedelta(minutes=n)
            session.add(ComponentStatusChange(component_id=api.id, old_status=old, new_status=new, at=at))
    opened = bot.clock.now
    await bot.staff_runs("/incident open api major API slow")
    bot.clock.advance(minutes=10)
    await bot.staff_runs("/incident update 1 identified impact=critical Every call fails")
    return opened


@pytest.mark.parametrize(
    "path", ["/api/v2/incidents.json", "/api/v2/incidents/unresolved.json", "/api/v2/summary.json"]
)
async def test_the_incident_answers_read_the_history_only_from_their_incidents_first_update(
    bot: BotHarness, page_url: str, path: str
) -> None:
    opened = await _old_history_then_an_incident(bot)

    with history_reads() as reads:
        await _fetch(f"{page_url}{path}")

    assert reads, f"{path} shows what each update did to its components: it reads the history"
    for statement, parameters in reads:
        bounds = _moments(parameters)
        assert bounds and min(bounds) >= opened, (
            f"{path} read the history from {min(bounds, default=None)}, before the incident "
            f"it shows was opened ({opened}): {statement}"
        )
