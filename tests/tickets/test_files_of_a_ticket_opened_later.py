"""A ticket opened after the message that asked, by "I still need help" under the bot's answer or by
a team member's 🎫 on the message, brings that message's files to the team as a direct escalation
does: fetched when the card is sent, each as its line where it cannot go. Runs on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.base import Capabilities
from bot.core.events import Conversation, MessageReceived, Platform, ReactionAdded
from storage.db import Database
from tests.harness import STAFF_CHANNEL, BotHarness, button, make_settings
from tests.tickets.conversation import transcript
from tests.tickets.test_answers import KB

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def takes_files(bot: BotHarness) -> BotHarness:
    """The team's platform takes files of up to 2 KB."""
    bot.adapter.capabilities = Capabilities(max_text=4000, max_file_bytes=2048)
    return bot


async def test_still_needing_help_brings_the_questions_screenshot_to_the_team(
    takes_files: BotHarness,
) -> None:
    """Casey's export failed, and she says so with a screenshot. The bot answers from the knowledge
    base; it does not help, and her "I still need help" puts the screenshot on the team's card."""
    bot = takes_files
    screenshot = bot.adapter.share("error.png", PNG, "image/png")
    (answer,) = await bot.customer_says("my csv export failed", files=[screenshot])
    assert bot.adapter.fetched == [], "an answer from the knowledge base fetches nothing"

    sent = await bot.click(bot.customer, button(answer, "I still need help"), on=answer)

    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert card.delivery.message.title == "Ticket #1: my csv export failed"
    (attached,) = card.delivery.message.attachments
    assert (attached.filename, attached.read()) == ("error.png", PNG)
    line = f"📎 `error.png` (1 KB, image/png): [open it]({screenshot.link})"
    assert (await transcript(bot, 1))[0] == ("customer", f"my csv export failed\n{line}")


async def test_a_file_gone_before_the_click_reaches_the_team_as_its_line(takes_files: BotHarness) -> None:
    """The customer deleted her screenshot before clicking: the card says what it was, and links it."""
    bot = takes_files
    screenshot = bot.adapter.share("error.png", PNG, "image/png")
    (answer,) = await bot.customer_says("my csv export failed", files=[screenshot])
    del bot.adapter.shared[screenshot.ref]

    sent = await bot.click(bot.customer, button(answer, "I still need help"), on=answer)

    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert card.delivery.message.attachments == ()
    line = f"📎 `error.png` (1 KB, image/png): [open it]({screenshot.link})"
    assert card.delivery.message.text == f"> Casey: my csv export failed\n{line}"


@pytest.fixture
async def two_invoice_articles(database: Database, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The bot with a knowledge base of two articles about invoices, which "my invoice" fits both."""
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "faq.yml").write_text(KB)
    settings = make_settings(tmp_path, kb_path=str(kb), matcher="lexical")
    harness = await BotHarness.create(settings, database=database)
    harness.adapter.capabilities = Capabilities(max_text=4000, max_file_bytes=2048)
    yield harness
    await harness.close()


async def test_none_of_the_offered_articles_brings_the_questions_file_to_the_team(
    two_invoice_articles: BotHarness,
) -> None:
    """A question the bot is unsure of: "None of these" opens the ticket, with the file asked with."""
    bot = two_invoice_articles
    invoice = bot.adapter.share("invoice.pdf", b"%PDF-1.7\n", "application/pdf")
    dm = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D-C1", is_direct=True)
    (choices,) = await bot.says(bot.customer, "my invoice", conversation=dm, files=[invoice])
    assert choices.text.startswith("I'm not quite sure what you mean")

    sent = await bot.click(bot.customer, button(choices, "No"), on=choices)  # "None of these" or "Not this"

    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    (attached,) = card.delivery.message.attachments
    assert (attached.filename, attached.read()) == ("invoice.pdf", b"%PDF-1.7\n")


async def test_a_team_members_ticket_reaction_brings_the_messages_file_to_the_team(
    takes_files: BotHarness,
) -> None:
    """Casey shares a screenshot in the channel, with words the bot leaves to people; Sam's 🎫 on it
    opens her ticket, and the screenshot is on its card."""
    bot = takes_files
    screenshot = bot.adapter.share("dashboard.png", PNG, "image/png")
    message = MessageReceived(
        actor=bot.customer,
        conversation=bot.community,
        text="the dashboard shows yesterday's numbers",
        message_id="u-dashboard",
        event_id="u-dashboard",
        files=(screenshot,),
    )
    await bot.send(message)

    sent = await bot.send(
        ReactionAdded(
            actor=bot.staff,
            conversation=message.conversation,
            emoji="ticket",
            message_id=message.message_id,
            message_author_id=message.actor.id,
            message_text=message.text,
            message_files=message.files,
            event_id="react-dashboard",
        )
    )

    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert card.delivery.message.title == "Ticket #1: the dashboard shows yesterday's numbers"
    (attached,) = card.delivery.message.attachments
    assert (attached.filename, attached.read()) == ("dashboard.png", PNG)
    line = f"📎 `dashboard.png` (1 KB, image/png): [open it]({screenshot.link})"
    assert (await transcript(bot, 1))[0] == ("customer", f"the dashboard shows yesterday's numbers\n{line}")
