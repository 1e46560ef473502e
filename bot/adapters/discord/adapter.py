"""The Discord adapter: a discord.py client (gateway + REST) behind the Adapter protocol.

Inbound: messages in community channels, the staff channel, the bot's own threads and DMs (and
mentions anywhere), slash commands from an `app_commands.CommandTree`, clicks on the bot's buttons,
and reactions. Interactions are deferred at once (Discord's 3-second deadline) and the handler's
reply follows up. Outbound: neutral messages become content + embed + persistent buttons, with
`allowed_mentions` that let only deliberate mentions ping. Translation lives in `discord_translate`.

Threads follow Slack's model: a conversation's `thread_id` is the thread's channel id, and a thread
started on a message has that message's id, so "reply in the thread of message M" posts in channel
M, creating the thread on M first when it does not exist yet. A delivery with `new_thread` (a
ticket's own room) instead opens a private thread in the channel with its invitees (public, then a
forum post, where the server refuses) and lands there; its SentRef names that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import yarl
from discord import app_commands

from bot.adapters.base import Capabilities, DeliveryError, EventSink
from bot.adapters.discord.translate import (
    CUSTOM_ID_TEMPLATE,
    MAX_CONTENT,
    Part,
    action_event,
    actor_from,
    allowed_mentions,
    button_style,
    command_event,
    conversation_from,
    emoji_name,
    encode_custom_id,
    message_event,
    nonce_for,
    reaction_event,
    render,
    thread_name,
)
from bot.core.events import (
    Actor,
    Conversation,
    Delivery,
    InboundEvent,
    MessageReceived,
    OutboundMessage,
    Platform,
    SentRef,
)

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

Suggester = Callable[[str, str, Actor], Awaitable[Sequence[tuple[str, str]]]]
"""(kind, typed so far, who) → up to 25 (label, value) choices. Kinds: "component", "ticket"."""

INTERACTION_TOKEN_SECONDS = 15 * 60 - 30  # follow-ups work for 15 minutes; keep a margin
MAX_REMEMBERED_INTERACTIONS = 2000
# Discord's error codes for "no more threads here": too many active threads, or the thread type
# is not available in this server or channel.
THREAD_LIMIT_CODES = {160006, 50024, 50001, 50013, 20029}
THREAD_EXISTS = 160004
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
# Emoji that start something (a staff 🎫 opens a ticket): handled in every channel, and the message
# text is fetched when not cached. Reactions carry no text and a fetch costs a request.
FETCH_TEXT_FOR = frozenset({"ticket"})


@dataclass
class _Pending:
    """An interaction the bot deferred, kept so its reply can use the interaction's token."""

    interaction: discord.Interaction
    is_command: bool
    received: float
    original_used: bool = False


class PersistentButton(discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID_TEMPLATE):  # type: ignore[call-arg]
    """Every button the bot renders. The action is in the custom id, so discord.py routes clicks
    on any message, old or new, after any restart, through this one registered template."""

    def __init__(self, button: discord.ui.Button) -> None:
        super().__init__(button)

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: Any, /
    ) -> PersistentButton:
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        adapter: DiscordAdapter | None = getattr(interaction.client, "supportbot_adapter", None)
        if adapter is not None:
            await adapter.on_button(interaction, self.item.custom_id or "")


