"""A customer's files in their ticket's thread reach the team: a line per file in the staff thread,
with its size and a link to open it, inert whatever the file is called. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from bot.adapters.discord import translate as discord
from bot.adapters.slack import translate as slack
from bot.core.events import SharedFile
from tests.harness import STAFF_CHANNEL, BotHarness
from tests.tickets.conversation import escalated, transcript

SCREENSHOT = SharedFile(
    name="export-error.png", size=833_536, kind="image/png", link="https://files.example/F1/export-error.png"
)
LOG = SharedFile(name="export.log", size=812, kind="text/plain", link="https://files.example/F2/export.log")

SCREENSHOT_LINE = (
    "📎 `export-error.png` (814 KB, image/png): [open it](https://files.example/F1/export-error.png)"
)
LOG_LINE = "📎 `export.log` (812 bytes, text/plain): [open it](https://files.example/F2/export.log)"


async def test_words_with_a_screenshot_reach_the_team_with_a_line_for_the_file(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    (relayed,) = await bot.customer_says("my export failed", thread=reply.ref.thread_id, files=[SCREENSHOT])
    assert relayed.channel_id == STAFF_CHANNEL
    assert relayed.delivery.message.text == f"**Casey:**\nmy export failed\n{SCREENSHOT_LINE}"
    assert (await transcript(bot, 1))[-1] == ("customer", f"my export failed\n{SCREENSHOT_LINE}")


async def test_files_sent_without_words_reach_the_team_as_their_lines_alone(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    (relayed,) = await bot.customer_says("", thread=reply.ref.thread_id, files=[SCREENSHOT, LOG])
    assert relayed.channel_id == STAFF_CHANNEL, "nothing tells the customer their file did not go"
    assert relayed.delivery.message.text == f"**Casey:**\n{SCREENSHOT_LINE}\n{LOG_LINE}"
    assert (await transcript(bot, 1))[-1] == ("customer", f"{SCREENSHOT_LINE}\n{LOG_LINE}")


async def test_a_message_with_neither_words_nor_files_tells_the_customer_nothing_went(
    bot: BotHarness,
) -> None:
    reply, _ = await escalated(bot)
    (answer,) = await bot.customer_says("", thread=reply.ref.thread_id)  # a sticker, say
    assert answer.channel_id != STAFF_CHANNEL
    assert answer.text == (
        "That message had nothing I can pass on to the team (no words or files). "
        "Please write what you need, or attach the file again."
    )
    assert await bot.says(bot.other_customer, "", thread=reply.ref.thread_id) == []


async def test_a_file_the_platform_gave_no_link_or_size_for_is_still_named(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    hidden = SharedFile(name="")  # Slack: a file hidden by the workspace's plan, with its id alone
    (relayed,) = await bot.customer_says("see attached", thread=reply.ref.thread_id, files=[hidden])
    assert relayed.delivery.message.text.endswith(
        "\n📎 `unnamed file`: no link came with it, ask the customer to send it another way"
    )


async def test_a_files_name_and_link_cannot_ping_format_or_link_anything(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    odd = SharedFile(
        name="@everyone <!channel> **x** `y` [z](https://evil.example)\n- .png",
        size=2048,
        kind="image/png\n**bold**",
        link="https://files.example/a (1)>.png",
    )
    (relayed,) = await bot.customer_says("", thread=reply.ref.thread_id, files=[odd])
    message = relayed.delivery.message
    assert message.mentions == ()
    name = "@everyone <!channel> ∗∗x∗∗ 'y' z (https://evil.example) - .png"
    assert (
        message.text == f"**Casey:**\n📎 `{name}` (2 KB): [open it](https://files.example/a%20%281%29%3E.png)"
    )

    (on_slack,) = slack.render(message)
    shown = json.dumps(on_slack.blocks, ensure_ascii=False)
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert "*x*" not in shown and "<https://evil" not in shown and "|z>" not in shown
    assert "<https://files.example/a%20%281%29%3E.png|open it>" in shown

    (on_discord,) = discord.render(message)
    assert "@everyone" not in on_discord.content and "**x**" not in on_discord.content
    assert "[z](" not in on_discord.content
    assert discord.allowed_mentions(message).everyone is False


async def test_a_team_members_file_the_bot_cannot_fetch_reaches_the_customer_as_its_name(
    bot: BotHarness,
) -> None:
    _, card = await escalated(bot)
    staff_thread = card.ref.message_id
    sent = await bot.says(
        bot.staff, "fixed file attached", conversation=bot.staff_room, thread=staff_thread, files=[LOG]
    )
    (to_customer,) = sent
    assert to_customer.channel_id != STAFF_CHANNEL, "the team is not told it stayed with them"
    assert to_customer.text == (
        "**Sam (staff) (support team):**\nfixed file attached\n📎 `export.log` (812 bytes, text/plain): "
        "could not be attached here; reply if you need it sent another way"
    ), "no link to the team's channel, which the customer cannot open"
    assert (await transcript(bot, 1))[-1] == ("staff", f"fixed file attached\n{LOG_LINE}")

    (alone,) = await bot.says(bot.staff, "", conversation=bot.staff_room, thread=staff_thread, files=[LOG])
    assert alone.channel_id != STAFF_CHANNEL, "a file alone goes too"
    assert alone.text.startswith("**Sam (staff) (support team):**\n📎 `export.log`")


async def test_a_team_members_file_in_the_customers_thread_is_listed_in_the_staff_thread(
    bot: BotHarness,
) -> None:
    reply, _ = await escalated(bot)
    (copy,) = await bot.says(bot.staff, "try this build", thread=reply.ref.thread_id, files=[LOG])
    assert copy.channel_id == STAFF_CHANNEL
    assert copy.text == f"**Sam (staff) (support team):**\ntry this build\n{LOG_LINE}"
