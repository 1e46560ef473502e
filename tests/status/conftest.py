"""Status fixtures: channels subscribed through the real commands, and a way to let the outbox drain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from bot.app import status_page_routes
from bot.core.events import Conversation, Platform
from bot.web import WebServer, create_web_app
from tests.fake_adapter import SentMessage
from tests.harness import BotHarness


def channel(channel_id: str, *, workspace: str = "W1") -> Conversation:
    return Conversation(platform=Platform.CONSOLE, workspace_id=workspace, channel_id=channel_id)


async def subscribe(bot: BotHarness, channel_id: str, components: str = "") -> None:
    sent = await bot.staff_runs(f"/subscribe {components}".strip(), conversation=channel(channel_id))
    assert sent and sent[-1].text.startswith("Subscribed"), [m.text for m in sent]


async def deliver(bot: BotHarness) -> None:
    """Let the broadcast worker send everything queued (the bot's own worker, run to idle)."""
    assert bot.bot.broadcaster is not None
    await bot.bot.broadcaster.run_until_idle(limit_s=20)


def received(bot: BotHarness, channel_id: str) -> list[SentMessage]:
    """What the broadcasts put in a channel (not the bot's replies to commands typed there)."""
    return [m for m in bot.sent_to(channel_id) if m.delivery.reply_to is None]


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """`app` on a real web server, on an ephemeral port: its base URL."""
    server = WebServer(app, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


@pytest.fixture
async def page_url(bot: BotHarness) -> AsyncIterator[str]:
    """The bot's status page routes on a real web server, on an ephemeral port."""
    app = create_web_app(bot.bot.database, [status_page_routes(bot.bot.settings, bot.clock)])
    async with served(app) as url:
        yield url
