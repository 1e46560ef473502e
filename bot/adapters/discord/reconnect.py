"""Reconnecting soon after Discord comes back, to the same session. discord.py waits a random time of
up to 2^n seconds between tries (n grows to 10): after a 30-second outage its next try can be
minutes away, and meanwhile nothing is heard and the session may expire, which loses what it held.
Capped here. And a sharded client's shard gives its session up after one failed RESUME: kept here.
Both are settings of discord.py's modules, for the whole process (one client a process)."""

from __future__ import annotations

import discord.client
import discord.gateway
import discord.shard
from discord.backoff import ExponentialBackoff

MAX_RECONNECT_DELAY = 5.0
"""Seconds, at most, between two tries; still random below that, so many bots do not retry at once.
A RESUME counts against no limit; discord.py identifies afresh only when the session is gone."""


class CappedBackoff(ExponentialBackoff[bool]):
    def delay(self) -> float:
        return min(float(super().delay()), MAX_RECONNECT_DELAY)


def cap_reconnect_delay() -> None:
    """discord.py builds its backoff from these module names (`Client.connect`, `Shard`): like the
    endpoints in `client.apply_endpoints`, a setting for the whole process."""
    # setattr: mypy sees these names as the generic class itself, not as a slot to fill.
    setattr(discord.client, "ExponentialBackoff", CappedBackoff)  # noqa: B010
    setattr(discord.shard, "ExponentialBackoff", CappedBackoff)  # noqa: B010


class ResumingShard(discord.shard.Shard):
    """discord.py's shard, but one that RESUMEs when it reconnects. Its own, once a RESUME attempt
    fails (the gateway unreachable: a refused connection, a 503), reconnects with a new IDENTIFY and
    drops the session, so what Discord dispatched to it meanwhile is never replayed; the plain client
    keeps resuming (bench.chaos --processes 2 lost every Discord message of a 30 s outage). A session
    Discord no longer knows is answered with op 9, on which discord.py identifies anew."""

    async def reconnect(self) -> None:
        await self.reidentify(discord.gateway.ReconnectWebSocket(self.id, resume=True))


def resume_shards_on_reconnect() -> None:
    """`AutoShardedClient` makes its shards from the module's `Shard`."""
    setattr(discord.shard, "Shard", ResumingShard)  # noqa: B010
