"""Fixtures shared by the Discord end-to-end tests: the emulator, its world, and the bots a test starts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import SupportBot
from tests.adapters.discord.harness import DiscordWorld, stop_bot
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
