"""Threads and ticket rooms on Discord.

Threads follow Slack's model: a conversation's `thread_id` is the thread's channel id, and a thread
started on a message has that message's id, so "reply in the thread of message M" posts in channel
M, creating the thread on M first when it does not exist yet. A delivery with `new_thread` (a
ticket's own room) instead opens a private thread in the channel with its invitees (public, then a
forum post, where the server refuses) and lands there.

Every request is bounded (`bounded`). Creating a thread is not safe to repeat, so one that times out
is looked for among the channel's threads before anything else: found, it is the room; not found,
the delivery goes where it would have gone without a room, and no second room is tried for it.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Final

import discord

from bot.adapters.base import DeliveryError
from bot.adapters.discord.bounded import SEND_TIMEOUT, bounded, in_doubt
from bot.adapters.discord.translate import delivery_error, thread_name
from bot.core.events import Conversation, Delivery, MessageReceived, Platform

log = logging.getLogger(__name__)

# Discord's error codes for "no more threads here": too many active threads, or the thread type
# is not available in this server or channel.
THREAD_LIMIT_CODES = frozenset({160006, 50024, 50001, 50013, 20029})
THREAD_EXISTS = 160004
ARCHIVE_AFTER_MINUTES: Final = 10080  # a week, the longest Discord allows
MAX_REMEMBERED_ROOMS = 2000
CLOCK_SKEW: Final = timedelta(seconds=10)
"""How far Discord's clock (a thread id's time) may be behind ours, when a thread made by a request
that timed out is looked for."""


class Threads:
    """Opens threads through the adapter's client; remembers the rooms it opened for deliveries."""

    def __init__(
        self,
        client: Callable[[], discord.Client],
        *,
        forum_id: str | None = None,
        timeout: float = SEND_TIMEOUT,
    ) -> None:
        self._client = client
        self.forum_id = forum_id
        self.timeout = timeout
        # None: no room could be opened (or one is in doubt); a retry goes without one too.
        self._rooms: OrderedDict[str, Conversation | None] = OrderedDict()

    async def start_on_message(self, channel_id: int, message_id: int, name: str) -> None:
        """A public thread on a message; fine when it already exists."""
        try:
            await bounded(
                self._client().http.start_thread_with_message(
                    channel_id,
                    message_id,
                    name=name,
                    auto_archive_duration=ARCHIVE_AFTER_MINUTES,
                    rate_limit_per_user=None,
                ),
                self.timeout,
            )
        except discord.HTTPException as error:
            if error.code != THREAD_EXISTS:
                raise

    async def under_message(self, conversation: Conversation, event: MessageReceived) -> str | None:
        """The thread under a person's message (its id is the message id), or None when the bot may
        not create threads here, in which case the answer is a reply to the message."""
        try:
            await self.start_on_message(
                int(conversation.channel_id), int(event.message_id), thread_name(event.text)
            )
        except (discord.Forbidden, discord.NotFound):
            return None
        except discord.HTTPException as error:
            if error.code in THREAD_LIMIT_CODES:
                return None
            raise
        return event.message_id

    async def open_room(self, conversation: Conversation, delivery: Delivery) -> Conversation | None:
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
        room: Conversation | None
        try:
            room = await self.create(parent, delivery.new_thread.title, invite=invite)
        except DeliveryError as error:
            if not error.permanent:
                raise
            log.warning("no thread of its own for a ticket in %s: %s", parent.channel_id, error)
            room = None
        self._rooms[key] = room
        while len(self._rooms) > MAX_REMEMBERED_ROOMS:
            self._rooms.popitem(last=False)
        return room

    async def create(
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
            asked = discord.utils.utcnow()
            try:
                thread = await bounded(
                    parent.create_thread(
                        name=name, type=kind, invitable=False, auto_archive_duration=ARCHIVE_AFTER_MINUTES
                    ),
                    self.timeout,
                )
                break
            except TimeoutError:
                thread = await self._made_after_all(parent, name, since=asked)
                break
            except discord.HTTPException as error:
                if not isinstance(error, discord.Forbidden) and error.code not in THREAD_LIMIT_CODES:
                    raise delivery_error(error) from error
                log.info(
                    "cannot open a %s in %s (%s); trying the next option", kind.name, parent.id, error.code
                )
                last_error = error
        if thread is None and self.forum_id:
            forum = await self._channel(int(self.forum_id))
            asked = discord.utils.utcnow()
            try:
                created = await bounded(
                    forum.create_thread(
                        name=name, content=name, allowed_mentions=discord.AllowedMentions.none()
                    ),
                    self.timeout,
                )
                thread = created.thread
            except TimeoutError:
                thread = await self._made_after_all(forum, name, since=asked)
            except discord.HTTPException as error:
                last_error = error
        if thread is None:
            raise delivery_error(last_error or RuntimeError("no way to open a thread here"))
        for user_id in invite:
            try:
                await bounded(thread.add_user(discord.Object(id=int(user_id))), self.timeout)
            except (discord.HTTPException, TimeoutError) as error:
                log.warning("could not add %s to thread %s: %r", user_id, thread.id, error)
                if thread.type is discord.ChannelType.private_thread:
                    # Nobody could see a private thread they were not added to: use a public one.
                    with contextlib.suppress(discord.HTTPException, TimeoutError):
                        await bounded(thread.delete(), self.timeout)
                    return await self.create(conversation, name, private=False, invite=invite)
        return Conversation(
            platform=Platform.DISCORD,
            workspace_id=conversation.workspace_id,
            channel_id=str(thread.parent_id),
            thread_id=str(thread.id),
        )

    async def _made_after_all(self, parent: Any, name: str, *, since: datetime) -> discord.Thread:
        """The thread a creation that timed out made after all: the bot's, named `name`, in `parent`,
        made since it was asked for. The gateway announces a new thread (THREAD_CREATE) whatever
        became of the request's answer; else Discord's list of active threads. Not found, the
        creation is in doubt (it may still land): not tried again."""
        client = self._client()
        me = client.user.id if client.user else None
        since -= CLOCK_SKEW

        def ours(thread: discord.Thread) -> bool:
            return (
                thread.parent_id == parent.id
                and thread.name == name
                and thread.owner_id == me
                and discord.utils.snowflake_time(thread.id) >= since
            )

        guild: discord.Guild = parent.guild
        found = next(filter(ours, guild.threads), None)
        if found is None:
            try:
                found = next(filter(ours, await bounded(guild.active_threads(), self.timeout)), None)
            except (discord.HTTPException, TimeoutError) as error:
                log.warning("could not read the active threads of %s: %r", guild.id, error)
        if found is None:
            raise in_doubt(f"a new thread in {parent.id}", self.timeout)
        log.info("a thread whose creation timed out was made after all: %s", found.id)
        return found

    async def _channel(self, channel_id: int) -> Any:
        """A text or forum channel (from the cache, else fetched); `Any` because discord.py's
        channel union has no common `create_thread`."""
        client = self._client()
        return client.get_channel(channel_id) or await bounded(client.fetch_channel(channel_id), self.timeout)
