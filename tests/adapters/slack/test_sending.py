"""What the Slack adapter makes of Slack's refusals, as the core hears them: whose fault a failed
post is decides whether staff are asked to fix the bot's access."""

from __future__ import annotations

from bot.core.events import Actor, Conversation, Delivery, OutboundMessage, Platform
from tests.adapters.slack.harness import COMMUNITY, OTHER, STAFF_CHANNEL, SlackBot
from tests.emulators.slack import SlackEmulator


async def test_a_private_reply_to_someone_who_left_the_channel_does_not_blame_the_channel(
    bot: SlackBot, slack: SlackEmulator
) -> None:
    slack.leave(OTHER, COMMUNITY)  # Robin asked, then left #community before the answer came
    robin = Actor(platform=Platform.SLACK, id=OTHER, display_name="Robin")
    community = Conversation(platform=Platform.SLACK, workspace_id=slack.team_id, channel_id=COMMUNITY)
    private = OutboundMessage(text="That ticket is someone else's.", private_to=robin)

    sent = await bot.bot.dispatcher.outbound.send(Delivery(conversation=community, message=private))

    assert sent is None
    (refused,) = slack.calls_to("chat.postEphemeral")
    assert refused.response["error"] == "user_not_in_channel"
    told = [c.shown for c in slack.calls_to("chat.postMessage") if c.params["channel"] == STAFF_CHANNEL]
    assert told == [], "the bot may post in #community: staff have nothing to fix"
