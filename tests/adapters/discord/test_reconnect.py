"""After Discord was unreachable for a while, the bot tries again within seconds, not minutes."""

from __future__ import annotations

import discord.client
import discord.shard

from bot.adapters.discord.reconnect import MAX_RECONNECT_DELAY, CappedBackoff
from tests.adapters.discord.harness import DiscordWorld, start_bot


def test_the_wait_between_tries_stops_growing_at_the_cap() -> None:
    backoff = CappedBackoff()
    waits = [backoff.delay() for _ in range(30)]  # discord.py's own reaches up to 1024 s by now
    assert max(waits) <= MAX_RECONNECT_DELAY
    assert min(waits) >= 0


async def test_a_started_bot_uses_the_capped_wait(world: DiscordWorld, database, tmp_path, bots) -> None:
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    assert discord.client.ExponentialBackoff is CappedBackoff
    assert discord.shard.ExponentialBackoff is CappedBackoff
