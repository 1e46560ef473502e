"""On Discord, with the real handlers, discord.py and the emulator: a ticket opened after the
message that asked, by "I still need help" under the bot's answer or by a team member's 🎫 on the
message, brings that message's files to the team's card as the files themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import SupportBot
from tests.adapters.discord.harness import (
    DiscordWorld,
    custom_id,
    posted,
    start_bot,
    stop_bot,
    ticket_thread,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


@pytest.fixture
async def bot(world: DiscordWorld, database, tmp_path: Path) -> AsyncIterator[SupportBot]:
    support_bot, _ = await start_bot(world, database, tmp_path)
    yield support_bot
    await stop_bot(support_bot)


async def test_still_needing_help_brings_the_questions_screenshot_to_the_team(
    world: DiscordWorld, bot: SupportBot
) -> None:
    """Casey's export failed, and she says so with a screenshot; the bot's answer does not help, and
    her "I still need help" puts the screenshot on the team's card."""
    emu = world.emu
    screenshot = emu.attachment(world.help, "export error.png", len(PNG), "image/png", content=PNG)
    question = await emu.user_says(world.casey, world.help, "my csv export failed", attachments=[screenshot])
    answer = await posted(emu, question["id"], "Retry from **Data → Exports**", button="I still need help")
    assert emu.downloads == [], "an answer from the knowledge base fetches nothing"

    await emu.click(world.casey, answer, custom_id(answer, "I still need help"))

    await ticket_thread(emu, world.help, 1)
    card = await posted(emu, world.staff.id, "Ticket #1")
    (file,) = [u for u in emu.uploads if u.message_id == card["id"]]
    assert (file.filename, file.data) == ("export error.png", PNG), "on the card itself"
    assert [status for _, status in emu.downloads] == [200], "fetched when the ticket opened"


async def test_a_team_members_ticket_reaction_brings_the_messages_file_to_the_team(
    world: DiscordWorld, bot: SupportBot
) -> None:
    """Robin shares a screenshot in #off-topic, where the bot does not answer; Sam's 🎫 on it opens
    Robin's ticket, and the screenshot is on its card."""
    emu = world.emu
    screenshot = emu.attachment(world.offtopic, "dashboard.png", len(PNG), "image/png", content=PNG)
    message = await emu.user_says(
        world.robin, world.offtopic, "the dashboard shows yesterday's numbers", attachments=[screenshot]
    )

    await emu.react(world.sam, message, "🎫")

    await ticket_thread(emu, world.offtopic, 1)
    card = await posted(emu, world.staff.id, "Ticket #1")
    (file,) = [u for u in emu.uploads if u.message_id == card["id"]]
    assert (file.filename, file.data) == ("dashboard.png", PNG), "on the card itself"


async def test_a_ticket_reaction_on_a_message_the_bot_never_saw_fetches_it_with_its_files(
    world: DiscordWorld, bot: SupportBot
) -> None:
    """Robin's message was sent before the bot connected, so it is not in the bot's cache: Sam's 🎫
    reads it from Discord, and its screenshot comes with the card all the same."""
    emu = world.emu
    screenshot = emu.attachment(world.offtopic, "dashboard.png", len(PNG), "image/png", content=PNG)
    message = emu._message(world.robin, world.offtopic, "the dashboard shows yesterday's numbers")
    message["attachments"] = [screenshot]  # stored, never sent on the gateway

    await emu.react(world.sam, message, "🎫")

    await emu.wait_for("GET", f"/channels/{world.offtopic.id}/messages/{message['id']}")
    card = await posted(emu, world.staff.id, "Ticket #1")
    (file,) = [u for u in emu.uploads if u.message_id == card["id"]]
    assert (file.filename, file.data) == ("dashboard.png", PNG)
