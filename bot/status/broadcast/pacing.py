"""Pacing: space requests to a rate, per lane (Discord's global bucket, a Slack workspace) and per
channel, and stop a lane for as long as a 429's Retry-After says.

A lane runs at most `rate` sends per second, evenly spaced (no bursts, so a limit enforced over any
one-second window is never crossed). Times are monotonic seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LanePolicy:
    """`rate` None = unlimited (test platforms); `channel_interval` = seconds between two messages in
    one channel (Slack: 1 s)."""

    rate: float | None
    channel_interval: float = 0.0

    @property
    def exclusive(self) -> bool:
        """A limited lane is paced by one process at a time, so the limit holds across processes."""
        return self.rate is not None


def policy_for(lane: str, *, discord_rate: float, slack_workspace_rate: float) -> LanePolicy:
    if lane == "discord":
        return LanePolicy(rate=discord_rate)
    if lane.startswith("slack:"):
        return LanePolicy(rate=slack_workspace_rate, channel_interval=1.0)
    return LanePolicy(rate=None)


class Pacer:
    """One lane's spacing. `acquire()` returns when the next send may start."""

    def __init__(
        self,
        policy: LanePolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._blocked_until = 0.0
        self._channels: dict[str, float] = {}
        self._lock = asyncio.Lock()

    def block(self, seconds: float) -> None:
        """A 429 said wait: nothing in this lane starts before then."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def channel_wait(self, channel: str) -> float:
        """Seconds until `channel` may get another message (0 = now)."""
        return max(0.0, self._channels.get(channel, 0.0) - self._clock())

    async def acquire(self, channel: str) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                start = max(now, self._next, self._blocked_until)
                if start <= now:
                    break
                await self._sleep(start - now)
            if self.policy.rate is not None:
                # The next start is a full interval after this one, however late this one was (a busy
                # loop woke us late): catching up on the old schedule would put two starts closer than
                # an interval and let a one-second window hold rate + 1 (Discord: 51 at 50/s).
                # (+1 µs: float rounding must not put the 51st start exactly one second after the first.)
                self._next = now + 1.0 / self.policy.rate + 1e-6
            if self.policy.channel_interval:
                self._channels[channel] = now + self.policy.channel_interval
