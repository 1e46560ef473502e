"""The bot in its own process (`python -m bot run`), configured through its environment as in
production: started, read (its log as it comes, its web port), probed (`/readyz`), killed. For the
multi-process test and the chaos benchmark, where the bot must die the way a real one does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage import migrate, subscriptions_repo
from storage.db import Database
from tests.emulators.discord import DiscordEmulator, Guild
from tests.emulators.slack import SlackEmulator

ROOT = Path(__file__).resolve().parent.parent
_PORT = re.compile(r"web server on http://127\.0\.0\.1:(\d+)")


class BotProcess:
    """One `supportbot run`. `env` holds its settings (names as in .env.example); nothing of this
    process's own settings leaks in, so a test's secrets and URLs are exactly the ones given."""

    def __init__(self, name: str, env: Mapping[str, str], *, cwd: Path) -> None:
        self.name = name
        self.env = dict(env)
        self.cwd = cwd
        self.log: list[str] = []
        self.port: int | None = None
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._line = asyncio.Condition()

    @property
    def slack_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, *, timeout: float = 60.0) -> None:  # noqa: ASYNC109 - a start-up budget
        """Start and return once `/readyz` says the database and every platform are up."""
        base = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_SECRET", "_URL"))}
        self.port = None
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**base, "PYTHONPATH": str(ROOT), "WEB_PORT": "0", **self.env},
            cwd=self.cwd,
        )
        mark = len(self.log)  # the log runs on across restarts
        self._reader = asyncio.create_task(self._read(self.process))
        deadline = time.monotonic() + timeout
        await self.wait_for_log(_PORT.pattern, timeout=timeout, since=mark)
        while not await self.ready():
            if time.monotonic() > deadline or not self.running:
                raise RuntimeError(f"bot {self.name} not ready:\n" + "".join(self.log[-30:]))
            await asyncio.sleep(0.1)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while line := (await process.stderr.readline()).decode(errors="replace"):
            self.log.append(line)
            if self.port is None and (found := _PORT.search(line)):
                self.port = int(found.group(1))
            async with self._line:
                self._line.notify_all()
        async with self._line:
            self._line.notify_all()

    async def wait_for_log(self, pattern: str, *, timeout: float = 30.0, since: int = 0) -> re.Match[str]:  # noqa: ASYNC109
        """The first log line from `since` on that matches `pattern`."""
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def seen() -> bool:
            for line in self.log[since:]:
                if match := regex.search(line):
                    found.append(match)
                    return True
            return not self.running

        async with self._line:
            try:
                await asyncio.wait_for(self._line.wait_for(seen), timeout)
            except TimeoutError:
                pass
        if not found:
            state = "running" if self.running else f"exited {self.process and self.process.returncode}"
            raise AssertionError(
                f"bot {self.name} ({state}) never logged {pattern!r}:\n" + "".join(self.log[-30:])
            )
        return found[0]

    async def ready(self) -> bool:
        if self.port is None or not self.running:
            return False
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    f"http://127.0.0.1:{self.port}/readyz", timeout=aiohttp.ClientTimeout(total=3)
                ) as answer,
            ):
                return answer.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed, as when a machine or the OOM killer ends it."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        await self._stop_reading()
        self.log.append("---- SIGKILL ----\n")

    async def stop(self, *, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a stop budget
        """SIGTERM, and SIGKILL if it has not stopped within `timeout`."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self.kill()
        await self._stop_reading()

    async def _stop_reading(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._reader, 5)
            self._reader = None


async def fresh_postgres(url: str, *, prefix: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    """A new PostgreSQL database on `url`'s server (a bot process takes a URL, not a schema),
    migrated once before any process starts; and how to drop it, whoever still holds it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    target = make_url(url).set(database=name).render_as_string(hide_password=False)
    database = Database.from_url(target)
    await migrate.upgrade(database.engine)
    await database.dispose()

    async def drop() -> None:
        # A fresh connection: the server may have restarted since (bench.chaos restarts it).
        await admin.dispose()
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()

    return target, drop


def guilds_one_per_shard(discord: DiscordEmulator, shards: int, name: str) -> list[Guild]:
    """One server on each of `shards` shards (`name 0`, `name 1`, ...): the guild of shard i at i."""
    guilds: dict[int, Guild] = {}
    while len(guilds) < shards:
        guild = discord.add_guild(f"{name} {len(guilds)}" if shards > 1 else name)
        guilds.setdefault(discord._shard_of(guild.id, shards), guild)
    return [guilds[shard] for shard in range(shards)]


async def subscribe(
    url: str, places: Iterable[tuple[str, str, str]], *, actor_key: str
) -> set[tuple[str, str]]:
    """Subscribe each (platform, workspace, channel) to every component; returns (platform, channel)s."""
    database = Database.from_url(url)
    subscribed = set()
    async with database.transaction() as session:
        for platform, workspace, channel_id in places:
            await subscriptions_repo.subscribe(
                session,
                platform=platform,
                workspace_id=workspace,
                channel_id=channel_id,
                is_direct=False,
                components=[],
                actor_key=actor_key,
            )
            subscribed.add((platform, channel_id))
    await database.dispose()
    return subscribed


def bot_env(database_url: str, **settings: str) -> dict[str, str]:
    """The settings every test bot process has: the test knowledge base and components, its web
    server on; `settings` add or override (names in lower case)."""
    env = {
        "DATABASE_URL": database_url,
        "KB_PATH": str(ROOT / "tests" / "data" / "kb"),
        "COMPONENTS_FILE": str(ROOT / "tests" / "data" / "components.yml"),
        "MATCHER": "lexical",
        "WEB_ENABLED": "true",
        "WEB_HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }
    env.update({name.upper(): value for name, value in settings.items()})
    return env


def _slack_settings(slack: SlackEmulator) -> dict[str, str]:
    return {
        "slack_bot_token": slack.token,
        "slack_signing_secret": slack.signing_secret,
        "slack_mode": "http",
        "slack_api_base": slack.base_url,
    }


def discord_env(database_url: str, discord: DiscordEmulator, **settings: str) -> dict[str, str]:
    """The settings of a bot on the Discord emulator, as `bot_env` has them."""
    discord_settings = {
        "platforms": "discord",
        "discord_token": discord.token,
        "discord_api_base": discord.api_base,
        "discord_gateway_url": discord.gateway_url,
    }
    return bot_env(database_url, **{**discord_settings, **settings})


def slack_env(database_url: str, slack: SlackEmulator, **settings: str) -> dict[str, str]:
    """The settings of a bot on the Slack emulator (HTTP mode), as `bot_env` has them."""
    return bot_env(database_url, **{"platforms": "slack", **_slack_settings(slack), **settings})


def both_platforms_env(
    database_url: str, slack: SlackEmulator, discord: DiscordEmulator, **settings: str
) -> dict[str, str]:
    """The settings of a bot on both emulators (Slack in HTTP mode), as `bot_env` has them."""
    both = {"platforms": "slack,discord", **_slack_settings(slack)}
    return discord_env(database_url, discord, **{**both, **settings})
