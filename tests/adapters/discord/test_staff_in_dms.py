"""Staff recognised by a server role are staff in their DMs with the bot too: Discord sends no
member (and so no roles) with a DM, so the bot looks the person up on the servers it serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import SupportBot
from storage.db import Database
from tests.adapters.discord.harness import DiscordWorld, start_bot, stop_bot, text_of, ticket_thread
from tests.emulators.discord import DiscordEmulator


async def private_answer(emu: DiscordEmulator, run: dict[str, Any]) -> str:
    """All the text of the answer that replaced the command's "thinking…" placeholder."""
    call = await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    return text_of(call.json)


@pytest.fixture
async def bot(world: DiscordWorld, database: Database, tmp_path: Path) -> AsyncIterator[SupportBot]:
    support_bot, _ = await start_bot(world, database, tmp_path)
    yield support_bot
    await stop_bot(support_bot)


async def test_a_staff_member_known_by_role_sees_the_queue_from_their_dms(
    world: DiscordWorld, bot: SupportBot
) -> None:
    emu = world.emu
    await emu.run_command(world.casey, world.help, "ticket", "new", summary="my export keeps failing")
    await ticket_thread(emu, world.help, 1)

    in_dms = await emu.run_command(world.sam, emu.dm_channel(world.sam), "tickets")

    answer = await private_answer(emu, in_dms)
    assert "#1" in answer and "my export keeps failing" in answer


async def test_a_customer_in_their_dms_is_still_a_customer(world: DiscordWorld, bot: SupportBot) -> None:
    emu = world.emu
    await emu.run_command(world.casey, world.help, "ticket", "new", summary="my export keeps failing")
    await ticket_thread(emu, world.help, 1)

    in_dms = await emu.run_command(world.robin, emu.dm_channel(world.robin), "tickets")

    answer = await private_answer(emu, in_dms)
    assert "You have no open tickets." in answer, "her own listing, not the queue"
    assert "my export keeps failing" not in answer
