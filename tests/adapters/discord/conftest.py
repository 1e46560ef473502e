"""Fixtures of the Discord adapter's tests; the emulator, its world and the bots are in
tests/adapters/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.adapters.discord.adapter import DiscordAdapter
from tests.adapters.discord.harness import Handlers


@pytest.fixture
def handlers() -> Handlers:
    return Handlers()


@pytest.fixture
async def adapters() -> AsyncIterator[list[DiscordAdapter]]:
    """Adapters a test started on their own (see `connect`); stopped at the end."""
    started: list[DiscordAdapter] = []
    yield started
    for adapter in started:
        await adapter.stop()
