"""Status subscriptions as people manage them: `/subscribe`, `/unsubscribe`, `/subscriptions`."""

from __future__ import annotations

from bot.core.events import Conversation, Platform
from tests.harness import BotHarness


def _channel(channel_id: str) -> Conversation:
    return Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id=channel_id)


async def test_staff_see_how_many_places_are_subscribed_in_plain_words(bot: BotHarness) -> None:
    (none,) = await bot.staff_runs("/subscriptions")
    assert none.text == "No active subscriptions."

    await bot.staff_runs("/subscribe", conversation=_channel("announcements"))
    (one,) = await bot.staff_runs("/subscriptions")
    assert one.text == "1 active subscription: console 1"

    await bot.staff_runs("/subscribe api", conversation=_channel("engineering"))
    (two,) = await bot.staff_runs("/subscriptions")
    assert two.text == "2 active subscriptions: console 2"


async def test_unsubscribing_where_nothing_was_subscribed_says_where_and_how_to_start(
    bot: BotHarness,
) -> None:
    (in_channel,) = await bot.staff_runs("/unsubscribe", conversation=_channel("announcements"))
    assert in_channel.text == "This channel wasn't subscribed. `/subscribe` starts status updates here."
    dm = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D-C1", is_direct=True)
    (in_dm,) = await bot.customer_runs("/unsubscribe", conversation=dm)
    assert in_dm.text == "Your DMs weren't subscribed. `/subscribe` starts status updates here."
