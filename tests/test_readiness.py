"""/readyz: ready when the database answers and every configured platform is connected (Discord's
gateway, Slack's socket in Socket Mode; HTTP-mode Slack and the console once started); otherwise 503
with a body naming what is down. /healthz stays liveness: the database only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.app import Connections, create_bot
from bot.core.events import Platform
from bot.web import create_web_app
from storage.db import Database
from tests.adapters.discord.harness import DiscordWorld, start_bot, stop_bot
from tests.adapters.slack.harness import populate, slack_bot
from tests.emulators.discord import DiscordEmulator
from tests.emulators.slack import SlackEmulator
from tests.fake_adapter import FakeAdapter
from tests.harness import FakeClock, make_settings


class DroppingAdapter(FakeAdapter):
    """An adapter whose connection can drop after it started (`ReportsConnection`)."""

    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.up = True

    async def connected(self) -> bool:
        return self.up


async def readyz(app: Any) -> tuple[int, dict[str, Any]]:
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        return response.status, await response.json()


async def test_ready_once_started_and_not_while_stopping(database: Database, tmp_path: Path) -> None:
    adapter = FakeAdapter(Platform.CONSOLE)
    bot = await create_bot(
        make_settings(tmp_path),
        adapters={Platform.CONSOLE: adapter},
        clock=FakeClock(),
        database=database,
        with_web=False,
    )
    app = create_web_app(database, connections=bot.connections)
    status, body = await readyz(app)
    assert status == 503
    assert body == {
        "status": "not ready",
        "database": "ok",
        "adapters": {"console": "disconnected"},
        "down": ["console"],
    }

    await bot.start()
    assert await readyz(app) == (
        200,
        {"status": "ready", "database": "ok", "adapters": {"console": "connected"}, "down": []},
    )
    await bot.stop()
    status, body = await readyz(app)
    assert (status, body["down"]) == (503, ["console"])


async def test_a_dropped_connection_makes_it_not_ready(database: Database) -> None:
    slack, discord = DroppingAdapter(Platform.SLACK), DroppingAdapter(Platform.DISCORD)
    connections = Connections({Platform.SLACK: slack, Platform.DISCORD: discord})
    connections.started.update({Platform.SLACK, Platform.DISCORD})
    app = create_web_app(database, connections=connections)
    assert (await readyz(app))[0] == 200
    discord.up = False
    status, body = await readyz(app)
    assert status == 503
    assert body["down"] == ["discord"]
    assert body["adapters"] == {"slack": "connected", "discord": "disconnected"}


async def test_not_ready_when_the_database_is_gone() -> None:
    gone = Database.from_url("postgresql+asyncpg://nobody:s3cr3t-pw@127.0.0.1:1/none")
    try:
        status, body = await readyz(create_web_app(gone))
    finally:
        await gone.dispose()
    assert status == 503
    assert body == {"status": "not ready", "database": "unreachable", "adapters": {}, "down": ["database"]}
    assert "s3cr3t" not in str(body)


async def test_a_web_only_process_is_ready_with_its_database(database: Database) -> None:
    assert await readyz(create_web_app(database)) == (
        200,
        {"status": "ready", "database": "ok", "adapters": {}, "down": []},
    )


async def test_discord_is_connected_while_its_gateway_is_up(database: Database, tmp_path: Path) -> None:
    async with DiscordEmulator(route_limit=50) as emu:
        world = DiscordWorld.build(emu)
        bot, adapter = await start_bot(world, database, tmp_path)
        try:
            assert await bot.connections() == {"discord": True}
        finally:
            await stop_bot(bot)
        assert not await adapter.connected()


async def test_slack_socket_mode_is_connected_while_its_socket_is_up(
    database: Database, tmp_path: Path
) -> None:
    async with SlackEmulator(burst=20) as slack:
        populate(slack)
        async with slack_bot(slack, database, tmp_path, mode="socket") as running:
            assert await running.bot.connections() == {"slack": True}
            await running.adapter.stop_receiving()
            assert not await running.adapter.connected()


async def test_slack_http_mode_counts_as_connected_once_started(database: Database, tmp_path: Path) -> None:
    async with SlackEmulator(burst=20) as slack:
        populate(slack)
        async with slack_bot(slack, database, tmp_path, mode="http") as running:
            assert await running.bot.connections() == {"slack": True}
        assert not await running.adapter.connected()
