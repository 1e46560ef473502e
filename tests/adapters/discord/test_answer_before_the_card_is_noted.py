"""A team member opening a thread on a ticket's card and answering in it before the bot has noted
the card (it does so once the card is posted, in a transaction of its own, which a loaded machine
or a slow database delays by seconds): the answer still reaches the customer. Through the real
discord.py and the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import SupportBot
from tests.adapters.discord.harness import DiscordWorld, posted, start_bot, stop_bot
from tests.adapters.discord.test_conversation import escalated_with_staff_thread
from tests.emulators.discord import Channel, User


@pytest.fixture
async def bot(world: DiscordWorld, database, tmp_path: Path) -> AsyncIterator[SupportBot]:
    support_bot, _ = await start_bot(world, database, tmp_path)
    yield support_bot
    await stop_bot(support_bot)


async def opens_thread_on(world: DiscordWorld, user: User, message: dict[str, Any]) -> Channel:
    """`user` opens a thread on `message` ("Create Thread" on it): the thread has the message's id,
    and `user` owns it."""
    emu = world.emu
    thread = Channel(
        id=message["id"],
        name="Ticket #1",
        guild_id=world.guild.id,
        type=11,
        parent_id=message["channel_id"],
        owner_id=user.id,
    )
    world.guild.channels[thread.id] = emu.channels[thread.id] = thread
    emu.thread_members[thread.id] = {user.id}
    await emu.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True}, guild_id=world.guild.id)
    return thread


@pytest.mark.usefixtures("slow_to_note_the_card")
async def test_a_team_members_answer_sent_before_the_bot_had_noted_the_card_still_reaches_the_customer(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    room, card = await escalated_with_staff_thread(world)

    # Sam opens a thread on the card and answers at once, while the bot is still noting the card.
    thread = await opens_thread_on(world, world.sam, card)
    await emu.user_says(world.sam, thread, "Which export, CSV or PDF?")

    answer = await posted(emu, room.id, "Which export, CSV or PDF?")
    assert answer["content"] == "**Sam (support team):**\nWhich export, CSV or PDF?"
