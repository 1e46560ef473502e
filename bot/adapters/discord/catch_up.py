"""Catching up after a restart: what people wrote in the channels the bot serves while no process
was connected. A new process starts a new gateway session, and Discord never delivers what it
dispatched to the old one (only a RESUME of the same session replays it); the channels' history
still has it. Messages already handled are dropped by the dispatcher's claim on their id, so
reading some again costs a lookup, not a second answer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta

import aiohttp
import discord

log = logging.getLogger(__name__)

CATCH_UP = timedelta(minutes=10)
"""How far back a starting process reads: longer than a crash and a restart take, far shorter than
the dedupe claims are kept (DEDUPE_RETENTION_HOURS), so nothing answered before is answered again."""

MAX_MESSAGES = 200
"""Per channel: a burst larger than this while the bot was down is read up to here."""


async def missed_messages(
    client: discord.Client, channel_ids: Iterable[str], *, since: datetime
) -> AsyncIterator[discord.Message]:
    """The messages posted after `since` in the channels of `channel_ids` this client can see (a
    shard sees only its own guilds' channels), oldest first."""
    for channel_id in sorted(channel_ids):
        channel = client.get_channel(int(channel_id))
        if not isinstance(channel, discord.TextChannel):
            continue
        try:
            async for message in channel.history(after=since, limit=MAX_MESSAGES, oldest_first=True):
                yield message
        except (discord.HTTPException, aiohttp.ClientError, OSError) as error:
            log.warning("discord: could not read #%s's recent messages to catch up: %s", channel.name, error)