class _Hooks:
    """Client hooks forwarded to the adapter (a mixin for both the plain and the sharded client)."""

    supportbot_adapter: DiscordAdapter

    async def setup_hook(self) -> None:
        await self.supportbot_adapter.setup(self)  # type: ignore[arg-type]

    async def on_message(self, message: discord.Message) -> None:
        await self.supportbot_adapter.on_message(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.supportbot_adapter.on_reaction(payload)


class _Client(_Hooks, discord.Client):
    pass


class _ShardedClient(_Hooks, discord.AutoShardedClient):
    pass


def apply_endpoints(api_base: str, gateway_url: str) -> None:
    """Point discord.py at Discord (or an emulator or proxy). Class attributes: one per process."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def _delivery_error(error: Exception) -> DeliveryError:
    if isinstance(error, discord.Forbidden):
        return DeliveryError(
            f"Discord refused: {error.text or 'missing access'}", permanent=True, code="missing_access"
        )
    if isinstance(error, discord.NotFound):
        # The message (an incident card someone deleted) rather than the channel: only it is gone.
        code = "message_not_found" if error.code == UNKNOWN_MESSAGE else "not_found"
        return DeliveryError(f"Discord: {error.text or 'not found'}", permanent=True, code=code)
    if isinstance(error, discord.HTTPException):
        if error.status >= 500 or error.status == 429:
            return DeliveryError(f"Discord answered {error.status}", permanent=False, code="unavailable")
        return DeliveryError(f"Discord rejected the message: {error.text}", permanent=True, code="rejected")
    return DeliveryError(f"Discord unreachable: {type(error).__name__}", permanent=False, code="unreachable")


class DiscordAdapter:
    platform = Platform.DISCORD
    capabilities = Capabilities(
        buttons=True, threads=True, private_replies=True, edits=True, max_text=MAX_CONTENT
    )

    def __init__(
        self,
        *,
        token: str,
        api_base: str = "https://discord.com/api/v10",
        gateway_url: str = "wss://gateway.discord.gg/",
        community_channel_ids: Iterable[str] = (),
        staff_channel_id: str | None = None,
        dev_guild_id: str | None = None,
        shard_count: int | None = None,
        shard_ids: Iterable[int] = (),
        ticket_forum_id: str | None = None,
        suggest: Suggester | None = None,
        sync_commands: bool = True,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float = 60.0,
    ) -> None:
        self._token = token
        self.api_base = api_base
        self.gateway_url = gateway_url
        self.listen_channel_ids = frozenset(community_channel_ids) | (
            {staff_channel_id} if staff_channel_id else frozenset()
        )
        self.dev_guild_id = dev_guild_id
        self.shard_count = shard_count
        self.shard_ids = list(shard_ids)
        self.ticket_forum_id = ticket_forum_id
        self._suggest = suggest
        self.sync_commands = sync_commands
        self.guild_ready_timeout = guild_ready_timeout
        self.ready_timeout = ready_timeout
        self._sink: EventSink | None = None
        self._client: discord.Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._follow_ups: OrderedDict[str, _Pending] = OrderedDict()  # message id -> its interaction
        self._param_order: dict[str, list[str]] = {}
        self._rooms: OrderedDict[str, Conversation] = OrderedDict()  # see _open_room

    @classmethod
    def from_settings(
        cls, settings: Settings, *, suggest: Suggester | None = None, **options: Any
    ) -> DiscordAdapter:
        """The adapter as configured; `options` override keyword arguments (tests: short timeouts)."""
        if settings.discord_token is None:
            raise ValueError("DISCORD_TOKEN is not set")
        staff_platform, _, staff_ref = settings.staff_channel.partition(":")
        return cls(
            token=settings.discord_token.get_secret_value(),
            api_base=settings.discord_api_base,
            gateway_url=settings.discord_gateway_url,
            community_channel_ids=settings.discord_community_channel_ids,
            staff_channel_id=staff_ref.rpartition("/")[2] if staff_platform == "discord" else None,
            dev_guild_id=settings.discord_dev_guild_id,
            shard_count=settings.discord_shard_count,
            shard_ids=[int(i) for i in settings.discord_shard_ids],
            ticket_forum_id=settings.discord_ticket_forum_id,
            suggest=suggest,
            **options,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> discord.Client:
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        return self._client

    def _make_client(self) -> discord.Client:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable it for the bot in the developer portal
        intents.typing = False
        options: dict[str, Any] = {
            "intents": intents,
            "guild_ready_timeout": self.guild_ready_timeout,
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        client: discord.Client
        if self.shard_count:
            client = _ShardedClient(shard_count=self.shard_count, shard_ids=self.shard_ids or None, **options)
        else:
            client = _Client(**options)
        client.supportbot_adapter = self  # type: ignore[attr-defined]
        self.tree = app_commands.CommandTree(client)
        self._define_commands(self.tree)
        return client

    async def start(self, sink: EventSink) -> None:
        """Log in, sync commands, connect; returns once the guilds are loaded."""
        self._sink = sink
        apply_endpoints(self.api_base, self.gateway_url)
        client = self._client = self._make_client()
        try:
            await client.login(self._token)
        except discord.LoginFailure:
            await client.close()
            raise RuntimeError("Discord rejected DISCORD_TOKEN (401); check the bot token") from None
        self._runner = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {ready, self._runner}, timeout=self.ready_timeout, return_when="FIRST_COMPLETED"
        )
        if ready not in done:
            ready.cancel()
            await self.stop()
            if self._runner in done and self._runner.exception() is not None:
                raise RuntimeError(f"Discord gateway failed: {self._runner.exception()!r}")
            raise RuntimeError(f"Discord gateway not ready after {self.ready_timeout:.0f}s")
        user = client.user
        log.info(
            "discord connected as %s (%s), %d guilds", user, user.id if user else "?", len(client.guilds)
        )

    async def stop(self) -> None:
        self._sink = None
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            try:
                await self._runner
            except Exception:
                log.debug("discord gateway task ended with an error on stop", exc_info=True)
        self._runner = None

    async def setup(self, client: discord.Client) -> None:
        """Runs once after login: register the persistent buttons and sync the slash commands."""
        client.add_dynamic_items(PersistentButton)
        if not self.sync_commands:
            return
        if self.dev_guild_id:
            guild = discord.Object(id=int(self.dev_guild_id))
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info(
            "synced %d slash commands %s",
            len(synced),
            "to the dev guild" if self.dev_guild_id else "globally",
        )

    # -- slash commands ----------------------------------------------------------------------

    def _define_commands(self, tree: app_commands.CommandTree) -> None:
        """The same commands as Slack, with typed options; each one only forwards to `_on_command`."""
        run = self._on_command
        tickets = self._complete("ticket")
        components = self._complete("component")

        @tree.command(name="status", description="Current status of our services")
        @app_commands.describe(component="Only this component")
        @app_commands.autocomplete(component=components)
        async def status(interaction: discord.Interaction, component: str | None = None) -> None:
            await run(interaction)

        @tree.command(name="tickets", description="Your open tickets (staff: everyone's)")
        @app_commands.describe(which="'mine' for the ones you hold")
        @app_commands.choices(which=[app_commands.Choice(name="mine", value="mine")])
        async def tickets_command(interaction: discord.Interaction, which: str | None = None) -> None:
            await run(interaction)

        @tree.command(name="subscribe", description="Post status updates in this channel")
        @app_commands.describe(components="Only these, e.g. api payments (default: every component)")
        @app_commands.autocomplete(components=components)
        async def subscribe(interaction: discord.Interaction, components: str | None = None) -> None:
            await run(interaction)

        @tree.command(name="unsubscribe", description="Stop status updates in this channel")
        async def unsubscribe(interaction: discord.Interaction) -> None:
            await run(interaction)

        @tree.command(name="subscriptions", description="What this channel (staff: every channel) gets")
        async def subscriptions(interaction: discord.Interaction) -> None:
            await run(interaction)

        @tree.command(name="announce", description="Broadcast an announcement to subscriptions (staff)")
        @app_commands.describe(
            text="What to announce", components="Only subscriptions to these, e.g. api payments"
        )
        @app_commands.autocomplete(components=components)
        async def announce(
            interaction: discord.Interaction, text: str, components: str | None = None
        ) -> None:
            await run(interaction)

        @tree.command(name="support", description="What the bot can do")
        @app_commands.choices(topic=[app_commands.Choice(name="help", value="help")])
        async def support(interaction: discord.Interaction, topic: str | None = None) -> None:
            await run(interaction)

        ticket = app_commands.Group(name="ticket", description="Tickets: open one, or work on one")

        @ticket.command(name="new", description="Open a ticket so a person helps you")
        async def ticket_new(interaction: discord.Interaction, summary: str) -> None:
            await run(interaction)

        @ticket.command(name="status", description="Where your ticket stands")
        @app_commands.autocomplete(number=tickets)
        async def ticket_status(interaction: discord.Interaction, number: int) -> None:
            await run(interaction)

        @ticket.command(name="claim", description="Take the ticket (staff)")
        @app_commands.autocomplete(number=tickets)
        async def ticket_claim(interaction: discord.Interaction, number: int) -> None:
            await run(interaction)

        @ticket.command(name="reply", description="Answer the customer (staff)")
        @app_commands.autocomplete(number=tickets)
        async def ticket_reply(interaction: discord.Interaction, number: int, text: str) -> None:
            await run(interaction)

        @ticket.command(name="note", description="Internal note the customer never sees (staff)")
        @app_commands.autocomplete(number=tickets)
        async def ticket_note(interaction: discord.Interaction, number: int, text: str) -> None:
            await run(interaction)

        @ticket.command(name="close", description="Ask the customer to confirm it is solved (staff)")
        @app_commands.autocomplete(number=tickets)
        async def ticket_close(
            interaction: discord.Interaction, number: int, reason: str | None = None
        ) -> None:
            await run(interaction)

        @ticket.command(name="priority", description="Change the first-response target (staff)")
        @app_commands.autocomplete(number=tickets)
        @app_commands.choices(
            level=[app_commands.Choice(name=p, value=p) for p in ("urgent", "high", "normal", "low")]
        )
        async def ticket_priority(interaction: discord.Interaction, number: int, level: str) -> None:
            await run(interaction)

        tree.add_command(ticket)

        incident = app_commands.Group(name="incident", description="Declare and update incidents (staff)")

        # Choices mirror the status handlers' vocabulary (storage/status_repo.py).
        impacts = [app_commands.Choice(name=i, value=i) for i in ("none", "minor", "major", "critical")]
        stages = [app_commands.Choice(name=s, value=s) for s in ("investigating", "identified", "monitoring")]

        @incident.command(name="open", description="Declare an incident and tell subscribed channels")
        @app_commands.describe(components="Comma-separated, e.g. api,payments")
        @app_commands.autocomplete(components=components)
        @app_commands.choices(impact=impacts)
        async def incident_open(
            interaction: discord.Interaction, components: str, impact: str, title: str
        ) -> None:
            await run(interaction)

        @incident.command(name="update", description="Post an update on an incident")
        @app_commands.choices(status=stages)
        async def incident_update(
            interaction: discord.Interaction, number: int, status: str, message: str
        ) -> None:
            await run(interaction)

        @incident.command(name="resolve", description="Resolve an incident")
        async def incident_resolve(
            interaction: discord.Interaction, number: int, message: str | None = None
        ) -> None:
            await run(interaction)

        tree.add_command(incident)

        component = app_commands.Group(name="component", description="Status components (staff)")
        # The status handlers' component states (storage/status_repo.py COMPONENT_STATUSES).
        states = [
            app_commands.Choice(name=s, value=s)
            for s in (
                "operational",
                "degraded_performance",
                "partial_outage",
                "major_outage",
                "under_maintenance",
            )
        ]

        @component.command(name="set", description="Set a component's status (history is kept)")
        @app_commands.autocomplete(name=components)
        @app_commands.choices(status=states)
        async def component_set(interaction: discord.Interaction, name: str, status: str) -> None:
            await run(interaction)

        @component.command(name="add", description="Add a component to the status page")
        @app_commands.describe(
            name="lowercase letters, digits, - or _", group="One word, e.g. Apps", aliases="e.g. find,lookup"
        )
        async def component_add(
            interaction: discord.Interaction, name: str, group: str | None = None, aliases: str | None = None
        ) -> None:
            await run(interaction)

        @component.command(name="history", description="A component's status history")
        @app_commands.autocomplete(name=components)
        async def component_history(interaction: discord.Interaction, name: str) -> None:
            await run(interaction)

        tree.add_command(component)

        maintenance = app_commands.Group(name="maintenance", description="Maintenance windows (staff)")

        @maintenance.command(name="schedule", description="Schedule maintenance and announce it")
        @app_commands.describe(
            components="e.g. payments or api,payments",
            start="UTC, e.g. 2026-12-01T02:00Z",
            end="UTC, e.g. 2026-12-01T03:00Z",
        )
        @app_commands.autocomplete(components=components)
        async def maintenance_schedule(
            interaction: discord.Interaction, components: str, start: str, end: str, title: str
        ) -> None:
            await run(interaction)

        tree.add_command(maintenance)
        for command in tree.walk_commands():
            if isinstance(command, app_commands.Command):
                self._param_order[command.qualified_name] = [p.name for p in command.parameters]

    def _complete(
        self, kind: str
    ) -> Callable[[discord.Interaction, str], Awaitable[list[app_commands.Choice[Any]]]]:
        async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[Any]]:
            if self._suggest is None:
                return []
            try:
                found = await self._suggest(kind, current, actor_from(interaction.user))
            except Exception:
                log.exception("autocomplete for %s failed", kind)
                return []
            numeric = kind == "ticket"
            return [
                app_commands.Choice(name=label[:100], value=int(value) if numeric else value[:100])
                for label, value in found[:25]
                if not numeric or value.isdigit()
            ]

        return complete

    async def _on_command(self, interaction: discord.Interaction) -> None:
        # Defer first: the reply comes from a queued handler, maybe later than Discord's 3 seconds.
        # Ephemeral, because most answers to a command are for the one who typed it; a public
        # answer is posted in the channel and the private "thinking" placeholder removed.
        await self._defer(interaction, ephemeral=True, thinking=True)
        event = command_event(
            interaction.data or {},  # type: ignore[arg-type]
            actor=actor_from(interaction.user),
            conversation=self._interaction_conversation(interaction),
            interaction_id=interaction.id,
            order=self._param_order,
        )
        await self._submit(event, interaction, is_command=True)

    async def on_button(self, interaction: discord.Interaction, custom_id: str) -> None:
        await self._defer(interaction, ephemeral=False, thinking=False)
        message = interaction.message
        event = action_event(
            custom_id,
            actor=actor_from(interaction.user),
            conversation=self._interaction_conversation(interaction),
            interaction_id=interaction.id,
            message_id=message.id if message else None,
        )
        if event is not None:
            await self._submit(event, interaction, is_command=False)

    async def _defer(self, interaction: discord.Interaction, *, ephemeral: bool, thinking: bool) -> None:
        try:
            await interaction.response.defer(ephemeral=ephemeral, thinking=thinking)
        except discord.HTTPException as error:
            # Too late or already answered: the reply falls back to a normal message.
            log.warning("could not defer interaction %s: %s", interaction.id, error)

    def _interaction_conversation(self, interaction: discord.Interaction) -> Conversation:
        channel = interaction.channel
        if channel is None:
            return Conversation(
                platform=Platform.DISCORD, channel_id=str(interaction.channel_id), is_direct=True
            )
        return conversation_from(channel, guild_id=interaction.guild_id)

    async def _submit(
        self, event: InboundEvent, interaction: discord.Interaction, *, is_command: bool
    ) -> None:
        self._pending[event.event_id] = _Pending(interaction, is_command, time.monotonic())
        while len(self._pending) > MAX_REMEMBERED_INTERACTIONS:
            self._pending.popitem(last=False)
        if self._sink is not None:
            await self._sink(event)

    def _remember_follow_up(self, message_id: str, pending: _Pending) -> None:
        self._follow_ups[message_id] = pending
        while len(self._follow_ups) > MAX_REMEMBERED_INTERACTIONS:
            self._follow_ups.popitem(last=False)

    async def event_settled(self, event: InboundEvent) -> None:
        """The dispatcher is done with `event` (see `SettlesEvents`). A command no reply answered
        would keep its private "thinking…" placeholder forever: remove it."""
        pending = self._live_interaction(event)
        if pending is None or not pending.is_command or pending.original_used:
            return
        pending.original_used = True
        try:
            await pending.interaction.delete_original_response()
        except discord.HTTPException as error:
            log.info("could not remove the unanswered command's placeholder: %s", error)

    # -- messages and reactions --------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        user = self.client.user
        if user is None or self._sink is None:
            return
        event = message_event(message, bot_user_id=user.id, listen_channel_ids=self.listen_channel_ids)
        if event is not None:
            await self._sink(event)

    def _serves(self, channel: Any) -> bool:
        user = self.client.user
        if isinstance(channel, discord.Thread):
            return str(channel.parent_id) in self.listen_channel_ids or (
                user is not None and channel.owner_id == user.id
            )
        if isinstance(channel, discord.DMChannel):
            return True
        return channel is not None and str(channel.id) in self.listen_channel_ids

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        user = self.client.user
        if self._sink is None or user is None or payload.user_id == user.id:
            return
        if payload.member is not None and payload.member.bot:
            return
        channel = self.client.get_channel(payload.channel_id)
        if channel is None and payload.guild_id is None:
            channel = self.client.get_partial_messageable(
                payload.channel_id, type=discord.ChannelType.private
            )
        if channel is None:
            return
        # A staff member's 🎫 may turn any message into a ticket, so that emoji counts everywhere;
        # other reactions only where the bot serves people.
        anywhere = emoji_name(payload.emoji) in FETCH_TEXT_FOR
        if not (anywhere or self._serves(channel) or (payload.guild_id is None and channel is not None)):
            return
        who: discord.abc.User | None = payload.member or self.client.get_user(payload.user_id)
        actor = (
            actor_from(who) if who is not None else Actor(platform=Platform.DISCORD, id=str(payload.user_id))
        )
        text = await self._message_text(channel, payload.message_id, emoji_name(payload.emoji))
        event = reaction_event(
            actor=actor,
            conversation=conversation_from(channel, guild_id=payload.guild_id),
            emoji=payload.emoji,
            message_id=payload.message_id,
            message_author_id=payload.message_author_id,
            message_text=text,
        )
        await self._sink(event)

    async def _message_text(self, channel: Any, message_id: int, emoji: str) -> str | None:
        cached = discord.utils.get(self.client.cached_messages, id=message_id)
        if cached is not None:
            return cached.content
        if emoji not in FETCH_TEXT_FOR or not hasattr(channel, "fetch_message"):
            return None
        try:
            return (await channel.fetch_message(message_id)).content
        except discord.HTTPException as error:
            log.warning("could not read message %s for a reaction: %s", message_id, error)
            return None

    # -- sending -----------------------------------------------------------------------------

    async def send(self, delivery: Delivery) -> SentRef:
        try:
            return await self._send(delivery)
        except DeliveryError:
            raise
        except (TimeoutError, discord.HTTPException, aiohttp.ClientError, OSError) as error:
            raise _delivery_error(error) from error

    def _live_interaction(self, event: InboundEvent | None) -> _Pending | None:
        if event is None:
            return None
        pending = self._pending.get(event.event_id)
        if pending is None or time.monotonic() - pending.received > INTERACTION_TOKEN_SECONDS:
            return None
        return pending

    async def _send(self, delivery: Delivery) -> SentRef:
        message = delivery.message
        if delivery.edit is not None:
            return await self._edit(delivery.edit, message)
        pending = self._live_interaction(delivery.reply_to)
        if pending is not None and message.private_to is not None:
            return await self._reply_via_interaction(pending, delivery, ephemeral=True)
        if message.private_to is not None and not delivery.conversation.is_direct:
            # No interaction to answer ephemerally (a plain message, or its token expired): a
            # private reply goes to the person's DMs, never to the channel for everyone to read.
            return await self._send_in_dm(delivery, message.private_to.id)
        if pending is not None and pending.is_command and not pending.original_used:
            # A public answer to a command: drop the private "thinking…" placeholder first.
            pending.original_used = True
            try:
                await pending.interaction.delete_original_response()
            except discord.HTTPException as error:
                log.info("could not remove the deferred placeholder: %s", error)
        conversation = delivery.conversation
        if delivery.new_thread is not None and not conversation.is_direct:
            room = await self._open_room(conversation, delivery)
            if room is not None:
                conversation = room
        thread_id = conversation.thread_id
        reference: discord.MessageReference | None = None
        reply_to = delivery.reply_to
        if (
            thread_id is None
            and message.in_thread
            and isinstance(reply_to, MessageReceived)
            and not conversation.is_direct
        ):
            thread_id = await self._thread_on_message(conversation, reply_to)
            if thread_id is None:
                reference = discord.MessageReference(
                    message_id=int(reply_to.message_id),
                    channel_id=int(conversation.channel_id),
                    fail_if_not_exists=False,
                )
        elif isinstance(reply_to, MessageReceived) and message.in_thread and conversation.is_direct:
            reference = discord.MessageReference(
                message_id=int(reply_to.message_id),
                channel_id=int(conversation.channel_id),
                fail_if_not_exists=False,
            )
        target = thread_id or conversation.channel_id
        try:
            self._check_access(target)
            sent = await self._post_parts(
                conversation, target, render(message), message, reference, key=delivery.idempotency_key
            )
        except (DeliveryError, discord.Forbidden) as error:
            if not self._may_follow_up(pending, target, error):
                raise
            # The bot may not post here, but a command's follow-up is a webhook message that needs
            # no channel permission: answer the one who asked where they asked.
            log.info("no access to %s; answering the command through its follow-up", target)
            assert pending is not None
            return await self._reply_via_interaction(pending, delivery, ephemeral=False)
        return SentRef(
            platform=Platform.DISCORD,
            workspace_id=conversation.workspace_id,
            channel_id=conversation.channel_id,
            message_id=str(sent.id),
            thread_id=thread_id,
        )

    async def _send_in_dm(self, delivery: Delivery, user_id: str) -> SentRef:
        try:
            dm = await self.client.create_dm(discord.Object(id=int(user_id)))
        except (discord.HTTPException, ValueError) as error:
            raise DeliveryError(
                "cannot open a DM for a private reply", permanent=True, code="dm_unavailable"
            ) from error
        conversation = Conversation(
            platform=Platform.DISCORD, workspace_id="", channel_id=str(dm.id), is_direct=True
        )
        message = delivery.message
        sent = await self._post_parts(
            conversation, str(dm.id), render(message), message, None, key=delivery.idempotency_key
        )
        return SentRef(
            platform=Platform.DISCORD, workspace_id="", channel_id=str(dm.id), message_id=str(sent.id)
        )

    async def _post_parts(
        self,
        conversation: Conversation,
        target: str,
        parts: list[Part],
        message: OutboundMessage,
        reference: discord.MessageReference | None,
        *,
        key: str | None = None,
    ) -> discord.Message:
        channel = self.client.get_partial_messageable(int(target))
        mentions = allowed_mentions(message)
        first: discord.Message | None = None
        for index, part in enumerate(parts):
            kwargs = self._part_kwargs(part, mentions)
            if key is not None:
                # Discord drops a second message with the same enforced nonce, so a broadcast resent
                # after a crash (same outbox key) posts nothing new.
                kwargs["nonce"] = nonce_for(key, index)
            if index == 0 and reference is not None:
                kwargs["reference"] = reference
            try:
                sent = await channel.send(**kwargs)
            except discord.NotFound as error:
                if index or conversation.thread_id is None or error.code != UNKNOWN_CHANNEL:
                    raise
                # Slack-style thread id: the message a thread should hang under, not yet a thread.
                await self._start_thread(int(conversation.channel_id), int(conversation.thread_id), "Ticket")
                sent = await channel.send(**kwargs)
            first = first or sent
        # The message is known by its first part: the one a thread hangs under and an edit replaces
        # (its start, not the tail of a long notice).
        assert first is not None  # render() always returns at least one part
        return first

    @staticmethod
    def _part_kwargs(part: Part, mentions: discord.AllowedMentions) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"content": part.content or None, "allowed_mentions": mentions}
        if part.embed is not None:
            kwargs["embed"] = part.embed
        if part.buttons:
            view = discord.ui.View(timeout=None)
            for button in part.buttons:
                view.add_item(
                    PersistentButton(
                        discord.ui.Button(
                            label=button.label[:80],
                            style=button_style(button.style),
                            custom_id=encode_custom_id(button.action_id, button.value),
                        )
                    )
                )
            kwargs["view"] = view
        return kwargs

    @staticmethod
    def _may_follow_up(pending: _Pending | None, target: str, error: Exception) -> bool:
        """A public answer to a command in its own channel, refused for lack of access."""
        if pending is None or not pending.is_command or str(pending.interaction.channel_id) != target:
            return False
        return isinstance(error, discord.Forbidden) or getattr(error, "code", "") == "missing_access"

    async def _reply_via_interaction(
        self, pending: _Pending, delivery: Delivery, *, ephemeral: bool
    ) -> SentRef:
        """Answer through the interaction's token: privately (the first part replaces a command's
        "thinking…" placeholder), or publicly as follow-ups where the bot cannot post itself."""
        interaction = pending.interaction
        mentions = allowed_mentions(delivery.message)
        sent: discord.Message | None = None
        for part in render(delivery.message):
            kwargs = self._part_kwargs(part, mentions)
            if ephemeral and pending.is_command and not pending.original_used:
                pending.original_used = True
                sent = await interaction.edit_original_response(**kwargs)
            else:
                kwargs = {k: v for k, v in kwargs.items() if v is not None}
                sent = await interaction.followup.send(**kwargs, ephemeral=ephemeral, wait=True)
                if not ephemeral:
                    self._remember_follow_up(str(sent.id), pending)
        assert sent is not None
        conversation = delivery.conversation
        return SentRef(
            platform=Platform.DISCORD,
            workspace_id=conversation.workspace_id,
            channel_id=conversation.channel_id,
            message_id=str(sent.id),
            thread_id=conversation.thread_id,
        )

    async def _edit(self, ref: SentRef, message: OutboundMessage) -> SentRef:
        parts = render(message)
        if len(parts) > 1:
            log.warning(
                "edit of %s is longer than one Discord message; keeping the first part", ref.message_id
            )
        part = Part(content=parts[0].content, embed=parts[-1].embed, buttons=parts[-1].buttons)
        kwargs = self._part_kwargs(part, allowed_mentions(message))
        kwargs.setdefault("embed", None)
        kwargs.setdefault("view", None)
        via = self._follow_ups.get(ref.message_id)
        if via is not None and time.monotonic() - via.received <= INTERACTION_TOKEN_SECONDS:
            # Posted as a command's follow-up (no access to the channel): edit it the same way.
            await via.interaction.followup.edit_message(int(ref.message_id), **kwargs)
            return ref
        target = ref.thread_id or ref.channel_id
        self._check_access(target)
        partial = self.client.get_partial_messageable(int(target)).get_partial_message(int(ref.message_id))
        await partial.edit(**kwargs)
        return ref

    async def _channel(self, channel_id: int) -> Any:
        return self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)

    def _check_access(self, channel_id: str) -> None:
        """Refuse early where the bot's cached permissions say it cannot post: a request that would
        get 403 only counts toward Discord's invalid-request ban."""
        channel = self.client.get_channel(int(channel_id))
        guild = getattr(channel, "guild", None)
        if channel is None or guild is None or guild.me is None:
            return
        permissions = channel.permissions_for(guild.me)  # type: ignore[union-attr]
        can_send = (
            permissions.send_messages_in_threads
            if isinstance(channel, discord.Thread)
            else permissions.send_messages
        )
        if not (permissions.view_channel and can_send):
            raise DeliveryError(
                f"no permission to post in {channel_id}", permanent=True, code="missing_access"
            )

    # -- threads -----------------------------------------------------------------------------

    async def _start_thread(self, channel_id: int, message_id: int, name: str) -> None:
        """A public thread on a message; fine when it already exists."""
        try:
            await self.client.http.start_thread_with_message(
                channel_id, message_id, name=name, auto_archive_duration=10080, rate_limit_per_user=None
            )
        except discord.HTTPException as error:
            if error.code != THREAD_EXISTS:
                raise

    async def _thread_on_message(self, conversation: Conversation, event: MessageReceived) -> str | None:
        """The thread under a person's message (its id is the message id), or None when the bot may
        not create threads here, in which case the answer is a reply to the message."""
        try:
            await self._start_thread(
                int(conversation.channel_id), int(event.message_id), thread_name(event.text)
            )
        except (discord.Forbidden, discord.NotFound):
            return None
        except discord.HTTPException as error:
            if error.code in THREAD_LIMIT_CODES:
                return None
            raise
        return event.message_id

    async def _open_room(self, conversation: Conversation, delivery: Delivery) -> Conversation | None:
        """The new thread a delivery asks for (private, else public, else a forum post) with its
        invitees in it, or None when none could be opened: the message then goes where it would
        have gone without one, the thread under the message it answers."""
        assert delivery.new_thread is not None
        invite = [a.id for a in delivery.new_thread.invite if a.platform is Platform.DISCORD]
        parent = conversation.without_thread()
        # A retry of this delivery (the post failed after the thread was made) reuses the thread.
        key = f"{parent.key}|{delivery.new_thread.title}"
        if key in self._rooms:
            return self._rooms[key]
        try:
            room = await self.create_thread(parent, delivery.new_thread.title, invite=invite)
        except DeliveryError as error:
            if not error.permanent:
                raise
            log.warning("no thread of its own for a ticket in %s: %s", parent.channel_id, error)
            return None
        self._rooms[key] = room
        while len(self._rooms) > MAX_REMEMBERED_INTERACTIONS:
            self._rooms.popitem(last=False)
        return room

    async def create_thread(
        self, conversation: Conversation, name: str, *, private: bool = True, invite: Iterable[str] = ()
    ) -> Conversation:
        """Open a ticket thread in `conversation`'s channel and add `invite` (user ids) to it.

        Private thread first (only invited people and staff with Manage Threads see it); when the
        server refuses (no permission, thread limit reached, channel type) a public thread; when that
        fails too and DISCORD_TICKET_FORUM_ID is set, a post in that forum channel (which helps when
        this channel allows no threads; a guild-wide thread limit counts forum posts too). Returns
        the thread as a conversation; raises DeliveryError when no option worked.
        """
        name = thread_name(name, fallback="Ticket")
        kinds = [discord.ChannelType.private_thread] if private else []
        kinds.append(discord.ChannelType.public_thread)
        parent = await self._channel(int(conversation.channel_id))
        last_error: Exception | None = None
        thread: discord.Thread | None = None
        for kind in kinds:
            try:
                thread = await parent.create_thread(  # type: ignore[union-attr]
                    name=name, type=kind, invitable=False, auto_archive_duration=10080
                )
                break
            except discord.HTTPException as error:
                if not isinstance(error, discord.Forbidden) and error.code not in THREAD_LIMIT_CODES:
                    raise _delivery_error(error) from error
                log.info(
                    "cannot open a %s in %s (%s); trying the next option", kind.name, parent.id, error.code
                )
                last_error = error
        if thread is None and self.ticket_forum_id:
            try:
                forum = await self._channel(int(self.ticket_forum_id))
                created = await forum.create_thread(  # type: ignore[union-attr]
                    name=name, content=name, allowed_mentions=discord.AllowedMentions.none()
                )
                thread = created.thread
            except discord.HTTPException as error:
                last_error = error
        if thread is None:
            raise _delivery_error(last_error or RuntimeError("no way to open a thread here"))
        for user_id in invite:
            try:
                await thread.add_user(discord.Object(id=int(user_id)))
            except discord.HTTPException as error:
                log.warning("could not add %s to thread %s: %s", user_id, thread.id, error)
                if thread.type is discord.ChannelType.private_thread:
                    # Nobody could see a private thread they were not added to: use a public one.
                    with contextlib.suppress(discord.HTTPException):
                        await thread.delete()
                    return await self.create_thread(conversation, name, private=False, invite=invite)
        parent_id = thread.parent_id
        return Conversation(
            platform=Platform.DISCORD,
            workspace_id=conversation.workspace_id,
            channel_id=str(parent_id),
            thread_id=str(thread.id),
        )
