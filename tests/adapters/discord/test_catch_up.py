"""A question asked on Discord while no bot process was connected is answered when one starts: a new
process gets a new gateway session, to which Discord replays nothing, so the bot reads the served
channels' recent messages. What was answered before the restart is not answered again. A dropped
connection is another matter: discord.py resumes the session and Discord replays what it missed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.app import SupportBot
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


@pytest.mark.parametrize(
    "sharding",
    [{}, {"discord_shard_count": 1, "discord_shard_ids": ["0"]}],
    ids=["one client", "sharded"],
)
async def test_a_question_asked_while_discord_was_unreachable_is_replayed_on_resume_and_answered_once(
    world: DiscordWorld, database: Database, tmp_path: Path, bots: list[SupportBot], sharding: dict[str, Any]
) -> None:
    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path, **sharding)
    bots.append(bot)

    await emu.go_down()  # the socket drops; the session stays resumable
    asked = await emu.user_says(world.casey, world.help, "How do I enable SSO?")
    await asyncio.sleep(0.5)
    emu.come_back()

    answer = (await emu.wait_for("POST", f"/channels/{asked['id']}/messages", timeout=30)).json
    await asyncio.sleep(0.5)
    await bot.dispatcher.drain()
    assert "SSO" in str(answer)
    assert len(emu.resumes) == 1, "discord.py resumed its session and got the message replayed"
    assert len(_bot_posts_in(world, asked["id"])) == 1
