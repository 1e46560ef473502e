"""A customer's files reach the team, and a team member's reach the customer, as the files
themselves where the platform they were shared on lets the bot fetch them: fetched when the relay
is sent, never more than the receiving platform takes (nor 8 MB a message), and the file's line
instead whenever one cannot go. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest

from bot.adapters.base import Capabilities, DeliveryError, DeliveryFailure
from bot.core.events import SharedFile
from tests.harness import STAFF_CHANNEL, BotHarness, button
from tests.tickets.conversation import escalated, tickets, transcript

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def takes_files(bot: BotHarness) -> BotHarness:
    """The team's platform takes files of up to 2 KB."""
    bot.adapter.capabilities = Capabilities(max_text=4000, max_file_bytes=2048)
    return bot


async def test_a_screenshot_reaches_the_team_as_the_file_itself(takes_files: BotHarness) -> None:
    bot = takes_files
    reply, _ = await escalated(bot)
    screenshot = bot.adapter.share("export error.png", PNG, "image/png")
    (relayed,) = await bot.customer_says("my export failed", thread=reply.ref.thread_id, files=[screenshot])
    assert relayed.channel_id == STAFF_CHANNEL
    message = relayed.delivery.message
    assert message.text == "**Casey:**\nmy export failed", "the file goes as itself, not as a line"
    (attached,) = message.attachments
    assert (attached.filename, attached.title, attached.read()) == (
        "export error.png",
        "export error.png",
        PNG,
    )
    line = f"📎 `export error.png` (1 KB, image/png): [open it]({screenshot.link})"
    assert (await transcript(bot, 1))[-1] == ("customer", f"my export failed\n{line}"), "kept as its line"


async def test_a_file_alone_reaches_the_team_under_the_customers_name(takes_files: BotHarness) -> None:
    bot = takes_files
    reply, _ = await escalated(bot)
    log = bot.adapter.share("export/../error.log", b"boom\n", "text/plain")
    (relayed,) = await bot.customer_says("", thread=reply.ref.thread_id, files=[log])
    assert relayed.delivery.message.text == "**Casey:**"
    (attached,) = relayed.delivery.message.attachments
    assert (attached.filename, attached.read()) == ("export_.._error.log", b"boom\n"), "a name, not a path"


async def test_a_file_larger_than_the_team_takes_goes_as_its_line_unfetched(takes_files: BotHarness) -> None:
    bot = takes_files
    reply, _ = await escalated(bot)
    video = bot.adapter.share("screen.mp4", b"\0" * 4096, "video/mp4")
    (relayed,) = await bot.customer_says("watch this", thread=reply.ref.thread_id, files=[video])
    assert relayed.delivery.message.text == (
        f"**Casey:**\nwatch this\n📎 `screen.mp4` (4 KB, video/mp4): [open it]({video.link})"
    )
    assert relayed.delivery.message.attachments == ()
    assert bot.adapter.fetched == [], "its size said it would not fit: nothing downloaded"


async def test_a_file_larger_than_it_said_stops_at_the_limit_and_goes_as_its_line(
    takes_files: BotHarness,
) -> None:
    bot = takes_files
    reply, _ = await escalated(bot)
    liar = bot.adapter.share("small.png", b"\0" * 4096, "image/png", size=100)
    (relayed,) = await bot.customer_says("", thread=reply.ref.thread_id, files=[liar])
    assert relayed.delivery.message.attachments == ()
    assert relayed.delivery.message.text.endswith(f"(100 bytes, image/png): [open it]({liar.link})")


async def test_the_files_of_one_message_share_what_the_team_takes(takes_files: BotHarness) -> None:
    bot = takes_files
    reply, _ = await escalated(bot)
    first, second = (bot.adapter.share(f"part{n}.png", PNG[:1200], "image/png") for n in (1, 2))
    (relayed,) = await bot.customer_says("two shots", thread=reply.ref.thread_id, files=[first, second])
    assert [a.filename for a in relayed.delivery.message.attachments] == ["part1.png"]
    assert relayed.delivery.message.text == (
        f"**Casey:**\ntwo shots\n📎 `part2.png` (1 KB, image/png): [open it]({second.link})"
    )


