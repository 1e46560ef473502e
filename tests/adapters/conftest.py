"""Fixtures shared by the Discord end-to-end tests: the emulator, its world, and the bots a test
starts; and a database for the tests of either platform that run `supportbot run` processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import SupportBot
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
