"""Reconnecting soon after Discord comes back. discord.py waits a random time of up to 2^n seconds
between tries (n grows to 10): after a 30-second outage its next try can be minutes away, and
meanwhile nothing is heard and the session may expire, which loses what it held. Capped here."""

from __future__ import annotations

import discord.client
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
