"""The whole support conversation on Discord, with the real handlers, discord.py and the emulator:
question → knowledge-base answer → "I still need help" → escalation → claim → relay both ways →
close with the customer's confirmation → rating; and a staff member's 🎫 turning any message into
a ticket. The answers come from the fixture knowledge base, tests/data/kb/support.yml."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.app import SupportBot
from storage.models import Ticket
from tests.adapters.discord_bot import DiscordWorld, start_bot, stop_bot
from tests.emulators.discord import DiscordEmulator


@pytest.fixture
async def bot(world: DiscordWorld, database, tmp_path: Path) -> AsyncIterator[SupportBot]:
    support_bot, _ = await start_bot(world, database, tmp_path)
    yield support_bot
    await stop_bot(support_bot)


def text_of(message: dict[str, Any]) -> str:
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(p for p in parts if p)


def custom_id(message: dict[str, Any], label_start: str) -> str:
    buttons = [c for row in message.get("components") or [] for c in row["components"]]
    for candidate in buttons:
        if candidate["label"].startswith(label_start):
            return candidate["custom_id"]
    raise AssertionError(f"no button {label_start!r} in {[b['label'] for b in buttons]}")


def labels(message: dict[str, Any]) -> list[str]:
    return [c["label"] for row in message.get("components") or [] for c in row["components"]]


async def posted(
    emu: DiscordEmulator, channel_id: str, containing: str = "", *, button: str | None = None
) -> dict[str, Any]:
    """Wait for the bot's next post in `channel_id` (a thread is a channel) with that text (and a
    button with that label), and return the message as stored."""

    def wanted(message: dict[str, Any]) -> bool:
        return containing in text_of(message) and (button is None or button in labels(message))

    await emu.wait_for("POST", f"/channels/{channel_id}/messages", where=lambda c: wanted(c.json))
    return next(m for m in reversed(emu.channel_messages(channel_id)) if wanted(m))


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

    # It does not help: "I still need help" opens a ticket, and the team is brought in on #staff.
    await emu.click(world.casey, answer, custom_id(answer, "I still need help"))
    await posted(emu, thread, "ticket **#1**")
    card = await posted(emu, world.staff.id, "Ticket #1")
    assert card["content"] == f"<@&{world.staff_role}>", "on-call is pinged on purpose, and only them"
    assert "Casey" in text_of(card) and "my csv export failed" in text_of(card)
    assert "the customer said the answer didn't help" in text_of(card)

    # Casey adds detail in the thread: relayed to a staff thread on the card.
    await emu.user_says(world.casey, emu.channels[thread], "it fails with error 500 since this morning")
    relayed = await posted(emu, card["id"], "error 500")
    assert "Casey:**" in relayed["content"]
    staff_thread = emu.channels[card["id"]]
    assert staff_thread.parent_id == world.staff.id

    # Sam claims with the card's button; Casey is told who has it.
    await emu.click(world.sam, card, custom_id(card, "Claim"))
    await posted(emu, thread, "picked up ticket **#1**")

    # Sam answers in the staff thread; Casey reads it in her thread.
    await emu.user_says(world.sam, staff_thread, "We fixed the export worker, please try again")
    await posted(emu, thread, "We fixed the export worker")

    # Sam closes with a slash command; Casey is asked to confirm.
    close = await emu.run_command(world.sam, world.staff, "ticket", "close", number=1, reason="worker fixed")
    confirm = await posted(emu, thread, "Did this solve it?")
    ack = await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{close['token']}/messages/@original")
    assert "#1" in ack.content
    (ticket,) = await tickets(bot)
    assert ticket.state == "awaiting_confirmation"

    # Robin cannot answer for Casey (told privately); Casey confirms and rates.
    robin_click = await emu.click(world.robin, confirm, custom_id(confirm, "Yes"))
    refusal = await emu.wait_for("POST", f"/webhooks/{emu.application_id}/{robin_click['token']}")
    assert "Only Casey can answer that" in refusal.content and refusal.json["flags"] == 64
    await emu.click(world.casey, confirm, custom_id(confirm, "Yes"))
    rating = await posted(emu, thread, button="4 ★")
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


async def test_a_staff_ticket_reaction_opens_a_ticket_in_a_thread_on_the_message(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    # #off-topic is not a help channel: the bot does not answer there...
    message = await emu.user_says(world.robin, world.offtopic, "the dashboard shows yesterday's numbers")
    # ...but a customer's 🎫 is just an emoji, and a staff member's opens a ticket.
    await emu.react(world.casey, message, "🎫")
    await emu.react(world.sam, message, "🎫")

    await emu.wait_for("POST", f"/channels/{world.offtopic.id}/messages/{message['id']}/threads")
    reply = await posted(emu, message["id"], "ticket **#1**")
    assert emu.channels[message["id"]].parent_id == world.offtopic.id
    assert reply["channel_id"] == message["id"]
    await posted(emu, world.staff.id, "Ticket #1")
    await bot.dispatcher.drain()
    (ticket,) = await tickets(bot)
    assert (ticket.requester_key, ticket.reason, ticket.summary) == (
        f"discord:{world.robin.id}",
        "reaction",
        "the dashboard shows yesterday's numbers",
    )
