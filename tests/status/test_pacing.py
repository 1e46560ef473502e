"""Pacing: evenly spaced sends at the lane's rate, one message per second per Slack channel, and a
429's Retry-After stops the lane."""

from __future__ import annotations

from bot.broadcast.pacing import LanePolicy, Pacer, policy_for


class VirtualTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_a_lane_never_exceeds_its_rate() -> None:
    time = VirtualTime()
    pacer = Pacer(LanePolicy(rate=50), clock=time.clock, sleep=time.sleep)
    starts = []
    for index in range(200):
        await pacer.acquire(f"c{index}")
        starts.append(time.now)
    assert abs((starts[-1] - starts[0]) - 199 / 50) < 1e-6
    # In any one-second window at most 50 (+1 at the closed boundary) sends start.
    assert max(sum(1 for s in starts if a <= s < a + 1 - 1e-9) for a in starts) == 50


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
