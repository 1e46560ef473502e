"""Reading reactions, which need the client: where the bot serves people, who reacted, and the text
and files of the message they reacted to (from the cache, or fetched when the emoji starts
something)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import discord

from bot.adapters.discord.translate import (
    actor_from_user,
    conversation_from,
    emoji_name,
    files_of,
    reaction_to_event,
)
from bot.core.events import Actor, Platform, ReactionAdded, SharedFile

log = logging.getLogger(__name__)

# Emoji that start something (a staff 🎫 opens a ticket): handled in every channel, and the message
# (its text and files) is fetched when not cached. Reactions carry neither and a fetch costs a request.
FETCH_TEXT_FOR = frozenset({"ticket"})


def serves(client: discord.Client, channel: Any, listen_channel_ids: Collection[str]) -> bool:
    """The bot serves people here: a community or staff channel, a thread in one or of its own, a DM."""
    user = client.user
    if isinstance(channel, discord.Thread):
        return str(channel.parent_id) in listen_channel_ids or (
            user is not None and channel.owner_id == user.id
        )
    if isinstance(channel, discord.DMChannel):
        return True
    return channel is not None and str(channel.id) in listen_channel_ids


async def read_reaction(
    client: discord.Client, payload: discord.RawReactionActionEvent, *, listen_channel_ids: Collection[str]
) -> ReactionAdded | None:
    """The reaction as an event, or None for the bot's own, other bots', and reactions where the
    bot does not serve people (except the emoji in FETCH_TEXT_FOR, which count everywhere)."""
    user = client.user
    if user is None or payload.user_id == user.id:
        return None
    if payload.member is not None and payload.member.bot:
        return None
    channel: Any = client.get_channel(payload.channel_id)
    if channel is None and payload.guild_id is None:
        channel = client.get_partial_messageable(payload.channel_id, type=discord.ChannelType.private)
    if channel is None:
        return None
    # A staff member's 🎫 may turn any message into a ticket, so that emoji counts everywhere;
    # other reactions only where the bot serves people.
    anywhere = emoji_name(payload.emoji) in FETCH_TEXT_FOR
    if not (anywhere or serves(client, channel, listen_channel_ids) or payload.guild_id is None):
        return None
    who: discord.abc.User | None = payload.member or client.get_user(payload.user_id)
    actor = (
        actor_from_user(who) if who is not None else Actor(platform=Platform.DISCORD, id=str(payload.user_id))
    )
    text, files = await _message_read(client, channel, payload.message_id, emoji_name(payload.emoji))
    return reaction_to_event(
        actor=actor,
        conversation=conversation_from(channel, guild_id=payload.guild_id),
        emoji=payload.emoji,
        message_id=payload.message_id,
        message_author_id=payload.message_author_id,
        message_text=text,
        message_files=files,
        own_ids={user.id, client.application_id or user.id},
    )


async def _message_read(
    client: discord.Client, channel: Any, message_id: int, emoji: str
) -> tuple[str | None, tuple[SharedFile, ...]]:
    """The reacted message's text (None when not read) and files."""
    message = discord.utils.get(client.cached_messages, id=message_id)
    if message is None and emoji in FETCH_TEXT_FOR and hasattr(channel, "fetch_message"):
        try:
            message = await channel.fetch_message(message_id)
        except discord.HTTPException as error:
            log.warning("could not read message %s for a reaction: %s", message_id, error)
    if message is None:
        return None, ()
    return str(message.content), files_of(message)
