"""The Discord adapter: a discord.py client (gateway + REST) behind the Adapter protocol.

Inbound: messages in community channels, the staff channel, the bot's own threads and DMs (and
mentions anywhere), slash commands (`commands`), clicks on the bot's buttons and reactions
(`inbound`). Interactions are deferred at once and the handler's reply follows up (`interactions`).
Outbound: neutral messages become content + embed + persistent buttons, with `allowed_mentions`
that let only deliberate mentions ping (`translate`), in the thread the conversation names, created
on the message it answers when needed, or in a ticket room of its own (`threads`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import discord
from discord import app_commands

from bot.adapters.base import Capabilities, DeliveryError, DeliveryFailure, EventSink, RetryListener
from bot.adapters.discord.bounded import SEND_TIMEOUT, bounded, in_doubt
from bot.adapters.discord.catch_up import CATCH_UP, missed_messages
from bot.adapters.discord.client import apply_endpoints, http_retries, make_client
from bot.adapters.discord.commands import Suggester, build_tree
from bot.adapters.discord.inbound import read_reaction
from bot.adapters.discord.interactions import (
    Interactions,
    Pending,
    PersistentButton,
    conversation_of,
    defer,
    may_follow_up,
    send_kwargs,
)
from bot.adapters.discord.kept import BUTTON, COMMAND, KeptInteraction, kept_body, rebuilt
from bot.adapters.discord.members import DirectMessageRoles
from bot.adapters.discord.reconnect import cap_reconnect_delay, resume_shards_on_reconnect
from bot.adapters.discord.resume import (
    OPEN_AT_MOST,
    SAVE_EVERY,
    STALE_AFTER,
    GatewaySession,
    Replayed,
    SessionStore,
    Settled,
    current_session,
    reaction_id,
    replay,
    replayed_reaction,
    shard_of,
)
from bot.adapters.discord.threads import Threads
from bot.adapters.discord.translate import (
    ENTITY_TOO_LARGE,
    MAX_FILE_BYTES,
    MAX_TEXT,
    UNKNOWN_CHANNEL,
    Part,
    action_to_event,
    actor_from_user,
    allowed_mentions,
    command_to_event,
    delivery_error,
    files,
    message_to_event,
    neutralise,
    nonce_for,
    render,
    thread_name,
)
from bot.adapters.files import Loaded, download, load, not_attached_note, origin, with_note, without_files
from bot.core.commands import Catalogue
from bot.core.events import (
    ActionInvoked,
    Actor,
    CommandInvoked,
    Conversation,
    Delivery,
    InboundEvent,
    Mention,
    MessageReceived,
    OutboundMessage,
    Platform,
    SentRef,
    SharedFile,
)
from bot.core.inbox import Inbox, Kept, finish_kept, replay_due, replay_forever

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

NOTE_PART: Final = -1
"""The nonce's part number of the note that a file could not be attached (after the message's parts)."""

DMS_CLOSED: Final = (
    "I have an answer just for you, but your direct messages are closed to me. Allow them in this"
    " server's Privacy Settings and ask again, or use a command such as `/ticket status`: I answer"
    " those where only you can see."
)
"""Said where someone asked when their private answer could not go to their DMs: never the answer."""
DMS_CLOSED_QUIET: Final = 600.0
"""Seconds during which DMS_CLOSED is not said again to the same person in the same channel: three
failed private answers in a row are one note, not three pings."""


DISCORD_API = "https://discord.com/"
CDN_ORIGINS: Final = frozenset({"https://cdn.discordapp.com", "https://media.discordapp.net"})
"""Where Discord serves the files people attach to messages."""


class DiscordAdapter:
    platform = Platform.DISCORD
    capabilities = Capabilities(
        buttons=True,
        threads=True,
        private_replies=True,
        edits=True,
        max_text=MAX_TEXT,
        max_file_bytes=MAX_FILE_BYTES,
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
        commands: Catalogue | None = None,
        suggest: Suggester | None = None,
        sync_commands: bool = True,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float = 60.0,
        sessions: SessionStore | None = None,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._token = token
        self.send_timeout = send_timeout
        self.api_base = api_base
        self.gateway_url = gateway_url
        self.listen_channel_ids = frozenset(community_channel_ids) | (
            {staff_channel_id} if staff_channel_id else frozenset()
        )
        self.dev_guild_id = dev_guild_id
        self.shard_count = shard_count
        self.shard_ids = list(shard_ids)
        self._suggest = suggest
        self.sync_commands = sync_commands
        self.guild_ready_timeout = guild_ready_timeout
        self.ready_timeout = ready_timeout
        self._sink: EventSink | None = None
        self._client: discord.Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Task[None] | None = None
        self._sessions = sessions
        self._settled = Settled()
        self._owner = ""  # this process's token on the sessions it stores, made at each start
        self._replays: dict[int, tuple[GatewaySession, asyncio.Task[None]]] = {}  # shard -> drained
        self._held: set[int] = set()  # shards whose stored session another live process keeps
        self._saving: asyncio.Task[None] | None = None
        self._inbox: Inbox | None = None
        self._replay_every = 15.0
        self._replayer: asyncio.Task[None] | None = None
        self._kept: dict[str, int] = {}  # event id -> its inbox row, until settled
        self._replaying: set[asyncio.Task[None]] = set()
        self.catalogue = commands or Catalogue((), {})
        self.interactions = Interactions(timeout=send_timeout)
        self.threads = Threads(lambda: self.client, forum_id=ticket_forum_id, timeout=send_timeout)
        self.dm_roles = DirectMessageRoles(lambda: self.client, timeout=send_timeout)
        self.retries, self._http_trace = http_retries()
        self.dms_closed_quiet = DMS_CLOSED_QUIET
        self._dms_closed_told: dict[tuple[str, str], float] = {}  # (person, channel) -> monotonic
        self._downloads: aiohttp.ClientSession | None = None  # for files people shared, made on use

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        commands: Catalogue | None = None,
        suggest: Suggester | None = None,
        **options: Any,
    ) -> DiscordAdapter:
        """The adapter as configured, offering `commands` (the handlers' catalogue) as slash commands;
        `options` override keyword arguments (tests: short timeouts)."""
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
            commands=commands,
            suggest=suggest,
            **options,
        )

    def keep_inbox(self, inbox: Inbox, *, replay_every: float = 15.0) -> None:
        """Write every deferred interaction to `inbox`, and answer, every `replay_every` seconds
        (and at start), those a process that died deferred but never settled (`kept`)."""
        self._inbox = inbox
        self._replay_every = replay_every

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> discord.Client:
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        return self._client

    def _make_client(self) -> discord.Client:
        client = make_client(
            self,
            shard_count=self.shard_count,
            shard_ids=self.shard_ids,
            guild_ready_timeout=self.guild_ready_timeout,
            http_trace=self._http_trace,
        )
        self.tree = app_commands.CommandTree(client)
        build_tree(self.tree, self.catalogue, self.on_command, self._suggest)
        return client

    async def start(self, sink: EventSink) -> None:
        """Log in, sync commands, connect; returns once the guilds are loaded."""
        self._sink = sink
        self._owner = secrets.token_hex(8)  # an id, not a secret: it only tells processes apart
        apply_endpoints(self.api_base, self.gateway_url)
        cap_reconnect_delay()
        resume_shards_on_reconnect()
        client = self._client = self._make_client()
        try:
            await client.login(self._token)
        except (discord.LoginFailure, discord.HTTPException, aiohttp.ClientError, OSError) as error:
            # Closed, or its HTTP session outlives the start and asyncio reports it at exit.
            await client.close()
            raise _login_failure(error, api_base=self.api_base) from None
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
        self._catching_up = asyncio.create_task(self._catch_up(), name="discord-catch-up")
        if self._inbox is not None:
            self._replayer = asyncio.create_task(
                replay_forever(self.replay, platform=Platform.DISCORD.value, every=self._replay_every),
                name="discord-inbox",
            )

    async def _catch_up(self) -> None:
        """Answer what was posted while no process was connected: what the previous process's
        sessions replay (`resume`), then the served channels' recent history (`catch_up`)."""
        # Only now, with every shard's new session READY: until then nothing reaches the new
        # session, and the old one (resumable) keeps what is sent. Drained and ended before, what
        # was sent between its RESUMED and the new READY reached neither (sharded: 5 s a shard).
        if self._sessions is not None:
            await self._take_over(self._own_shards())
            draining = [task for _, task in self._replays.values()]
            # Saving, which keeps the claimed sessions refreshed, runs while they are drained.
            self._saving = asyncio.create_task(self._keep_sessions(), name="discord-sessions")
            if draining:
                await asyncio.wait(draining)
        read = 0
        since = discord.utils.utcnow() - CATCH_UP
        async for message in missed_messages(self.client, self.listen_channel_ids, since=since):
            await self.on_message(message)
            read += 1
        log.info("discord: read the last %d messages of the served channels to catch up", read)

    async def stop(self) -> None:
        replays = (task for _, task in self._replays.values())
        for task in (self._replayer, self._catching_up, self._saving, *replays, *self._replaying):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("discord: catching up or keeping the session failed")
        self._replayer = self._catching_up = self._saving = None
        self._sink = None
        if self._client is not None:
            if self._sessions is not None:
                # What was settled up to the stop, handed over: the next process need not wait for
                # the rows to go stale.
                await self._save_sessions(hand_over=True)
            await self._client.close()
        self._replays = {}
        self._held = set()
        if self._downloads is not None:
            await self._downloads.close()
            self._downloads = None
        if self._runner is not None:
            try:
                await self._runner
            except Exception:
                log.debug("discord gateway task ended with an error on stop", exc_info=True)
        self._runner = None

    async def fetch_file(self, file: SharedFile, *, limit: int) -> bytes:
        """A file attached to a message the bot received, from its attachment URL: no token goes
        with it (the URL is signed), and only to Discord's CDN (or, with another API base, such as
        an emulator or a proxy, to that base's host alone). Signed URLs expire after about a day."""
        if self._downloads is None:
            self._downloads = aiohttp.ClientSession()
        api = self.api_base.startswith(DISCORD_API)
        origins = CDN_ORIGINS if api else frozenset({origin(self.api_base)})
        data, _ = await download(self._downloads, file.ref, limit=limit, origins=origins)
        return data

    async def connected(self) -> bool:
        """The gateway is up: ready, and every shard's websocket open (discord.py reconnects by
        itself; until it has, this says so)."""
        client = self._client
        if client is None or self._sink is None or client.is_closed() or not client.is_ready():
            return False
        if isinstance(client, discord.AutoShardedClient):
            return bool(client.shards) and not any(shard.is_closed() for shard in client.shards.values())
        return client.ws is not None and client.ws.open

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

    # -- the previous process's sessions ------------------------------------------------------

    def _own_shards(self) -> list[int]:
        if not self.shard_count:
            return [0]
        return self.shard_ids or list(range(self.shard_count))

    async def _take_over(self, shard_ids: Iterable[int]) -> None:
        """Claim the stored sessions of these shards that no live process keeps (their owner died,
        or handed them over at its stop) and drain each. One a live process keeps is left alone:
        resumed from here, Discord would move it off that process's socket."""
        assert self._sessions is not None
        try:
            claimed = await self._sessions.claim(list(shard_ids), owner=self._owner, stale_after=STALE_AFTER)
        except Exception:
            log.exception("discord: could not read the previous gateway sessions; going on without them")
            return
        for stored in claimed:
            self._held.discard(stored.shard_id)
            task = asyncio.create_task(self._drain(stored), name="discord-replay")
            self._replays[stored.shard_id] = (stored, task)

    async def _drain(self, stored: GatewaySession) -> None:
        """Resume a previous session and hand the messages it replays to the same path as live ones,
        fetched by id (the replay is raw payloads). Those in the served channels are left to the
        channel catch-up, which reads them anyway (or, taken over later, came to this process's own
        session); interactions came too late to be answered (Discord's 3 seconds)."""
        try:
            result = await replay(stored, token=self._token)
            handed = await self._hand_on(result)
            log.info(
                "discord: previous session of shard %d %s: %d messages replayed, %d read again here, "
                "%d reactions, %d interactions too late to answer",
                stored.shard_id,
                "resumed" if result.resumed else "not resumed",
                len(result.messages),
                len(handed) - len(result.reactions),
                len(result.reactions),
                result.interactions,
            )
            # Forgotten (and this process's session stored instead) only once what it replayed is
            # settled: a kill before leaves it, still resumable, for the next process to replay.
            try:
                async with asyncio.timeout(OPEN_AT_MOST):
                    await self._settled.wait(handed)
            except TimeoutError:
                log.warning("discord: replayed messages still unsettled; the old session is let go")
        except Exception:  # never in the way of the channel catch-up and the start
            log.exception("discord: resuming the previous session (shard %d) failed", stored.shard_id)
        try:
            assert self._sessions is not None  # replays exist only with a store
            await self._sessions.forget(stored, owner=self._owner)
        except Exception:
            log.exception("discord: could not forget the previous gateway session")
        self._replays.pop(stored.shard_id, None)

    async def _hand_on(self, result: Replayed) -> set[str]:
        """Hand what a replay brought to the dispatcher; the ids it is settled by."""
        channels: dict[int, discord.abc.Messageable] = {}
        handed: set[str] = set()
        for channel_id, message_id in result.messages:
            if str(channel_id) in self.listen_channel_ids:
                continue
            message = await self._fetch_message(channel_id, message_id, channels)
            if message is not None:
                handed.add(str(message.id))
                self._settled.expect(str(message.id))
                await self.on_message(message)
        for data in result.reactions:
            reaction = replayed_reaction(self.client, data)
            key = reaction_id(reaction)
            handed.add(key)
            self._settled.expect(key)
            await self.on_reaction(reaction)
        return handed

    async def _fetch_message(
        self, channel_id: int, message_id: int, channels: dict[int, discord.abc.Messageable]
    ) -> discord.Message | None:
        try:
            channel = channels.get(channel_id) or self.client.get_channel(channel_id)
            if channel is None:
                channel = await self.client.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                return None
            channels[channel_id] = channel
            return await channel.fetch_message(message_id)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as error:
            log.warning("discord: could not read replayed message %s: %s", message_id, error)
            return None

    async def _keep_sessions(self) -> None:
        """Store this process's sessions about once a second, and take over those another process
        kept once it stops saving them."""
        while True:
            await asyncio.sleep(SAVE_EVERY)
            if self._held:
                await self._take_over(self._held - self._replays.keys())
            await self._save_sessions()

    async def _save_sessions(self, *, hand_over: bool = False) -> None:
        """Store (and so refresh) the shards' sessions, where no other live process keeps the row.
        A shard whose previous session is still drained keeps that one stored, not this process's:
        killed or stopped meanwhile, the next process resumes it and answers what it holds (sent
        while no bot was up, or not handled by the dead one). Stored over, that was lost."""
        assert self._sessions is not None
        sessions = []
        for shard_id in self._own_shards():
            if shard_id in self._replays:
                sessions.append(self._replays[shard_id][0])
            elif (now := current_session(self.client, shard_id)) is not None:
                sessions.append(replace(now, sequence=self._settled.safe(shard_id, now.sequence)))
        if not sessions:
            return
        try:
            stored = await self._sessions.save(sessions, owner=self._owner, hand_over=hand_over)
        except Exception as error:  # the next tick tries again; a crash meanwhile replays a bit more
            log.warning("discord: could not store the gateway session: %s", type(error).__name__)
            return
        held = {s.shard_id for s in sessions} - stored
        for shard_id in sorted(held - self._held):
            log.info(
                "discord: the stored session of shard %d is another live process's; left alone "
                "(resumed once that process has not saved it for %.0f s)",
                shard_id,
                STALE_AFTER,
            )
        self._held = held

    # -- inbound -----------------------------------------------------------------------------

    def received(self, message: discord.Message) -> None:
        """discord.py is parsing `message` (synchronously: its socket's sequence is the message's)."""
        if self._sessions is None or self._client is None:
            return
        shard_id = shard_of(message.guild)
        now = current_session(self._client, shard_id)
        if now is not None:
            self._settled.received(shard_id, now.sequence, str(message.id))

    async def on_message(self, message: discord.Message) -> None:
        user = self.client.user
        event = None
        if user is not None and self._sink is not None:
            event = message_to_event(message, bot_user_id=user.id, listen_channel_ids=self.listen_channel_ids)
        if event is None or self._sink is None:
            self._settled.settled(str(message.id))  # nothing for the dispatcher to finish
            return
        await self._sink(await self.dm_roles.with_roles(event))

    def received_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """discord.py is parsing a reaction: held like a message (`received`) until settled."""
        if self._sessions is None or self._client is None:
            return
        shard_id = shard_of(self._client.get_guild(payload.guild_id) if payload.guild_id else None)
        now = current_session(self._client, shard_id)
        if now is not None:
            self._settled.received(shard_id, now.sequence, reaction_id(payload))

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        event = None
        if self._sink is not None:
            event = await read_reaction(self.client, payload, listen_channel_ids=self.listen_channel_ids)
        if event is None or self._sink is None:
            # Nothing for the dispatcher to finish.
            self._settled.settled(reaction_id(payload))
            return
        await self._sink(event)

    async def on_command(self, interaction: discord.Interaction) -> None:
        # Defer first: the reply comes from a queued handler, maybe later than Discord's 3 seconds.
        # Ephemeral, because most answers to a command are for the one who typed it; a public
        # answer is posted in the channel and the private "thinking" placeholder removed.
        deferred = await defer(interaction, ephemeral=True, thinking=True)
        event = command_to_event(
            interaction.data or {},
            actor=actor_from_user(interaction.user),
            conversation=conversation_of(interaction),
            interaction_id=interaction.id,
            catalogue=self.catalogue,
        )
        await self._submit(event, interaction, is_command=True, deferred=deferred)

    async def on_button(self, interaction: discord.Interaction, custom_id: str) -> None:
        deferred = await defer(interaction, ephemeral=False, thinking=False)
        message = interaction.message
        event = action_to_event(
            custom_id,
            actor=actor_from_user(interaction.user),
            conversation=conversation_of(interaction),
            interaction_id=interaction.id,
            message_id=message.id if message else None,
        )
        if event is not None:
            await self._submit(event, interaction, is_command=False, deferred=deferred)

    async def _submit(
        self, event: InboundEvent, interaction: discord.Interaction, *, is_command: bool, deferred: bool
    ) -> None:
        channel_id = str(interaction.channel_id) if interaction.channel_id else None
        self.interactions.remember(event, interaction, is_command=is_command, channel_id=channel_id)
        if deferred:
            await self._keep(COMMAND if is_command else BUTTON, event, interaction)
        await self._to_dispatcher(event)

    async def _to_dispatcher(self, event: InboundEvent) -> None:
        """Hand `event` to the dispatcher. If it cannot be (reading the person's roles failed, a
        stop), its inbox row is let go: no longer renewed, so any process replays it after its lease."""
        handed = False
        try:
            sink = self._sink
            if sink is not None:
                await sink(await self.dm_roles.with_roles(event))
                handed = True
        finally:
            kept = None if handed else self._kept.pop(event.event_id, None)
            if kept is not None and self._inbox is not None:
                self._inbox.release([kept])

    async def event_settled(self, event: InboundEvent, *, duplicate: bool) -> None:
        """The dispatcher is done with `event` (see `SettlesEvents`)."""
        self._settled.settled(event.event_id)
        await self.interactions.settle(event, duplicate=duplicate)
        kept = self._kept.pop(event.event_id, None)
        if kept is not None:
            await finish_kept(self._inbox, [kept])

    # -- the inbox ---------------------------------------------------------------------------

    async def _keep(self, kind: str, event: InboundEvent, interaction: discord.Interaction) -> None:
        """Write a deferred interaction to the inbox. Unlike a Slack request, it is already
        acknowledged (Discord's 3 seconds do not wait for a database), so one the inbox cannot
        store is still handled here, only without a copy for another process."""
        if self._inbox is None:
            return
        person = f"{Platform.DISCORD.value}:{event.actor.id}"
        try:
            self._kept[event.event_id] = await self._inbox.keep(
                kind=kind, person=person, body=kept_body(event, interaction)
            )
        except Exception as error:
            log.warning(
                "could not store a discord %s (%s); handled without a copy", kind, type(error).__name__
            )

    async def replay(self) -> int:
        """Answer the interactions a process deferred but did not see settled (it died): the inbox
        rows whose lease ran out. How many were claimed."""
        if self._inbox is None:
            return 0
        return await replay_due(
            self._inbox,
            platform=Platform.DISCORD.value,
            take=self._replay_one,
            receiving=lambda: self._sink is not None,
        )

    def _replay_one(self, row: Kept, age: float) -> None:
        self._in_background(self._take_in_again(row, age))

    def _in_background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._replaying.add(task)
        task.add_done_callback(self._replaying.discard)

    async def _take_in_again(self, row: Kept, age: float) -> None:
        try:
            kept = rebuilt(row.kind, row.body, self.client)
        except ValueError as error:
            log.error("discord inbox row %d cannot be read, dropped: %s", row.id, error)
            await finish_kept(self._inbox, [row.id])
            return
        self._remember_kept(kept, age)
        self._kept[kept.event.event_id] = row.id
        await self._to_dispatcher(kept.event)

    def _remember_kept(self, kept: KeptInteraction, age: float) -> None:
        """Keep a rebuilt interaction for the replies to its event, `age` seconds after its row was
        written. Past the token's 15 minutes, `live` no longer finds it: the replies then go as for
        any expired interaction (a private one to the person's DMs, a public one to the channel). The
        token's clock started when Discord made the interaction (its id says when), a little before
        the row was written, and on Discord's clock rather than the writing host's."""
        issued = discord.utils.snowflake_time(kept.interaction.id)
        age = max(age, (discord.utils.utcnow() - issued).total_seconds())
        self.interactions.remember(
            kept.event,
            kept.interaction,
            is_command=kept.is_command,
            channel_id=kept.channel_id,
            age=age,
            replayed=True,
        )

    async def _kept_interaction(self, event: InboundEvent | None) -> Pending | None:
        """The interaction `event` came from, rebuilt from its inbox row while the row is there and
        the token works. A process that died after its commit owes the replies, and a sweep may post
        them (as resends) before this process's replay of the row has rebuilt the interaction: they
        still answer through its token, or its "thinking…" placeholder would stay for the token's 15
        minutes beside an answer sent as a message."""
        if self._inbox is None or not isinstance(event, CommandInvoked | ActionInvoked):
            return None
        try:
            rows = await self._inbox.of_person(f"{Platform.DISCORD.value}:{event.actor.id}")
        except Exception as error:
            log.info("could not look for the interaction of %s: %s", event.event_id, type(error).__name__)
            return None
        for row in rows:
            try:
                kept = rebuilt(row.kind, row.body, self.client)
            except ValueError:
                continue  # the replay drops it
            if kept.event.event_id == event.event_id:
                self._remember_kept(kept, (discord.utils.utcnow() - row.received_at).total_seconds())
                return self.interactions.live(event)
        return None

    # -- sending -----------------------------------------------------------------------------

    def report_retries(self, listener: RetryListener) -> None:
        self.retries.listen(listener)

    async def send(self, delivery: Delivery) -> SentRef:
        try:
            with self.retries.delivering():
                return await self._send(delivery)
        except DeliveryError:
            raise
        except (TimeoutError, discord.HTTPException, aiohttp.ClientError, OSError) as error:
            raise delivery_error(error) from error

    async def _send(self, delivery: Delivery) -> SentRef:
        if delivery.message.attachments and (delivery.edit or delivery.message.private_to):
            # Private replies go through interactions and DMs, edits keep their files: none attached.
            delivery = replace(delivery, message=without_files(delivery.message))
        message = delivery.message
        if delivery.edit is not None:
            return await self._edit(delivery.edit, message)
        if delivery.direct_to is not None:
            return await self._send_in_dm(delivery, delivery.direct_to.id)
        pending = self.interactions.live(delivery.reply_to)
        if pending is None and delivery.resend:
            pending = await self._kept_interaction(delivery.reply_to)
        if pending is not None and message.private_to is not None:
            return await self.interactions.reply(pending, delivery, ephemeral=True)
        if message.private_to is not None and not delivery.conversation.is_direct:
            # No interaction to answer ephemerally (a plain message, or its token expired): a
            # private reply goes to the person's DMs, never to the channel for everyone to read.
            try:
                return await self._send_in_dm(delivery, message.private_to.id)
            except DeliveryError as error:
                if error.code is DeliveryFailure.PERSON_UNREACHABLE:
                    await self._say_dms_are_closed(delivery, message.private_to)
                raise
        if pending is not None:
            # A public answer to a command: drop the private "thinking…" placeholder first.
            await self.interactions.drop_placeholder(pending)
        conversation = delivery.conversation
        if delivery.new_thread is not None and not conversation.is_direct:
            room = await self.threads.open_room(conversation, delivery)
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
            thread_id = await self.threads.under_message(conversation, reply_to)
            if thread_id is None:  # no thread allowed here: a reply to the message instead
                reference = _reference(reply_to, conversation)
        elif isinstance(reply_to, MessageReceived) and message.in_thread and conversation.is_direct:
            reference = _reference(reply_to, conversation)
        target = thread_id or conversation.channel_id
        message, attached = await self._load_files(message, target)
        try:
            self._check_access(target)
            sent = await self._post_parts(
                conversation,
                target,
                render(message),
                message,
                reference,
                key=delivery.idempotency_key,
                attached=attached,
            )
        except (DeliveryError, discord.Forbidden) as error:
            if not may_follow_up(pending, target, error):
                raise
            # The bot may not post here, but a command's follow-up is a webhook message that needs
            # no channel permission: answer the one who asked where they asked.
            log.info("no access to %s; answering the command through its follow-up", target)
            assert pending is not None
            return await self.interactions.reply(pending, delivery, ephemeral=False)
        return SentRef(
            platform=Platform.DISCORD,
            workspace_id=conversation.workspace_id,
            channel_id=conversation.channel_id,
            message_id=str(sent.id),
            thread_id=thread_id,
        )

    async def _say_dms_are_closed(self, delivery: Delivery, person: Actor) -> None:
        """Tell the person, where they asked and pinging only them, that an answer for them alone
        cannot reach their DMs, once per person and channel in `dms_closed_quiet` (in this
        process). The private answer itself still failed: the core hears so."""
        where, now = (person.id, delivery.conversation.channel_key), time.monotonic()
        said = self._dms_closed_told
        if now - said.get(where, -self.dms_closed_quiet) < self.dms_closed_quiet:
            log.info("%s already told in %s that their DMs are closed", person.id, where[1])
            return
        if len(said) > 1000:  # forget the ones whose quiet has passed, so this never grows for good
            for old in [k for k, at in said.items() if now - at >= self.dms_closed_quiet]:
                del said[old]
        said[where] = now
        key = delivery.idempotency_key
        note = OutboundMessage(text=DMS_CLOSED, mentions=(Mention(kind="user", id=person.id),))
        told = replace(
            delivery,
            message=note,
            idempotency_key=f"{key}-dms-closed" if key else None,
            new_thread=None,
            or_else=None,
        )
        try:
            await self._send(told)
        except (DeliveryError, discord.HTTPException, TimeoutError) as error:
            said.pop(where, None)  # not told: the next failure tries again
            log.info("could not tell %s where they asked that their DMs are closed: %r", person.id, error)

    async def _send_in_dm(self, delivery: Delivery, user_id: str) -> SentRef:
        try:
            # The same channel however often it is asked for: harmless to ask again.
            dm = await bounded(self.client.create_dm(discord.Object(id=int(user_id))), self.send_timeout)
        except (discord.HTTPException, ValueError) as error:
            raise DeliveryError(
                "cannot open a DM for a private reply",
                permanent=True,
                code=DeliveryFailure.PERSON_UNREACHABLE,
            ) from error
        conversation = Conversation(
            platform=Platform.DISCORD, workspace_id="", channel_id=str(dm.id), is_direct=True
        )
        message = delivery.message
        try:
            sent = await self._post_parts(
                conversation, str(dm.id), render(message), message, None, key=delivery.idempotency_key
            )
        except discord.Forbidden as error:
            # In a DM the bot has no permissions to lose: the person closed their DMs to it (50007).
            raise DeliveryError(
                "the person's DMs are closed to the bot",
                permanent=True,
                code=DeliveryFailure.PERSON_UNREACHABLE,
                detail=str(error.code),
            ) from error
        return SentRef(
            platform=Platform.DISCORD,
            workspace_id="",
            channel_id=str(dm.id),
            message_id=str(sent.id),
            is_direct=True,
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
        attached: Loaded | None = None,
    ) -> discord.Message:
        channel = self.client.get_partial_messageable(int(target))
        mentions = allowed_mentions(message)
        first: discord.Message | None = None
        for index, part in enumerate(parts):
            kwargs = send_kwargs(part, mentions)
            if key is not None:
                # Discord drops a second message with the same enforced nonce, so a broadcast resent
                # after a crash (same outbox key) posts nothing new.
                kwargs["nonce"] = nonce_for(key, index)
            if index == 0 and reference is not None:
                kwargs["reference"] = reference
            # The files ride on the last part, with the embed and the buttons.
            files_here = attached if attached and index == len(parts) - 1 else None
            try:
                sent = await self._post_part(channel, kwargs, files_here, key=key)
            except discord.NotFound as error:
                if index or conversation.thread_id is None or error.code != UNKNOWN_CHANNEL:
                    raise
                # Slack-style thread id: the message a thread should hang under, not yet a thread.
                # Named for what it holds (an incident's updates under its notice, in a channel
                # customers read); an untitled reply's thread is a ticket's.
                await self.threads.start_on_message(
                    int(conversation.channel_id),
                    int(conversation.thread_id),
                    thread_name(message.title or "", fallback="Ticket"),
                )
                sent = await self._post_part(channel, kwargs, files_here, key=key)
            first = first or sent
        # The message is known by its first part: the one a thread hangs under and an edit replaces
        # (its start, not the tail of a long notice).
        assert first is not None  # render() always returns at least one part
        return first

    def _file_limit(self, channel_id: str) -> int:
        """The guild's upload limit (boosts raise it) where the bot knows the channel, else the default."""
        channel = self.client.get_channel(int(channel_id)) if channel_id.isdigit() else None
        guild = getattr(channel, "guild", None)
        return max(MAX_FILE_BYTES, guild.filesize_limit) if guild is not None else MAX_FILE_BYTES

    async def _load_files(self, message: OutboundMessage, target: str) -> tuple[OutboundMessage, Loaded]:
        """The files that can go, read; the message says which cannot (unreadable, too large)."""
        if not message.attachments:
            return message, []
        loaded, failed = await load(message.attachments, limit=self._file_limit(target))
        return with_note(message, failed, keep=[a for a, _ in loaded]), loaded

    async def _post_part(
        self,
        channel: discord.PartialMessageable,
        kwargs: dict[str, Any],
        attached: Loaded | None,
        *,
        key: str | None,
    ) -> discord.Message:
        if attached:
            return await self._send_with_files(channel, kwargs, attached, key=key)
        return await self._post(channel, kwargs)

    async def _send_with_files(
        self,
        channel: discord.PartialMessageable,
        kwargs: dict[str, Any],
        attached: Loaded,
        *,
        key: str | None,
    ) -> discord.Message:
        """Send a part with the files; when Discord refuses them as too large (413), send the part
        without them and a note that says so: the message itself is never lost to its files."""
        try:
            # The files ride in the same request as the nonce: an upload sent again is one message.
            return await self._post(channel, {**kwargs, "files": files(attached)})
        except discord.HTTPException as error:
            if error.status != 413 and error.code != ENTITY_TOO_LARGE:
                raise
            log.warning("discord refused the files of a message in %s as too large", channel.id)
        sent = await self._post(channel, kwargs)
        refused = not_attached_note([(a, "Discord refused it as too large") for a, _ in attached])
        note: dict[str, Any] = {
            "content": neutralise(refused),
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        if key is not None:
            note["nonce"] = nonce_for(key, NOTE_PART)
        await self._post(channel, note)
        return sent

    async def _edit(self, ref: SentRef, message: OutboundMessage) -> SentRef:
        parts = render(message)
        if len(parts) > 1:
            log.warning(
                "edit of %s is longer than one Discord message; keeping the first part", ref.message_id
            )
        part = Part(content=parts[0].content, embed=parts[-1].embed, buttons=parts[-1].buttons)
        kwargs = send_kwargs(part, allowed_mentions(message))
        kwargs.setdefault("embed", None)
        kwargs.setdefault("view", None)
        via = self.interactions.follow_up(ref.message_id)
        if via is not None:
            # Posted as a command's follow-up (no access to the channel): edit it the same way.
            await bounded(
                via.interaction.followup.edit_message(int(ref.message_id), **kwargs), self.send_timeout
            )
            return ref
        target = ref.thread_id or ref.channel_id
        self._check_access(target)
        partial = self.client.get_partial_messageable(int(target)).get_partial_message(int(ref.message_id))
        await bounded(partial.edit(**kwargs), self.send_timeout)  # an edit is harmless to repeat
        return ref

    def _check_access(self, channel_id: str) -> None:
        """Refuse early where the bot's cached permissions say it cannot post: a request that would
        get 403 only counts toward Discord's invalid-request ban."""
        channel = self.client.get_channel(int(channel_id))
        guild = getattr(channel, "guild", None)
        if channel is None or guild is None or guild.me is None:
            return
        permissions = channel.permissions_for(guild.me)  # type: ignore[union-attr]  # guild channels only here
        can_send = (
            permissions.send_messages_in_threads
            if isinstance(channel, discord.Thread)
            else permissions.send_messages
        )
        if not (permissions.view_channel and can_send):
            raise DeliveryError(
                f"no permission to post in {channel_id}", permanent=True, code=DeliveryFailure.NO_ACCESS
            )

    async def _post(self, channel: discord.PartialMessageable, kwargs: dict[str, Any]) -> discord.Message:
        """One message posted, within `send_timeout`. With its key's nonce a timeout is sent again by
        the core; without one (no key: discord.py makes up a nonce per request) it is in doubt."""
        try:
            return await bounded(channel.send(**kwargs), self.send_timeout)
        except TimeoutError:
            if "nonce" in kwargs:
                raise
            raise in_doubt(f"a message without a key in {channel.id}", self.send_timeout) from None


def _reference(message: MessageReceived, conversation: Conversation) -> discord.MessageReference:
    """A reply to a person's message, which still posts when that message was deleted."""
    return discord.MessageReference(
        message_id=int(message.message_id), channel_id=int(conversation.channel_id), fail_if_not_exists=False
    )


def _login_failure(error: Exception, *, api_base: str) -> RuntimeError:
    """What the operator is told of a failed login, as one line: what to check, or that nothing
    here is to blame. A connection error is an OSError, which the CLI would take for the web
    server's address, so it never leaves as one."""
    if isinstance(error, discord.LoginFailure):
        return RuntimeError("Discord rejected DISCORD_TOKEN (401); check the bot token")
    if isinstance(error, discord.HTTPException):
        if error.status >= 500 or error.status == 429:
            # Discord's own trouble (an outage, a rate limit): nothing here is misconfigured.
            return RuntimeError(
                f"Discord answered {error.status} to the login; it may be down, try again later"
            )
        return RuntimeError(
            f"Discord at {api_base} answered {error.status} to the login; check DISCORD_API_BASE"
        )
    if _unreachable(error):
        return RuntimeError(
            f"cannot reach Discord at {api_base} ({type(error).__name__}); check DISCORD_API_BASE"
        )
    # This machine's trouble (no file descriptor left, no memory): no setting to check.
    return RuntimeError(f"the login to Discord failed here: {_os_trouble(error)}")


_NOT_REACHING: Final = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)


def _unreachable(error: BaseException) -> bool:
    """Whether the login failed for want of a connection to Discord (so DISCORD_API_BASE may be
    wrong), not for this machine's trouble: aiohttp wraps every OSError of a connect, EMFILE too."""
    if isinstance(error, aiohttp.ClientConnectorError):
        cause = error.os_error
        return (
            isinstance(cause, ConnectionError | TimeoutError | socket.gaierror)
            or cause.errno in _NOT_REACHING
        )
    return isinstance(error, ConnectionError | TimeoutError | aiohttp.ServerDisconnectedError)


def _os_trouble(error: BaseException) -> str:
    cause = error.os_error if isinstance(error, aiohttp.ClientConnectorError) else error
    return getattr(cause, "strerror", None) or f"{type(cause).__name__}: {cause}"