async def test_a_file_that_cannot_be_fetched_goes_as_its_line_and_is_logged(
    takes_files: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    bot = takes_files
    reply, _ = await escalated(bot)
    gone = SharedFile(
        name="gone.png", size=10, kind="image/png", link="https://files.example/g", ref="fake-file:x"
    )
    with caplog.at_level(logging.WARNING, logger="bot.core.relayed_files"):
        (relayed,) = await bot.customer_says("see this", thread=reply.ref.thread_id, files=[gone])
    assert relayed.delivery.message.text == (
        "**Casey:**\nsee this\n📎 `gone.png` (10 bytes, image/png): [open it](https://files.example/g)"
    )
    (record,) = [r for r in caplog.records if "not attached" in r.getMessage()]
    assert "no such file" in record.getMessage() and "fake-file" not in record.getMessage()
    assert getattr(record, "correlation_id", "-") != "-", "the log line names the event's correlation id"


async def test_where_the_team_cannot_take_files_each_goes_as_its_line(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    screenshot = bot.adapter.share("a.png", PNG, "image/png")
    (relayed,) = await bot.customer_says("", thread=reply.ref.thread_id, files=[screenshot])
    assert (
        relayed.delivery.message.text
        == f"**Casey:**\n📎 `a.png` (1 KB, image/png): [open it]({screenshot.link})"
    )
    assert bot.adapter.fetched == []


async def test_a_screenshot_with_the_words_that_ask_for_a_person_comes_with_the_staff_card(
    takes_files: BotHarness,
) -> None:
    bot = takes_files
    screenshot = bot.adapter.share("error.png", PNG, "image/png")
    sent = await bot.customer_says("can I talk to a human please", files=[screenshot])
    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert card.delivery.message.title == "Ticket #1: can I talk to a human please"
    (attached,) = card.delivery.message.attachments
    assert (attached.filename, attached.read()) == ("error.png", PNG)
    assert "📎" not in card.text, "the file itself, not its line"
    line = f"📎 `error.png` (1 KB, image/png): [open it]({screenshot.link})"
    assert (await transcript(bot, 1))[0] == ("customer", f"can I talk to a human please\n{line}")


async def test_a_file_with_the_words_that_ask_for_a_person_is_a_line_on_the_card_where_it_cannot_go(
    bot: BotHarness,
) -> None:
    screenshot = bot.adapter.share("error.png", PNG, "image/png")
    sent = await bot.customer_says("can I talk to a human please", files=[screenshot])
    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert card.delivery.message.attachments == ()
    line = f"📎 `error.png` (1 KB, image/png): [open it]({screenshot.link})"
    assert card.delivery.message.text == f"> Casey: can I talk to a human please\n{line}"


async def test_a_screenshot_with_a_question_the_bot_cannot_answer_comes_with_the_staff_card(
    takes_files: BotHarness,
) -> None:
    """Casey's question is nothing the knowledge base covers: the person it goes to sees her
    screenshot on the ticket's card, as when she asks for a person outright."""
    bot = takes_files
    screenshot = bot.adapter.share("error.png", PNG, "image/png")
    sent = await bot.customer_says("do you have an office in Lisbon where I can drop by?", files=[screenshot])
    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    (attached,) = card.delivery.message.attachments
    assert (attached.filename, attached.read()) == ("error.png", PNG)
    line = f"📎 `error.png` (1 KB, image/png): [open it]({screenshot.link})"
    assert (await transcript(bot, 1))[0][1].endswith(line)


async def test_a_screenshot_with_a_question_asked_again_reaches_the_open_ticket(
    takes_files: BotHarness,
) -> None:
    """Casey asks again, with a screenshot this time, while the ticket for her question is open: the
    screenshot reaches that ticket's thread with her words."""
    bot = takes_files
    (reply,) = await bot.customer_says("my csv export failed")
    await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    bot.clock.advance(minutes=3)
    screenshot = bot.adapter.share("error.png", PNG, "image/png")
    sent = await bot.customer_says("my CSV export failed", files=[screenshot])
    (relayed,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert relayed.text == "**Casey:**\nmy CSV export failed"
    (attached,) = relayed.delivery.message.attachments
    assert (attached.filename, attached.read()) == ("error.png", PNG)


# -- the team's files, to the customer ------------------------------------------------------

NOT_ATTACHED_FOR_CUSTOMER = "could not be attached here; reply if you need it sent another way"


async def test_a_team_members_screenshot_in_the_staff_thread_reaches_the_customer_as_the_file_itself(
    takes_files: BotHarness,
) -> None:
    bot = takes_files
    _, card = await escalated(bot)
    screenshot = bot.adapter.share("where to click.png", PNG, "image/png")
    sent = await bot.says(
        bot.staff, "click here", conversation=bot.staff_room, thread=card.ref.message_id, files=[screenshot]
    )
    (to_customer,) = sent
    assert to_customer.channel_id == "community", "and nothing tells the team it stayed with them"
    message = to_customer.delivery.message
    assert message.text == "**Sam (staff) (support team):**\nclick here", "the file itself, not a line"
    (attached,) = message.attachments
    assert (attached.filename, attached.read()) == ("where to click.png", PNG)
    line = f"📎 `where to click.png` (1 KB, image/png): [open it]({screenshot.link})"
    assert (await transcript(bot, 1))[-1] == ("staff", f"click here\n{line}"), "kept as its line"

    log = bot.adapter.share("fixed.log", b"ok\n", "text/plain")
    (alone,) = await bot.says(
        bot.staff, "", conversation=bot.staff_room, thread=card.ref.message_id, files=[log]
    )
    assert alone.channel_id == "community"
    assert alone.delivery.message.text == "**Sam (staff) (support team):**"
    assert [a.read() for a in alone.delivery.message.attachments] == [b"ok\n"]


async def test_a_team_members_file_too_large_or_gone_reaches_the_customer_as_its_name(
    takes_files: BotHarness,
) -> None:
    bot = takes_files
    _, card = await escalated(bot)
    video = bot.adapter.share("how-to.mp4", b"\0" * 4096, "video/mp4")
    gone = SharedFile(
        name="gone.png", size=10, kind="image/png", link="https://team.example/g", ref="fake-file:x"
    )
    to_customer, _ = await bot.says(  # and Sam is told (see the next test)
        bot.staff, "watch this", conversation=bot.staff_room, thread=card.ref.message_id, files=[video, gone]
    )
    assert to_customer.channel_id == "community"
    assert to_customer.delivery.message.text == (
        "**Sam (staff) (support team):**\nwatch this\n"
        f"📎 `how-to.mp4` (4 KB, video/mp4): {NOT_ATTACHED_FOR_CUSTOMER}\n"
        f"📎 `gone.png` (10 bytes, image/png): {NOT_ATTACHED_FOR_CUSTOMER}"
    ), "no link to the team's channel, which the customer cannot open"
    assert to_customer.delivery.message.attachments == ()
    assert bot.adapter.fetched == ["fake-file:x"], "the video's size said it would not fit"
    assert (await transcript(bot, 1))[-1][1].endswith("[open it](https://team.example/g)"), "the team's links"


async def test_a_team_members_file_that_cannot_reach_the_customer_is_no_answer(
    takes_files: BotHarness,
) -> None:
    bot = takes_files
    _, card = await escalated(bot)
    bot.adapter.fail_channel(
        "community", DeliveryError("Missing Access", permanent=True, code=DeliveryFailure.NO_ACCESS)
    )
    screenshot = bot.adapter.share("a.png", PNG, "image/png")
    sent = await bot.says(
        bot.staff, "see this", conversation=bot.staff_room, thread=card.ref.message_id, files=[screenshot]
    )
    assert [m.channel_id for m in sent] == [STAFF_CHANNEL]
    assert "I couldn't pass that on to Casey" in sent[0].text
    line = f"📎 `a.png` (1 KB, image/png): [open it]({screenshot.link})"
    assert (await transcript(bot, 1))[-1] == ("staff_unsent", f"see this\n{line}")
    (ticket,) = await tickets(bot)
    assert ticket.first_responded_at is None


async def test_a_team_members_screenshot_in_the_customers_thread_reaches_the_staff_thread_as_the_file(
    takes_files: BotHarness,
) -> None:
    bot = takes_files
    reply, _ = await escalated(bot)
    screenshot = bot.adapter.share("where to click.png", PNG, "image/png")
    (copy,) = await bot.says(bot.staff, "click here", thread=reply.ref.thread_id, files=[screenshot])
    assert copy.channel_id == STAFF_CHANNEL
    assert copy.delivery.message.text == "**Sam (staff) (support team):**\nclick here"
    assert [a.read() for a in copy.delivery.message.attachments] == [PNG], "as the customer's files go"


async def test_a_team_member_hears_once_which_of_their_files_did_not_reach_the_customer_and_why(
    takes_files: BotHarness,
) -> None:
    """Sam's video is too large for Casey's platform and his screenshot is gone: Casey reads their
    names, and Sam, in the ticket's thread where he wrote, one line saying which and why."""
    bot = takes_files
    _, card = await escalated(bot)
    video = bot.adapter.share("how-to.mp4", b"\0" * 4096, "video/mp4")
    gone = SharedFile(
        name="gone.png", size=10, kind="image/png", link="https://team.example/g", ref="fake-file:x"
    )
    sent = await bot.says(
        bot.staff, "watch this", conversation=bot.staff_room, thread=card.ref.message_id, files=[video, gone]
    )
    assert [(m.channel_id, m.ref.thread_id) for m in sent] == [
        ("community", sent[0].ref.thread_id),
        (STAFF_CHANNEL, card.ref.message_id),
    ]
    assert sent[1].text == (
        "Not sent to Casey as files (they see only the names): `how-to.mp4` (4 KB, over 2 KB);"
        " `gone.png` (the platform has no such file)"
    )
    assert "\n" not in sent[1].text
