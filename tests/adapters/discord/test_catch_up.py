"""A question asked on Discord while no bot process was connected is answered when one starts: a new
process gets a new gateway session, to which Discord replays nothing, so the bot reads the served
channels' recent messages. What was answered before the restart is not answered again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage.db import Database
from tests.adapters.discord.harness import DiscordWorld, posted, start_bot, stop_bot


def _bot_posts_in(world: DiscordWorld, channel_id: str) -> list[str]:
    return [
        m["content"] for m in world.emu.channel_messages(channel_id) if m["author"]["id"] == world.emu.bot.id
    ]


async def test_a_question_asked_while_the_bot_was_down_is_answered_once_it_is_back(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path)
    before = await emu.user_says(world.casey, world.help, "How do I reset my API key?")
    await posted(emu, before["id"])
    await stop_bot(bot)

    asked_meanwhile = await emu.user_says(world.robin, world.help, "Where can I download my invoices?")

    bot, _ = await start_bot(world, database, tmp_path)
    try:
        answer = await posted(emu, asked_meanwhile["id"])
        await asyncio.sleep(0.5)  # time enough for a second answer, if there were one
        await bot.dispatcher.drain()
    finally:
        await stop_bot(bot)

    assert "invoice" in str(answer).lower()
    assert len(_bot_posts_in(world, asked_meanwhile["id"])) == 1
    assert len(_bot_posts_in(world, before["id"])) == 1, (
        "the question answered before the restart was not answered again"
    )
