"""A whole bot on the real discord.py, connected to the Discord emulator: a server with a help
channel, a staff channel and people; helpers to start, restart and stop the bot or an adapter on its
own; small handlers that exercise the adapter; and ways to wait for what the bot posts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.adapters.discord.adapter import DiscordAdapter
from bot.app import StoredGatewaySessions, SupportBot, build_router, create_bot, platform_adapters
from bot.core.context import HandlerContext
from bot.core.events import (
    ActionInvoked,
    Button,
    CommandInvoked,
    Conversation,
    InboundEvent,
    MessageReceived,
    OutboundMessage,
    Platform,
)
from bot.core.router import Router, action, command, pattern
from bot.handlers import basics
from storage.db import Database
from tests.emulators.discord import Call, Channel, DiscordEmulator, Guild, User
from tests.harness import FakeClock, make_settings

EPHEMERAL = 64  # Discord's message flag for "only you can see this"


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
        config,
        commands=build_router().catalogue(),
        guild_ready_timeout=0.05,
        ready_timeout=10,
        sessions=StoredGatewaySessions(database),  # as `platform_adapters` wires it
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


class Handlers:
    """Small handlers that exercise the adapter: what they received, and a gate for a slow one."""

    def __init__(self) -> None:
        self.received: list[object] = []
        self.release = asyncio.Event()
        self.router = Router("adapter-test")
        router = self.router

        @router.on(CommandInvoked, command("ticket"))
        async def echo_args(event: CommandInvoked, ctx: HandlerContext) -> None:
            self.received.append(event)
            await ctx.reply(OutboundMessage(text=f"args: {event.args}", private_to=event.actor))

        @router.on(CommandInvoked, command("status"))
        async def slow_status(event: CommandInvoked, ctx: HandlerContext) -> None:
            await self.release.wait()  # slower than Discord's 3 seconds, as long as the test wants
            await ctx.reply("All systems operational.")

        @router.on(CommandInvoked, command("subscribe"))
        async def offer_buttons(event: CommandInvoked, ctx: HandlerContext) -> None:
            await ctx.reply(
                OutboundMessage(
                    text="Did this solve it?",
                    buttons=(
                        Button(action_id="kb:solved", label="That solved it", value="reset-password"),
                        Button(action_id="kb:more", label="I still need help", value="reset-password"),
                    ),
                )
            )

        @router.on(CommandInvoked, command("subscriptions"))
        async def silent(event: CommandInvoked, ctx: HandlerContext) -> None:
            self.received.append(event)  # handled, and deliberately no reply

        @router.on(ActionInvoked, action("kb"))
        async def clicked(event: ActionInvoked, ctx: HandlerContext) -> None:
            self.received.append(event)
            await ctx.reply(
                OutboundMessage(text=f"clicked {event.action_id}={event.value}", private_to=event.actor)
            )

        @router.on(MessageReceived, pattern(r"^relay (?P<text>.+)$", score=1.0))
        async def relay(event: MessageReceived, ctx: HandlerContext) -> None:
            staff = ctx.services.staff.staff_channel
            await ctx.post(
                staff,
                OutboundMessage(
                    text=f"**{event.actor.name}:** {ctx.match.captures['text']}",
                    mentions=ctx.services.staff.oncall_mentions(Platform.DISCORD),
                ),
            )

        @router.on(MessageReceived, pattern(r"^long answer$", score=1.0))
        async def long_answer(event: MessageReceived, ctx: HandlerContext) -> None:
            paragraph = "Reset your password from Settings → Security, then sign in again. " * 6
            await ctx.reply("\n\n".join(f"{i}. {paragraph.strip()}" for i in range(1, 8)))

        @router.on(MessageReceived, pattern(r"^post in (?P<channel>\d+)$", score=1.0))
        async def post_elsewhere(event: MessageReceived, ctx: HandlerContext) -> None:
            where = Conversation(
                platform=Platform.DISCORD,
                workspace_id=event.conversation.workspace_id,
                channel_id=ctx.match.captures["channel"],
            )
            await ctx.post(where, "Scheduled maintenance tonight at 22:00 UTC.")

        router.include(basics.router)


class Inbox:
    def __init__(self) -> None:
        self.events: asyncio.Queue[InboundEvent] = asyncio.Queue()

    async def __call__(self, event: InboundEvent) -> None:
        await self.events.put(event)

    async def next(self) -> InboundEvent:
        return await asyncio.wait_for(self.events.get(), 5)


async def connect(
    world: DiscordWorld, started: list[DiscordAdapter], **options: object
) -> tuple[DiscordAdapter, Inbox]:
    emu = world.emu
    options.setdefault("community_channel_ids", [world.help.id])
    adapter = DiscordAdapter(
        token=emu.token,
        commands=build_router().catalogue(),
        api_base=emu.api_base,
        gateway_url=emu.gateway_url,
        guild_ready_timeout=0.05,
        ready_timeout=10,
        **options,  # type: ignore[arg-type]
    )
    inbox = Inbox()
    await adapter.start(inbox)
    started.append(adapter)
    return adapter, inbox


async def private_answer(emu: DiscordEmulator, run: dict[str, Any]) -> str:
    """The answer that replaced the command's private "thinking…" placeholder."""
    call = await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    return call.content


