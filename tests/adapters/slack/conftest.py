"""The Slack workspace and a bot connected to it, as most Slack adapter tests start."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage.db import Database
from tests.adapters.slack.harness import SlackBot, populated_slack, slack_bot
from tests.emulators.slack import SlackEmulator


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with populated_slack(burst=20) as emulator:
        yield emulator


@pytest.fixture
async def bot(slack: SlackEmulator, database: Database, tmp_path: object) -> AsyncIterator[SlackBot]:
    async with slack_bot(slack, database, tmp_path) as running:
        yield running
