"""A customer sends the bot a file and no words: outside a ticket the bot says it cannot read files
and how a person can get it; in the DMs their ticket lives in, the file goes to the team. Runs on
SQLite and PostgreSQL."""

from __future__ import annotations

from bot.core.events import Conversation, Platform, SharedFile
from tests.fake_adapter import SentMessage
from tests.harness import STAFF_CHANNEL, BotHarness
from tests.tickets.conversation import tickets, transcript

SCREENSHOT = SharedFile(
    name="export-error.png", size=833_536, kind="image/png", link="https://files.example/F1/export-error.png"
)
LOG = SharedFile(name="export.log", size=812, kind="text/plain", link="https://files.example/F2/export.log")
SCREENSHOT_LINE = (
    "📎 `export-error.png` (814 KB, image/png): [open it](https://files.example/F1/export-error.png)"
)
DM = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D-C1", is_direct=True)


async def _dms(bot: BotHarness, text: str, *files: SharedFile) -> list[SentMessage]:
    return await bot.says(bot.customer, text, conversation=DM, files=files)


async def test_a_screenshot_alone_in_dms_is_acknowledged_and_the_way_to_a_person_explained(
    bot: BotHarness,
) -> None:
    (reply,) = await _dms(bot, "", SCREENSHOT)

    assert reply.channel_id == "D-C1"
    assert reply.text == (
        "I got your file `export-error.png`, but I can't read images or files, only words. Tell me"
        " what you need help with. If a person should see it, send it again with a few words that"
        ' say so, such as "talk to a person, my export fails", and I\'ll pass it on to the team.'
    )
    assert await tickets(bot) == [], "nothing was asked yet: no ticket"


async def test_several_files_alone_are_named_together(bot: BotHarness) -> None:
    (reply,) = await _dms(bot, "", SCREENSHOT, LOG)

    assert reply.text.startswith(
        "I got your files `export-error.png` and `export.log`, but I can't read images or files"
    )
    assert "If a person should see them, send them again" in reply.text


async def test_an_empty_message_with_no_file_is_still_called_empty(bot: BotHarness) -> None:
    (reply,) = await _dms(bot, "   ")

    assert reply.text == "I got an empty message. What can I help you with?"


async def test_the_screenshot_sent_again_with_words_asking_for_a_person_reaches_the_team(
    bot: BotHarness,
) -> None:
    """Casey does as the bot said: the team's card carries her file."""
    await _dms(bot, "", SCREENSHOT)

    sent = await _dms(bot, "talk to a person, my export fails", SCREENSHOT)

    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert SCREENSHOT_LINE in card.text
    (ticket,) = await tickets(bot)
    assert (await transcript(bot, ticket.number))[0] == (
        "customer",
        f"talk to a person, my export fails\n{SCREENSHOT_LINE}",
    )


async def test_a_screenshot_alone_in_the_dms_a_ticket_lives_in_reaches_its_staff_thread(
    bot: BotHarness,
) -> None:
    sent = await _dms(bot, "I need a human")
    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]

    (relayed,) = await _dms(bot, "", SCREENSHOT)

    assert (relayed.channel_id, relayed.ref.thread_id) == (STAFF_CHANNEL, card.ref.message_id)
    assert relayed.text == f"**Casey:**\n{SCREENSHOT_LINE}"
    assert (await transcript(bot, 1))[-1] == ("customer", SCREENSHOT_LINE)


async def test_many_files_alone_name_three_and_count_the_rest(bot: BotHarness) -> None:
    shots = [SharedFile(name=f"shot-{n}.png") for n in range(1, 6)]

    (reply,) = await _dms(bot, "", *shots)

    assert reply.text.startswith("I got your files `shot-1.png`, `shot-2.png`, `shot-3.png` and 2 more,")