async def public_answer(emu: DiscordEmulator, channel_id: str, containing: str) -> str:
    call = await emu.wait_for(
        "POST", f"/channels/{channel_id}/messages", where=lambda c: containing in c.content
    )
    return call.content


def answer_id(emu: DiscordEmulator, call) -> str:
    """The id of the message a follow-up call created (the emulator stores the bot's messages)."""
    return next(m["id"] for m in reversed(emu.messages.values()) if m["content"] == call.content)


def text_of(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(p for p in parts if p)


def custom_id(message: dict[str, Any], label_start: str) -> str:
    buttons = [c for row in message.get("components") or [] for c in row["components"]]
    for candidate in buttons:
        if candidate["label"].startswith(label_start):
            return candidate["custom_id"]
    raise AssertionError(f"no button {label_start!r} in {[b['label'] for b in buttons]}")


def labels(message: dict[str, Any]) -> list[str]:
    return [c["label"] for row in message.get("components") or [] for c in row["components"]]


async def posted(
    emu: DiscordEmulator,
    channel_id: str,
    containing: str = "",
    *,
    button: str | None = None,
    within: float = 5.0,
) -> dict[str, Any]:
    """Wait (up to `within` seconds) for the bot's next post in `channel_id` (a thread is a channel)
    with that text (and a button with that label), and return the message as stored."""

    def wanted(message: dict[str, Any]) -> bool:
        return containing in text_of(message) and (button is None or button in labels(message))

    await emu.wait_for(
        "POST", f"/channels/{channel_id}/messages", where=lambda c: wanted(c.json), timeout=within
    )
    return next(m for m in reversed(emu.channel_messages(channel_id)) if wanted(m))


async def ticket_thread(emu: DiscordEmulator, parent: Channel, number: int) -> Channel:
    """Wait for the bot to open ticket `number`'s own thread in `parent`, and return it."""
    title = f"Ticket #{number}: "
    await emu.wait_for(
        "POST", f"/channels/{parent.id}/threads", where=lambda c: c.json["name"].startswith(title)
    )
    return next(c for c in emu.channels.values() if c.parent_id == parent.id and c.name.startswith(title))


def card_of(number: int) -> Callable[[Call], bool]:
    return lambda call: any(
        f"Ticket #{number}" in (e.get("title") or "") for e in call.json.get("embeds") or []
    )


async def choices(emu: DiscordEmulator, interaction: dict[str, Any]) -> list[tuple[str, Any]]:
    answer = await emu.wait_for("POST", f"/interactions/{interaction['id']}/{interaction['token']}/callback")
    assert answer.json["type"] == 8
    return [(c["name"], c["value"]) for c in answer.json["data"]["choices"]]


async def start_production_wired_bot(world: DiscordWorld, database, tmp_path: Path) -> SupportBot:
    """The bot as `bot.app.run` builds it: adapters from `platform_adapters`, then the bot over them."""
    settings = world.settings(tmp_path)
    adapters = platform_adapters(settings, as_staff=False, database=database)
    adapter = adapters[Platform.DISCORD]
    assert isinstance(adapter, DiscordAdapter)
    adapter.guild_ready_timeout = 0.05  # tests need not wait 2 s for more guilds
    bot = await create_bot(settings, adapters=adapters, clock=FakeClock(), database=database, with_web=False)
    await bot.start()
    return bot
