"""Broadcast throughput: one incident to 2,000 Discord channels and 500 Slack channels in 5 workspaces.

The real broadcast worker sends through the real Discord adapter (discord.py) and five Slack adapters
(slack-sdk, one per workspace) to the emulators in tests/emulators, which enforce the limits:
Discord's 50 requests/s global limit (sliding one-second window) and per-route buckets, Slack's
1 message/s per channel and a per-workspace cap (`--slack-rate`, 5/s as in SLACK_WORKSPACE_RATE).
Then the same with faults injected at random into message creation: 5% answered 5xx and 1% never
answered (the client times out; the message is not created).

Reports wall time (from the incident's commit to the last delivery settled), the lower bound the
limits allow (max over Discord N/50 and each workspace's N/rate), efficiency = bound / wall, and the
lost and duplicated deliveries counted on the emulators (channels without the notice, extra copies).

    .venv/bin/python -m bench.broadcast [--discord 2000] [--slack-workspaces 5]
        [--slack-per-workspace 100] [--slack-rate 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.adapters.discord.adapter import DiscordAdapter
from bot.adapters.slack.adapter import SlackAdapter
from bot.core.events import Delivery, InboundEvent, Platform, SentRef
from bot.status import messages, workflows
from bot.status.broadcast.pacing import policy_for
from bot.status.broadcast.worker import BroadcastWorker, WorkerConfig
from bot.status.model import Impact
from storage import migrate, outbox_repo, status_repo, subscriptions_repo
from storage.db import Database
from storage.status_repo import ComponentSpec
from tests.emulators import discord as discord_emulator
from tests.emulators import slack as slack_emulator

TITLE = "Card payments failing"
DISCORD_GLOBAL_LIMIT = 50
GUILD_CHANNELS = 500  # Discord's cap per guild


class FaultyDiscord(discord_emulator.DiscordEmulator):
    """Message creation fails at random: `error_rate` 500s, `timeout_rate` requests never answered."""

    def __init__(self, *, error_rate: float, timeout_rate: float, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error_rate, self.timeout_rate = error_rate, timeout_rate
        self.rng = random.Random(seed)
        self.injected = {"5xx": 0, "timeout": 0}

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST" and request.path.endswith("/messages"):
            roll = self.rng.random()
            if roll < self.timeout_rate:
                self.injected["timeout"] += 1
                await asyncio.sleep(60)
                return web.Response(status=504)
            if roll < self.timeout_rate + self.error_rate:
                self.injected["5xx"] += 1
                return discord_emulator.json_response({"message": "Server error", "code": 0}, status=500)
        return await super()._rest(request)


class FaultySlack(slack_emulator.SlackEmulator):
    def __init__(self, *, error_rate: float, timeout_rate: float, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error_rate, self.timeout_rate = error_rate, timeout_rate
        self.rng = random.Random(seed)
        self.injected = {"5xx": 0, "timeout": 0}

    def _take_fault(self, method: str) -> slack_emulator.Fault | None:
        if method == "chat.postMessage":
            roll = self.rng.random()
            if roll < self.timeout_rate:
                self.injected["timeout"] += 1
                return slack_emulator.Fault(timeout=True)
            if roll < self.timeout_rate + self.error_rate:
                self.injected["5xx"] += 1
                return slack_emulator.Fault(status=503)
        return super()._take_fault(method)


async def _noop(_event: object) -> None:
    return None


class SlackWorkspaces:
    """One adapter over several Slack workspaces, each with its own token (a bot holds one Slack
    adapter, this bench one per workspace): sends go to the delivery's workspace."""

    platform = Platform.SLACK

    def __init__(self, by_team: dict[str, SlackAdapter]) -> None:
        self.by_team = by_team
        self.capabilities = SlackAdapter.capabilities

    async def start(self, sink: Callable[[InboundEvent], Awaitable[None]]) -> None:
        for adapter in self.by_team.values():
            await adapter.start(sink)

    async def stop(self) -> None:
        for adapter in self.by_team.values():
            await adapter.stop()

    async def send(self, delivery: Delivery) -> SentRef:
        return await self.by_team[delivery.conversation.workspace_id].send(delivery)


