"""Fixtures shared by the Discord end-to-end tests: the emulator, its world, and the bots a test
starts; a database for the tests of either platform that run `supportbot run` processes; and a bot
slow to note a staff card's thread, for either platform."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import SupportBot
from storage import tickets_repo
from tests.adapters.discord.harness import DiscordWorld, stop_bot
from tests.conftest import postgres_for_processes
from tests.emulators.discord import DiscordEmulator


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(route_limit=50) as emulator:
        yield emulator


@pytest.fixture
def world(emu: DiscordEmulator) -> DiscordWorld:
    return DiscordWorld.build(emu)


@pytest.fixture
async def bots() -> AsyncIterator[list[SupportBot]]:
    """Bots a test started; stopped at the end whatever happened."""
    started: list[SupportBot] = []
    yield started
    for bot in started:
        await stop_bot(bot)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database for `supportbot run` processes, which take a URL (not a test schema)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    async with postgres_for_processes("tprocess") as url:
        yield url


NOTING_TAKES = 0.75
"""Seconds the bot takes to note a card's thread, with `slow_to_note_the_card`: a slow database's."""


@pytest.fixture
def slow_to_note_the_card(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real `set_staff_thread`, run late, as on a loaded machine or while PostgreSQL restarts: a
    team member can answer under the card before the bot has noted its thread."""
    noted = tickets_repo.set_staff_thread

    async def late(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(NOTING_TAKES)
        await noted(*args, **kwargs)

    monkeypatch.setattr(tickets_repo, "set_staff_thread", late)
