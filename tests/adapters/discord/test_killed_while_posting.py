"""An answer committed by a process killed while posting it is posted once, by the next process.

The handling of a question commits its reply with the event's claim (`bot/core/owed.py`); the post
comes after. A real `supportbot run` is SIGKILLed while the Discord emulator holds that post: either
the post never lands, or it lands and only its answer is lost. The restarted process, once its
adapter is up, posts the owed reply as a resend with the same nonce, which Discord turns into the
message it already has; meanwhile its channel catch-up reads the question again (a duplicate of its
claim) and it resumes the killed process's gateway session. Either way the thread ends with the
answer exactly once. Real discord.py against the emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.adapters.discord.resume import STALE_AFTER
from storage import gateway_sessions_repo
from storage.db import Database
from tests.adapters.discord.harness import DiscordWorld, text_of
from tests.bot_process import BotProcess, discord_env

QUESTION = "How do I reset my API key?"
LEASE_SECONDS = "2"
"""The claim's hold on its owed replies (`INBOX_LEASE_SECONDS`, 30 in production): short, so the
restarted process's sweep posts them soon after it is up."""
AFTER_RESTART = 15.0
"""How long the answer may take once the restarted process is up: the lease, a sweep, the post."""
AFTER_A_KILL = STALE_AFTER + 10.0
"""How long the restarted process may take to resume the killed one's gateway session: once that
process has not saved it for `STALE_AFTER` seconds."""


async def _until_session_stored(database_url: str) -> None:
    database = Database.from_url(database_url)
    try:
        async with asyncio.timeout(10):
            while True:
                async with database.session() as session:
                    if await gateway_sessions_repo.of_shards(session, shard_ids=[0]):
                        return
                await asyncio.sleep(0.1)
    finally:
        await database.dispose()


@pytest.mark.parametrize("landed", [False, True], ids=["post lost", "post landed"])
async def test_an_answer_committed_by_a_process_killed_while_posting_it_is_posted_once_after_restart(
    world: DiscordWorld, database_url: str, tmp_path: Path, landed: bool
) -> None:
    emu = world.emu
    env = discord_env(
        database_url,
        emu,
        discord_community_channel_ids=world.help.id,
        staff_channel=f"discord:{world.guild.id}/{world.staff.id}",
        inbox_lease_seconds=LEASE_SECONDS,
    )
    process = BotProcess("killed", env, cwd=tmp_path)
    await process.start()
    try:
        await _until_session_stored(database_url)  # so the restarted process has one to resume
        # The answer's post hangs far past the kill: applied at once (landed), or never (lost).
        emu.stall_next(seconds=60, method="POST", path="/channels/*/messages", dropped=not landed)
        question = await emu.user_says(world.casey, world.help, QUESTION)
        await emu.wait_until(lambda: emu.stalled, timeout=20)  # the post arrived, and hangs
        (held,) = emu.stalled
        assert held.path == f"/channels/{question['id']}/messages" and "API key" in text_of(held.json)
        assert held.json.get("enforce_nonce") and held.json.get("nonce")
        await process.kill()
        # Down past the lease (in production, a restart slower than 30 s): the reply is due at the
        # restarted process's first sweep.
        await asyncio.sleep(float(LEASE_SECONDS))

        await process.start()
        resend = await emu.wait_for(
            "POST",
            held.path,
            where=lambda call: call is not held and "API key" in text_of(call.json),
            timeout=AFTER_RESTART,
        )
        assert resend.json["nonce"] == held.json["nonce"], "the resend keeps the killed post's nonce"
        # The channel catch-up, then the killed process's session (taken over once it is stale)
        # bring the question back; neither answers it again.
        await process.wait_for_log("previous session of shard 0 resumed", timeout=AFTER_A_KILL)
        await asyncio.sleep(2)  # its replay handled, and another lease and sweep: nothing twice
    finally:
        await process.stop()
    answers = [m for m in emu.channel_messages(question["id"]) if m["author"]["id"] == emu.bot.id]
    assert len(answers) == 1 and "API key" in text_of(answers[0]), answers
