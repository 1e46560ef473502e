"""A whole bot on the real discord.py, connected to the Discord emulator: a server with a help
channel, a staff channel and people, and helpers to start, restart and stop the bot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.adapters.discord.adapter import DiscordAdapter
from bot.app import SupportBot, build_router, create_bot
from bot.core.events import Platform
from bot.core.router import Router
from storage.db import Database
from tests.emulators.discord import Channel, DiscordEmulator, Guild, User
from tests.harness import FakeClock, make_settings


@dataclass
class DiscordWorld:
    """The server the tests play in."""

    emu: DiscordEmulator
    guild: Guild
    help: Channel
    staff: Channel
    offtopic: Channel
    staff_role: str
    casey: User
    robin: User
    sam: User

    @classmethod
    def build(cls, emu: DiscordEmulator) -> DiscordWorld:
        guild = emu.add_guild("Acme")
        staff_role = emu.add_role(guild, "Support staff")
        casey, robin, sam = emu.add_user("casey"), emu.add_user("robin"), emu.add_user("sam")
        emu.add_member(guild, casey)
        emu.add_member(guild, robin)
        emu.add_member(guild, sam, roles=[staff_role])
        return cls(
            emu=emu,
            guild=guild,
            help=emu.add_channel(guild, "help"),
            staff=emu.add_channel(guild, "staff"),
            offtopic=emu.add_channel(guild, "off-topic"),
            staff_role=staff_role,
            casey=casey,
            robin=robin,
            sam=sam,
        )

    def settings(self, tmp_path: Path, **overrides: Any) -> Any:
        values: dict[str, Any] = {
            "platforms": ["discord"],
            "discord_token": self.emu.token,
            "discord_api_base": self.emu.api_base,
            "discord_gateway_url": self.emu.gateway_url,
            "discord_community_channel_ids": [self.help.id],
            "staff_channel": f"discord:{self.guild.id}/{self.staff.id}",
            "staff_role_ids": [f"discord:{self.staff_role}"],
            "oncall_mentions": [f"discord:{self.staff_role}"],
            "staff_user_ids": [],
        }
        values.update(overrides)
        return make_settings(tmp_path, **values)


async def start_bot(
    world: DiscordWorld,
    database: Database,
    tmp_path: Path,
    *,
    router: Router | None = None,
    clock: FakeClock | None = None,
    adapters: dict[Platform, Any] | None = None,
    **settings: Any,
) -> tuple[SupportBot, DiscordAdapter]:
    """Start the bot (dispatcher + Discord adapter) and return once it is connected. `router`
    replaces the bot's routes, for tests that check the adapter with handlers of their own."""
    config = world.settings(tmp_path, **settings)
    adapter = DiscordAdapter.from_settings(
        config, commands=build_router().catalogue(), guild_ready_timeout=0.05, ready_timeout=10
    )
    bot = await create_bot(
        config,
        adapters={Platform.DISCORD: adapter, **(adapters or {})},
        clock=clock or FakeClock(),
        database=database,
        with_web=False,
    )
    if router is not None:
        bot.dispatcher.router = router
    await bot.start()
    return bot, adapter


async def stop_bot(bot: SupportBot) -> None:
    """Stop the adapters and the dispatcher but keep the database open (a restart reuses it)."""
    for adapter in bot.adapters.values():
        await adapter.stop()
    await bot.dispatcher.stop()