async def run_once(
    *, discord_channels: int, workspaces: int, per_workspace: int, slack_rate: float, faulty: bool, seed: int
) -> dict[str, Any]:
    error_rate, timeout_rate = (0.05, 0.01) if faulty else (0.0, 0.0)
    tmp = Path(tempfile.mkdtemp(prefix="bench-broadcast-"))
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp}/bench.db")
    await migrate.upgrade(database.engine)

    discord_emu = FaultyDiscord(
        error_rate=error_rate, timeout_rate=timeout_rate, seed=seed, global_limit=DISCORD_GLOBAL_LIMIT
    )
    await discord_emu.__aenter__()
    slack_emu = FaultySlack(
        error_rate=error_rate,
        timeout_rate=timeout_rate,
        seed=seed + 1,
        workspace_rate=slack_rate,
        workspace_burst=2,  # Slack allows short bursts; absorbs timer jitter at exactly the cap
        channel_rate=1.0,
        burst=1,
        stall_seconds=60,
    )
    await slack_emu.start()

    discord_targets: list[tuple[str, str]] = []  # (guild, channel)
    for guild_index in range((discord_channels + GUILD_CHANNELS - 1) // GUILD_CHANNELS):
        guild = discord_emu.add_guild(f"Guild {guild_index}")
        for _ in range(min(GUILD_CHANNELS, discord_channels - len(discord_targets))):
            channel = discord_emu.add_channel(guild, f"status-{len(discord_targets)}")
            discord_targets.append((guild.id, channel.id))
    slack_targets: list[tuple[str, str]] = []  # (team, channel)
    slack_adapters: dict[str, SlackAdapter] = {}
    for index in range(workspaces):
        team = f"T{index:07d}"
        token = f"xoxb-bench-{index}"
        slack_emu.add_workspace(team, token=token)
        for number in range(per_workspace):
            channel_id = f"C{index:02d}{number:06d}"
            slack_emu.add_channel(channel_id, f"status-{number}", team=team)
            slack_targets.append((team, channel_id))
        adapter = SlackAdapter(
            bot_token=token,
            signing_secret=slack_emu.signing_secret,
            api_base=slack_emu.base_url,
            rate_limit_retries=0,  # a 429 comes back to the worker, which pauses the workspace
        )
        # The bench only sends; the events endpoint would live on the bot's web app.
        adapter.install_routes(web.Application())
        slack_adapters[team] = adapter
    slack = SlackWorkspaces(slack_adapters)
    await slack.start(_noop)

    discord_adapter = DiscordAdapter(
        token=discord_emu.token,
        api_base=discord_emu.api_base,
        gateway_url=discord_emu.gateway_url,
        guild_ready_timeout=0.05,
        ready_timeout=30,
    )
    await discord_adapter.start(_noop)

    now = datetime.now(UTC)
    async with database.transaction() as session:
        await status_repo.sync_components(session, declared=[ComponentSpec(name="payments")])
        targets = [("discord", *t) for t in discord_targets] + [("slack", *t) for t in slack_targets]
        for platform, workspace, channel_id in targets:
            await subscriptions_repo.subscribe(
                session,
                platform=platform,
                workspace_id=workspace,
                channel_id=channel_id,
                is_direct=False,
                components=[],
                actor_key="bench",
            )

    worker = BroadcastWorker(
        database,
        {Platform.DISCORD: discord_adapter, Platform.SLACK: slack},
        policy=lambda lane: policy_for(lane, discord_rate=48, slack_workspace_rate=slack_rate),
        staff_channel=None,
        page_url="https://status.example.com/",
        config=WorkerConfig(lease=timedelta(seconds=10), max_in_flight=128),
    )

    started = time.perf_counter()
    async with database.transaction() as session:
        component = await status_repo.get_component(session, name="payments")
        assert component is not None
        incident = await workflows.open_incident(
            session, title=TITLE, impact=Impact.MAJOR, components=[component], actor_key="bench", at=now
        )
        timeline = await status_repo.updates_for(session, incident_ids=[incident.id])  # type: ignore[list-item]
        title, text = messages.incident_notice(incident, timeline[incident.id][0], page_url=worker.page_url)  # type: ignore[index]
        await outbox_repo.create_broadcast(
            session,
            kind="open",
            incident_id=incident.id,
            title=title,
            body=text,
            components=["payments"],
            at=now,
        )
    await worker.run_until_idle(limit_s=600)
    wall = time.perf_counter() - started

    def copies(messages: list[dict[str, Any]]) -> int:
        return sum(1 for m in messages if TITLE in json.dumps(m))

    counts = [copies(discord_emu.channel_messages(channel)) for _, channel in discord_targets]
    counts += [copies(slack_emu.history(channel, team=team)) for team, channel in slack_targets]
    lost = sum(1 for n in counts if n == 0)
    duplicated = sum(n - 1 for n in counts if n > 1)
    async with database.transaction() as session:
        states = await outbox_repo.delivery_counts(session)
    rate_limited = {
        "discord": sum(1 for c in discord_emu.calls if c.status == 429),
        "slack": sum(1 for c in slack_emu.calls if c.status == 429),
    }
    bound = max(len(discord_targets) / DISCORD_GLOBAL_LIMIT, per_workspace / slack_rate)

    await discord_adapter.stop()
    await slack.stop()
    await slack_emu.stop()
    await discord_emu.__aexit__(None, None, None)
    await database.dispose()
    return {
        "wall_s": round(wall, 2),
        "bound_s": round(bound, 2),
        "efficiency": round(bound / wall, 3),
        "lost": lost,
        "duplicated": duplicated,
        "deliveries": len(counts),
        "outbox": states,
        "http_429": rate_limited,
        "injected": {"discord": discord_emu.injected, "slack": slack_emu.injected},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--discord", type=int, default=2000)
    parser.add_argument("--slack-workspaces", type=int, default=5)
    parser.add_argument("--slack-per-workspace", type=int, default=100)
    parser.add_argument("--slack-rate", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("bot.status.broadcast").setLevel(logging.INFO)
    options = {
        "discord_channels": args.discord,
        "workspaces": args.slack_workspaces,
        "per_workspace": args.slack_per_workspace,
        "slack_rate": args.slack_rate,
        "seed": args.seed,
    }
    clean = asyncio.run(run_once(faulty=False, **options))
    faulty = asyncio.run(run_once(faulty=True, **options))
    for name, result in (("clean", clean), ("5% 5xx + 1% timeouts", faulty)):
        print(
            f"{name}: {result['deliveries']:,} deliveries in {result['wall_s']} s "
            f"(bound {result['bound_s']} s, efficiency {result['efficiency']:.3f}); "
            f"lost {result['lost']}, duplicated {result['duplicated']}; "
            f"429s {result['http_429']}; injected {result['injected']}"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "efficiency": clean["efficiency"],
                    "lost": clean["lost"],
                    "duplicated": clean["duplicated"],
                    "wall_s": clean["wall_s"],
                    "bound_s": clean["bound_s"],
                    "faulty_efficiency": faulty["efficiency"],
                    "faulty_lost": faulty["lost"],
                    "faulty_duplicated": faulty["duplicated"],
                    "faulty_wall_s": faulty["wall_s"],
                    "clean": clean,
                    "faulty": faulty,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
