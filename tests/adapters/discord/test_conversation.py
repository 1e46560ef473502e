"""The whole support conversation on Discord, with the real handlers, discord.py and the emulator:
question → knowledge-base answer → "I still need help" → escalation into a private ticket thread →
claim → relay both ways → close with the customer's confirmation → rating; asking for a person in
#help; and a staff member's 🎫 turning any message into a ticket. Tickets run in private threads
with the customer invited, public ones where the server allows no private threads. The answers come
from the fixture knowledge base, tests/data/kb/support.yml."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.app import SupportBot
from storage.models import Ticket
from tests.adapters.discord.harness import (
    DiscordWorld,
    custom_id,
    labels,
    posted,
    private_answer,
    start_bot,
    stop_bot,
    text_of,
    ticket_thread,
)
from tests.emulators.discord import Channel


@pytest.fixture
async def bot(world: DiscordWorld, database, tmp_path: Path) -> AsyncIterator[SupportBot]:
    support_bot, _ = await start_bot(world, database, tmp_path)
    yield support_bot
    await stop_bot(support_bot)


async def tickets(bot: SupportBot) -> list[Ticket]:
    async with bot.database.session() as session:
        return list((await session.execute(select(Ticket).order_by(Ticket.number))).scalars())


async def test_the_whole_support_conversation(world: DiscordWorld, bot: SupportBot) -> None:
    emu = world.emu

    # Casey asks in #help; the knowledge base answers in a thread on her message, with buttons.
    question = await emu.user_says(world.casey, world.help, "my csv export failed")
    thread = question["id"]
    answer = await posted(emu, thread, "Retry from **Data → Exports**", button="I still need help")
    assert emu.channels[thread].parent_id == world.help.id
    assert labels(answer) == ["That solved it", "I still need help"]
    assert "An export failed" in text_of(answer)

    # It does not help: "I still need help" opens a ticket in a private thread of its own with Casey
    # in it, and the team is brought in on #staff.
    await emu.click(world.casey, answer, custom_id(answer, "I still need help"))
    room = await ticket_thread(emu, world.help, 1)
    assert room.name == "Ticket #1: my csv export failed"
    assert emu.channels[thread].type == 11, "the answer's thread stays public; the ticket moved out of it"
    assert room.type == 12, "a private thread: only Casey, the bot and thread moderators see it"
    await emu.wait_for("PUT", f"/channels/{room.id}/thread-members/{world.casey.id}")
    assert world.casey.id in emu.thread_members[room.id]
    await posted(emu, room.id, "ticket **#1**")
    card = await posted(emu, world.staff.id, "Ticket #1")
    assert card["content"] == f"<@&{world.staff_role}>", "on-call is pinged on purpose, and only them"
    assert "Casey" in text_of(card) and "my csv export failed" in text_of(card)
    assert "the customer said the answer didn't help" in text_of(card)

    # A second click on the answer's button adds to the same ticket rather than opening another.
    await emu.click(world.casey, answer, custom_id(answer, "I still need help"))
    await posted(emu, thread, "ticket **#1** is already open")

    # Casey adds detail in her ticket's thread: relayed to a staff thread on the card.
    await emu.user_says(world.casey, room, "it fails with error 500 since this morning")
    relayed = await posted(emu, card["id"], "error 500")
    assert "Casey:**" in relayed["content"]
    staff_thread = emu.channels[card["id"]]
    assert staff_thread.parent_id == world.staff.id

    # Sam claims with the card's button; Casey is told who has it.
    await emu.click(world.sam, card, custom_id(card, "Claim"))
    await posted(emu, room.id, "picked up ticket **#1**")

    # Sam answers in the staff thread; Casey reads it in her thread.
    await emu.user_says(world.sam, staff_thread, "We fixed the export worker, please try again")
    await posted(emu, room.id, "We fixed the export worker")

    # Sam closes with a slash command; Casey is asked to confirm.
    close = await emu.run_command(world.sam, world.staff, "ticket", "close", number=1, reason="worker fixed")
    confirm = await posted(emu, room.id, "Did this solve it?")
    ack = await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{close['token']}/messages/@original")
    assert "#1" in ack.content
    (ticket,) = await tickets(bot)
    assert ticket.state == "awaiting_confirmation"

    # Robin cannot answer for Casey (told privately); Casey confirms and rates.
    robin_click = await emu.click(world.robin, confirm, custom_id(confirm, "Yes"))
    refusal = await emu.wait_for("POST", f"/webhooks/{emu.application_id}/{robin_click['token']}")
    assert "Only Casey can answer that" in refusal.content and refusal.json["flags"] == 64
    await emu.click(world.casey, confirm, custom_id(confirm, "Yes"))
    rating = await posted(emu, room.id, button="4 ★")
    await posted(emu, card["id"], "confirmed ticket #1 is solved")
    rate = await emu.click(world.casey, rating, custom_id(rating, "4"))
    thanks = await emu.wait_for("POST", f"/webhooks/{emu.application_id}/{rate['token']}")
    assert "Thanks for rating ticket #1 4/5" in thanks.content

    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.closed_how, ticket.rating) == ("closed", "confirmed", 4)
    assert (ticket.requester_key, ticket.reason, ticket.component) == (
        f"discord:{world.casey.id}",
        "still_need_help",
        "exports",
    )


async def test_a_staff_ticket_reaction_opens_a_ticket_in_a_private_thread_with_the_author(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    # #off-topic is not a help channel: the bot does not answer there...
    message = await emu.user_says(world.robin, world.offtopic, "the dashboard shows yesterday's numbers")
    # ...but a customer's 🎫 is just an emoji, and a staff member's opens a ticket for Robin.
    await emu.react(world.casey, message, "🎫")
    await emu.react(world.sam, message, "🎫")

    room = await ticket_thread(emu, world.offtopic, 1)
    assert room.type == 12
    await emu.wait_for("PUT", f"/channels/{room.id}/thread-members/{world.robin.id}")
    assert emu.thread_members[room.id] == {emu.bot.id, world.robin.id}, "Robin, not Sam or Casey"
    reply = await posted(emu, room.id, "ticket **#1**")
    assert reply["channel_id"] == room.id
    assert message["id"] not in emu.channels, "no public thread on Robin's message"
    card = await posted(emu, world.staff.id, "Ticket #1")
    await bot.dispatcher.drain()
    (ticket,) = await tickets(bot)
    assert (ticket.requester_key, ticket.reason, ticket.summary) == (
        f"discord:{world.robin.id}",
        "reaction",
        "the dashboard shows yesterday's numbers",
    )
    assert (ticket.channel_id, ticket.thread_id) == (world.offtopic.id, room.id)

    # Robin answers in the private thread (off-topic is not a help channel, but the bot opened it).
    await emu.user_says(world.robin, room, "since Monday, on every report")
    await posted(emu, card["id"], "since Monday")


async def test_asking_for_a_person_in_help_opens_a_private_ticket_thread(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    question = await emu.user_says(world.casey, world.help, "I want to talk to a person about my invoice")

    room = await ticket_thread(emu, world.help, 1)
    assert room.type == 12 and room.name == "Ticket #1: I want to talk to a person about my invoice"
    await emu.wait_for("PUT", f"/channels/{room.id}/thread-members/{world.casey.id}")
    await posted(emu, room.id, "ticket **#1**")
    assert question["id"] not in emu.channels, "the ticket is not discussed in a public thread"
    card = await posted(emu, world.staff.id, "Ticket #1")

    # Casey's follow-up in her thread reaches the team; Sam's answer on the card reaches her thread.
    await emu.user_says(world.casey, room, "it was charged twice in November")
    relayed = await posted(emu, card["id"], "charged twice")
    assert "Casey:**" in relayed["content"]
    await emu.user_says(world.sam, emu.channels[card["id"]], "Refunded the second charge")
    await posted(emu, room.id, "Refunded the second charge")
    await bot.dispatcher.drain()
    (ticket,) = await tickets(bot)
    assert (ticket.channel_id, ticket.thread_id, ticket.state) == (world.help.id, room.id, "claimed")


async def test_where_private_threads_are_refused_the_ticket_thread_is_public(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    world.guild.private_threads = False
    await emu.user_says(world.casey, world.help, "I want to talk to a person about my invoice")

    room = await ticket_thread(emu, world.help, 1)
    attempts = [
        (c.json["type"], c.status) for c in emu.calls if c.path == f"/channels/{world.help.id}/threads"
    ]
    assert attempts == [(12, 403), (11, 201)], "private first, refused; then a public thread"
    assert room.type == 11
    await emu.wait_for("PUT", f"/channels/{room.id}/thread-members/{world.casey.id}")
    await posted(emu, room.id, "ticket **#1**")
    card = await posted(emu, world.staff.id, "Ticket #1")
    await emu.user_says(world.casey, room, "it was charged twice in November")
    await posted(emu, card["id"], "charged twice")


async def test_a_ticket_command_in_help_opens_a_private_ticket_thread(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    await emu.run_command(world.casey, world.help, "ticket", "new", summary="my export keeps failing")

    room = await ticket_thread(emu, world.help, 1)
    assert room.type == 12 and room.name == "Ticket #1: my export keeps failing"
    await emu.wait_for("PUT", f"/channels/{room.id}/thread-members/{world.casey.id}")
    await posted(emu, room.id, "ticket **#1**")
    card = await posted(emu, world.staff.id, "Ticket #1")
    await bot.dispatcher.drain()
    (ticket,) = await tickets(bot)
    assert (ticket.channel_id, ticket.thread_id) == (world.help.id, room.id)
    await emu.user_says(world.casey, room, "the file is 2 GB")
    await posted(emu, card["id"], "the file is 2 GB")


async def test_a_ticket_opened_with_ticket_new_is_opened_whatever_its_summary_says(
    world: DiscordWorld, bot: SupportBot
) -> None:
    """On Discord a customer picks "new" before typing what happened, so nothing in the summary is
    read as another of the words Slack users type after `/ticket` (a listing, help, a ticket number,
    a staff subcommand or a near-spelling of one)."""
    emu = world.emu
    summaries = ["list", "help", "12", "close 2 accounts for me", "notes missing"]
    for number, summary in enumerate(summaries, 1):
        await emu.run_command(world.casey, world.help, "ticket", "new", summary=summary)
        room = await ticket_thread(emu, world.help, number)
        assert room.name == f"Ticket #{number}: {summary}"
        await posted(emu, room.id, f"ticket **#{number}**")
    await bot.dispatcher.drain()
    assert [t.summary for t in await tickets(bot)] == summaries


async def test_a_ticket_command_where_the_bot_may_not_post_carries_on_in_dms(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    emu.deny_access(world.help)  # Send Messages and Create Threads taken away in #help
    run = await emu.run_command(world.casey, world.help, "ticket", "new", summary="my export keeps failing")

    dm = emu.dm_channel(world.casey)
    told = await posted(emu, dm.id, "ticket **#1**")
    assert text_of(told).startswith("I'm not allowed to post in the channel where you asked")
    await emu.wait_for("DELETE", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    card = await posted(emu, world.staff.id, "Ticket #1")

    # What Casey writes in her DMs reaches the team; Sam's answer under the card reaches her there.
    await emu.user_says(world.casey, dm, "it is the March invoices")
    await posted(emu, card["id"], "the March invoices")
    await emu.user_says(world.sam, emu.channels[card["id"]], "Which format, CSV or PDF?")
    await posted(emu, dm.id, "Which format, CSV or PDF?")
    await bot.dispatcher.drain()
    (ticket,) = await tickets(bot)
    assert (ticket.is_direct, ticket.channel_id) == (True, dm.id)


async def test_a_ticket_command_where_the_bot_may_not_post_nor_dm_is_answered_privately(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    emu.deny_access(world.help)
    emu.deny_access(emu.dm_channel(world.casey))  # Casey allows no DMs from server members
    run = await emu.run_command(world.casey, world.help, "ticket", "new", summary="my export keeps failing")

    # The "thinking…" placeholder, which only Casey sees, becomes what she needs to know.
    told = await private_answer(emu, run)
    assert "ticket **#1**" in told and "Privacy Settings" in told
    card = await posted(emu, world.staff.id, "Ticket #1")

    # Sam's answer cannot reach her: Sam is told so, not left thinking it did.
    assert "Casey" in text_of(card)
    await emu.run_command(world.sam, world.staff, "ticket", "reply", number=1, text="CSV or PDF?")
    note = await posted(emu, world.staff.id, "I couldn't pass that on to Casey")
    assert "they haven't seen it" in text_of(note)
    await bot.dispatcher.drain()
    (ticket,) = await tickets(bot)
    assert (ticket.is_direct, ticket.thread_id) == (False, None), "no home made of a private answer"


async def test_a_customers_files_in_their_ticket_thread_reach_the_team_as_lines_with_links(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    await emu.user_says(world.casey, world.help, "I want to talk to a person about my export")
    room = await ticket_thread(emu, world.help, 1)
    await posted(emu, room.id, "ticket **#1**")
    card = await posted(emu, world.staff.id, "Ticket #1")

    # Casey adds a screenshot to her words: the team sees both, the file as a line with its link.
    screenshot = emu.attachment(room, "export error.png", 833_536, "image/png")
    await emu.user_says(world.casey, room, "my export failed", attachments=[screenshot])
    relayed = await posted(emu, card["id"], "my export failed")
    assert f"📎 `export error.png` (814 KB, image/png): [open it]({screenshot['url']})" in relayed["content"]

    # A file alone, whatever it is called, arrives as its line, and pings nobody.
    log = emu.attachment(room, "@everyone **x**.log", 812, "text/plain")
    await emu.user_says(world.casey, room, "", attachments=[log])
    alone = await posted(emu, card["id"], ".log")
    assert alone["content"] == (
        f"**Casey:**\n📎 `@\u200beveryone ∗∗x∗∗.log` (812 bytes, text/plain): [open it]({log['url']})"
    )
    (call,) = [c for c in emu.calls if c.method == "POST" and c.content == alone["content"]]
    assert call.json["allowed_mentions"]["parse"] == [], "nobody is pinged"


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


async def escalated_with_staff_thread(world: DiscordWorld) -> tuple[Channel, dict[str, Any]]:
    """Casey asks for a person in #help: her ticket's room, and the card (no thread on it yet: the
    first message for the team opens it)."""
    await world.emu.user_says(world.casey, world.help, "I want to talk to a person about my export")
    room = await ticket_thread(world.emu, world.help, 1)
    card = await posted(world.emu, world.staff.id, "Ticket #1")
    return room, card


async def test_a_customers_screenshot_reaches_the_team_as_the_file_itself(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    room, card = await escalated_with_staff_thread(world)

    screenshot = emu.attachment(room, "export error.png", len(PNG), "image/png", content=PNG)
    await emu.user_says(world.casey, room, "my export failed", attachments=[screenshot])
    relayed = await posted(emu, card["id"], "my export failed")
    assert relayed["content"] == "**Casey:**\nmy export failed", "the file itself, not its line"
    (file,) = [u for u in emu.uploads if u.message_id == relayed["id"]]
    assert (file.filename, file.data) == ("export error.png", PNG)
    assert [status for _, status in emu.downloads] == [200], "fetched once, with no token"


async def test_a_customers_file_too_large_or_expired_goes_as_its_line(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    room, card = await escalated_with_staff_thread(world)

    # Larger than it said: the download stops at the 8 MB a relayed message may fetch.
    video = emu.attachment(room, "screen.mp4", 1000, "video/mp4", content=b"\0" * (8 * 1024 * 1024 + 1))
    await emu.user_says(world.casey, room, "a video", attachments=[video])
    big = await posted(emu, card["id"], "a video")
    assert big["content"].startswith("**Casey:**\na video\n📎 `screen.mp4` (1000 bytes, video/mp4): ")
    assert big["attachments"] == []

    # Expired before the bot fetched it: the line goes instead.
    log = emu.attachment(room, "export.log", 812, "text/plain", content=b"x" * 812)
    emu.expire_attachment(log)
    await emu.user_says(world.casey, room, "the log", attachments=[log])
    expired = await posted(emu, card["id"], "the log")
    assert expired["content"].startswith("**Casey:**\nthe log\n📎 `export.log` (812 bytes, text/plain): ")
    assert [status for _, status in emu.downloads] == [200, 404]


async def test_a_screenshot_with_the_words_that_ask_for_a_person_comes_with_the_card(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    screenshot = emu.attachment(world.help, "error.png", len(PNG), "image/png", content=PNG)
    await emu.user_says(world.casey, world.help, "I want to talk to a person", attachments=[screenshot])
    card = await posted(emu, world.staff.id, "Ticket #1")
    (file,) = [u for u in emu.uploads if u.message_id == card["id"]]
    assert (file.filename, file.data) == ("error.png", PNG), "on the card itself"


async def test_a_team_members_screenshot_in_the_staff_thread_reaches_the_customer_as_the_file_itself(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    room, card = await escalated_with_staff_thread(world)
    await emu.user_says(world.casey, room, "my export failed")
    await posted(emu, card["id"], "my export failed")
    staff_thread = emu.channels[card["id"]]

    screenshot = emu.attachment(staff_thread, "where to click.png", len(PNG), "image/png", content=PNG)
    await emu.user_says(world.sam, staff_thread, "click here", attachments=[screenshot])
    answer = await posted(emu, room.id, "click here")
    assert answer["content"] == "**Sam (support team):**\nclick here", "the file itself, not its line"
    (file,) = [u for u in emu.uploads if u.message_id == answer["id"]]
    assert (file.filename, file.data) == ("where to click.png", PNG)
    assert [status for _, status in emu.downloads] == [200]


async def test_a_ticket_reaction_on_the_bots_own_answer_opens_no_ticket(
    world: DiscordWorld, bot: SupportBot
) -> None:
    """Sam's 🎫 on the bot's answer to Casey: the bot is nobody's requester. Sam alone is told why,
    in his DMs, and how to open one for Casey instead."""
    emu = world.emu
    question = await emu.user_says(world.casey, world.help, "my csv export failed")
    answer = await posted(emu, question["id"], "Retry from **Data → Exports**")

    await emu.react(world.sam, answer, "🎫")

    told = await posted(emu, emu.dm_channel(world.sam).id, "my own message")
    assert "🎫" in text_of(told)
    await bot.dispatcher.drain()
    assert await tickets(bot) == []


async def test_a_second_ticket_reaction_on_a_tickets_first_message_names_that_ticket(
    world: DiscordWorld, bot: SupportBot
) -> None:
    """Sam's 🎫 on Robin's message opened ticket #1 in a private thread; Alex's 🎫 on the same message
    opens no second one (Robin's words live on in #1's thread): Alex alone is told which ticket it is."""
    emu = world.emu
    alex = emu.add_user("alex")
    emu.add_member(world.guild, alex, roles=[world.staff_role])
    message = await emu.user_says(world.robin, world.offtopic, "the dashboard shows yesterday's numbers")
    await emu.react(world.sam, message, "🎫")
    await ticket_thread(emu, world.offtopic, 1)
    await posted(emu, world.staff.id, "Ticket #1")
    await bot.dispatcher.drain()

    await emu.react(alex, message, "🎫")

    told = await posted(emu, emu.dm_channel(alex).id, "ticket #1")
    assert "I haven't opened another ticket" in text_of(told)
    await bot.dispatcher.drain()
    assert [t.number for t in await tickets(bot)] == [1]
