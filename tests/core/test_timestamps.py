"""A moment in a neutral reply is shown by each platform in the reader's own time zone: Discord's
`<t:…>`, Slack's `<!date^…>`, and UTC words in the terminal and wherever markup is not rendered."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from bot.adapters import console
from bot.adapters.discord import translate as discord
from bot.adapters.slack import translate as slack
from bot.core.events import (
    Conversation,
    Delivery,
    Field,
    OutboundMessage,
    Platform,
    TimeStyle,
    timestamp,
)

NINE_FIVE = datetime(2026, 11, 24, 9, 5, tzinfo=UTC)
UNIX = 1795511100


def _update_message() -> OutboundMessage:
    at = timestamp(NINE_FIVE, TimeStyle.DATETIME, fallback="09:05 UTC")
    ago = timestamp(NINE_FIVE, TimeStyle.RELATIVE, fallback="3 minutes ago")
    return OutboundMessage(
        title=f"Update at {at}",
        text=f"Latest update, {at} ({ago}): rolling back",
        fields=(Field(name=f"Since {at}", value=f"began {at}"),),
        footer=f"as of {at}",
    )


def test_slack_shows_the_readers_local_time_with_utc_as_fallback() -> None:
    (part,) = slack.render(_update_message())
    blocks = str(part.blocks)
    token = f"<!date^{UNIX}^{{date_short_pretty}} {{time}}|09:05 UTC>"
    # How long ago is the same in every zone: words as of sending (Slack documents no `<!date>`
    # token for it).
    assert f"Latest update, {token} (3 minutes ago): rolling back" in blocks
    assert "{ago}" not in blocks
    assert f"began {token}" in blocks and f"as of {token}" in blocks
    header = part.blocks[0]
    assert header["type"] == "header" and header["text"]["text"] == "Update at 09:05 UTC", "headers are plain"
    assert "Since 09:05 UTC" in blocks


def test_discord_shows_the_readers_local_time_where_discord_renders_it() -> None:
    (part,) = discord.render(_update_message())
    assert part.embed is not None
    assert part.embed.description == f"Latest update, <t:{UNIX}:f> (<t:{UNIX}:R>): rolling back"
    assert part.embed.fields[0].value == f"began <t:{UNIX}:f>"
    # Titles, field names and footers show tokens as typed: the UTC words instead.
    assert part.embed.title == "Update at 09:05 UTC"
    assert part.embed.fields[0].name == "Since 09:05 UTC"
    assert part.embed.footer.text == "as of 09:05 UTC"


def test_the_console_and_plain_text_show_utc_words() -> None:
    message = _update_message()
    delivery = Delivery(
        conversation=Conversation(platform=Platform.CONSOLE, workspace_id="", channel_id="general"),
        message=message,
    )
    text, _ = console.render(delivery, staff_channel_id="staff", button_numbers=itertools.count(1))
    assert "Latest update, 09:05 UTC (3 minutes ago): rolling back" in text
    assert "\ue000" not in text and "<t:" not in text and "<!date" not in text
    assert "Latest update, 09:05 UTC (3 minutes ago)" in message.plain_text


def test_a_forged_marker_in_peoples_text_can_become_a_date_but_never_a_ping() -> None:
    forged = "\ue000123:f:<!channel> @everyone\ue001 and \ue000x:f:y\ue001"
    message = OutboundMessage(text=f"A customer wrote: {forged}")

    (slack_part,) = slack.render(message)
    assert "<!channel>" not in str(slack_part.blocks) and "<!channel>" not in slack_part.text
    assert "<!date^123^{date_short_pretty} {time}|&lt;!channel&gt; @everyone>" in str(slack_part.blocks)
    (discord_part,) = discord.render(message)
    assert discord_part.embed is None and "<t:123:f>" in discord_part.content
    assert "@everyone" not in discord_part.content


def test_fallback_text_cannot_close_the_marker_early() -> None:
    marker = timestamp(NINE_FIVE, TimeStyle.DATETIME, fallback="09:05\ue001 UTC\ue000")
    assert OutboundMessage(text=marker).plain_text == "09:05 UTC"
