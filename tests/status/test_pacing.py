"""Pacing: evenly spaced sends at the lane's rate, one message per second per Slack channel, and a
429's Retry-After stops the lane."""

from __future__ import annotations

from bot.status.broadcast.pacing import LanePolicy, Pacer, policy_for


class VirtualTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def _starts(time: VirtualTime, sends: int, *, rate: float = 50) -> list[float]:
    """When each of `sends` back-to-back sends in one lane may start."""
    pacer = Pacer(LanePolicy(rate=rate), clock=time.clock, sleep=time.sleep)
    starts = []
    for index in range(sends):
        await pacer.acquire(f"c{index}")
        starts.append(time.now)
    return starts


async def test_a_lane_never_exceeds_its_rate() -> None:
    starts = await _starts(VirtualTime(), 200)
    assert abs((starts[-1] - starts[0]) - 199 / 50) < 1e-3  # full speed (1 µs of margin per send)
    # In any one-second window at most 50 sends start.
    assert max(sum(1 for s in starts if a <= s < a + 1) for a in starts) == 50


async def test_a_late_wake_up_never_lets_51_start_in_one_second() -> None:
    """Discord's global limit is 50/s, and DISCORD_GLOBAL_RATE may be 50: one late wake-up of the
    event loop must not let the pacer catch up by starting two sends closer than 20 ms."""

    class LateOnce(VirtualTime):
        late = True

        async def sleep(self, seconds: float) -> None:
            self.now += seconds + (0.019 if self.late else 0.0)
            self.late = False

    starts = await _starts(LateOnce(), 120)
    assert max(sum(1 for s in starts if a <= s < a + 1) for a in starts) <= 50


async def test_retry_after_blocks_the_whole_lane() -> None:
    time = VirtualTime()
    pacer = Pacer(LanePolicy(rate=10), clock=time.clock, sleep=time.sleep)
    await pacer.acquire("a")
    pacer.block(2.5)
    await pacer.acquire("b")
    assert time.now == 102.5


async def test_slack_channels_get_one_message_per_second() -> None:
    time = VirtualTime()
    policy = policy_for("slack:T1", discord_rate=48, slack_workspace_rate=5)
    assert policy == LanePolicy(rate=5, channel_interval=1.0)
    pacer = Pacer(policy, clock=time.clock, sleep=time.sleep)
    await pacer.acquire("C1")
    assert pacer.channel_wait("C1") == 1.0
    assert pacer.channel_wait("C2") == 0.0
    assert policy_for("discord", discord_rate=48, slack_workspace_rate=5) == LanePolicy(rate=48)
