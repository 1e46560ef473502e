"""A slash command or a click the bot deferred is answered even if the process that deferred it dies.

Discord sends an interaction once, and the bot defers it at once (its 3 seconds); from then on only
the interaction's token (15 minutes) can answer it. So the deferred interaction is written to the
inbox, and a process that finds it there after its lease answers through the same token. Real
discord.py against the Discord emulator, a real database, and (for the kill) a real
`supportbot run` process.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import discord
from sqlalchemy import select

from bot.core.context import HandlerContext
from bot.core.dispatch import Outcome
from bot.core.events import ActionInvoked, Button, CommandInvoked, OutboundMessage
from bot.core.inbox import DatabaseInbox
from bot.core.router import Router, action, command
from storage.db import Database
from storage.models import InboxEntry
from storage.types import utcnow
from tests.adapters.discord.harness import EPHEMERAL, DiscordWorld, start_bot, stop_bot, text_of
from tests.bot_process import BotProcess, discord_env
from tests.emulators.discord import DiscordEmulator
from tests.harness import FakeClock

MEMBER_LOOKUP = "/guilds/*/members/*"
"""What a command in a DM waits on before it is handled: the person's roles on the servers."""
SOLVED = Button(action_id="kb:solved", label="That solved it", value="reset-password")


async def _inbox_rows(database: Database) -> list[InboxEntry]:
    async with database.session() as session:
        return list((await session.execute(select(InboxEntry))).scalars())


async def _until_inbox_is_empty(database: Database, *, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while await _inbox_rows(database):  # noqa: ASYNC110 - polling another process's writes
            await asyncio.sleep(0.05)


def _original(emu: DiscordEmulator, token: str) -> str:
    return f"/webhooks/{emu.application_id}/{token}/messages/@original"


async def test_a_deferred_command_is_kept_until_it_is_answered_then_forgotten(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path)
    try:
        emu.stall_next(seconds=1.5, method="GET", path=MEMBER_LOOKUP)
        run = await emu.run_command(world.casey, emu.dm_channel(world.casey), "support", "help")
        await emu.wait_until(lambda: emu.stalled, timeout=5)

        (row,) = await _inbox_rows(database)
        assert (row.platform, row.kind, row.person) == ("discord", "command", f"discord:{world.casey.id}")
        assert str(emu.token) not in row.body, "the bot's own token is never written down"
        answer = await emu.wait_for("PATCH", _original(emu, run["token"]), timeout=10)
        assert "/ticket" in text_of(answer.json)
        await _until_inbox_is_empty(database, seconds=5)
    finally:
        await stop_bot(bot)


async def test_an_answered_command_left_in_the_inbox_by_a_killed_process_keeps_its_answer(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """A process killed after answering, before it deleted the row: the next one replays the row,
    finds the event handled (a duplicate) and leaves the answer where the person reads it."""
    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path, inbox_lease_seconds=1)
    try:
        emu.stall_next(seconds=1.0, method="GET", path=MEMBER_LOOKUP)
        run = await emu.run_command(world.casey, emu.dm_channel(world.casey), "support", "help")
        await emu.wait_until(lambda: emu.stalled, timeout=5)
        (row,) = await _inbox_rows(database)
        await emu.wait_for("PATCH", _original(emu, run["token"]), timeout=10)
        answered = [
            m for m in emu.messages.values() if m.get("interaction_metadata", {}).get("id") == run["id"]
        ]

        # The row the killed process never got to delete.
        inbox = DatabaseInbox(database, platform="discord", lease=timedelta(seconds=1))
        await inbox.keep(kind=row.kind, person=row.person, body=json.loads(row.body))
        # Its lease (1 s), then the adapter's replay (every 1 s here), which finds it a duplicate.
        await _until_inbox_is_empty(database, seconds=10)
    finally:
        await stop_bot(bot)
    assert not [c for c in emu.calls if c.method == "DELETE" and c.path == _original(emu, run["token"])]
    assert len([c for c in emu.calls if c.method == "PATCH" and c.path == _original(emu, run["token"])]) == 1
    assert answered and all(m["id"] in emu.messages for m in answered), "the answer is still there"


async def test_a_command_deferred_by_a_process_killed_before_handling_it_is_answered_once_after_restart(
    world: DiscordWorld, database_url: str, tmp_path: Path
) -> None:
    emu = world.emu
    env = discord_env(database_url, emu, inbox_lease_seconds="2")
    process = BotProcess("killed", env, cwd=tmp_path)
    await process.start()
    try:
        # The roles lookup a DM command waits on hangs: deferred and kept, not handled.
        emu.stall_next(seconds=60, method="GET", path=MEMBER_LOOKUP)
        run = await emu.run_command(world.casey, emu.dm_channel(world.casey), "support", "help")
        await emu.wait_until(lambda: emu.stalled, timeout=20)
        await emu.wait_for("POST", f"/interactions/{run['id']}/{run['token']}/callback")
        await process.kill()
        assert not [c for c in emu.calls if c.path == _original(emu, run["token"])]

        await process.start()
        answer = await emu.wait_for("PATCH", _original(emu, run["token"]), timeout=20)
        assert "/ticket" in text_of(answer.json)
        await process.wait_for_log("replaying a discord command")
        await asyncio.sleep(3)  # another lease and replay period: nothing answers twice
    finally:
        await process.stop()
    assert len([c for c in emu.calls if c.method == "PATCH" and c.path == _original(emu, run["token"])]) == 1
    database = Database.from_url(database_url)
    try:
        assert await _inbox_rows(database) == []
    finally:
        await database.dispose()


async def test_a_command_a_second_process_answered_keeps_its_answer_when_the_slow_first_one_catches_up(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """The first process is stuck past the lease (its member lookup hangs), so a second one replays
    the command and answers it. When the first gets going again its handling is a duplicate: the
    answer in the placeholder is the second process's, and stays."""
    emu = world.emu
    first, first_adapter = await start_bot(world, database, tmp_path / "first", inbox_lease_seconds=1)
    second = None
    try:
        # The first process's own replay loop is held, so the row goes to the second's, as it does
        # whenever the second's loop comes round first; so is its renewal of the row's lease, as
        # when its event loop or its database stalls.
        assert first_adapter._replayer is not None
        first_adapter._replayer.cancel()
        first.dispatcher._renewals.clear()
        emu.stall_next(seconds=4, method="GET", path=MEMBER_LOOKUP)
        run = await emu.run_command(world.casey, emu.dm_channel(world.casey), "support", "help")
        await emu.wait_until(lambda: emu.stalled, timeout=5)

        second, _ = await start_bot(world, database, tmp_path / "second", inbox_lease_seconds=1)
        answer = await emu.wait_for("PATCH", _original(emu, run["token"]), timeout=10)
        assert "/ticket" in text_of(answer.json)

        async with asyncio.timeout(10):
            while not first.dispatcher.outcomes[Outcome.DUPLICATE]:  # noqa: ASYNC110 - its stall ends
                await asyncio.sleep(0.05)
        await first.dispatcher.drain()  # settled too
    finally:
        if second is not None:
            await stop_bot(second)
        await stop_bot(first)
    assert not [c for c in emu.calls if c.method == "DELETE" and c.path == _original(emu, run["token"])]
    assert await _inbox_rows(database) == []


async def test_a_replay_by_the_process_still_answering_does_not_overwrite_its_first_answer(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """A command answered in two private parts, the first slow to reach Discord (past the lease):
    the process's own replay loop finds the row meanwhile. The second part is a follow-up, not a
    second edit of the placeholder over the first."""
    router = Router("two-answers")

    @router.on(CommandInvoked, command("ticket"))
    async def two_answers(event: CommandInvoked, ctx: HandlerContext) -> None:
        await ctx.reply(OutboundMessage(text="first part", private_to=event.actor))
        await ctx.reply(OutboundMessage(text="second part", private_to=event.actor))

    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path, router=router, inbox_lease_seconds=1)
    bot.dispatcher._renewals.clear()  # the row's lease runs out, as when its loop or database stalls
    try:
        emu.stall_next(seconds=3, method="PATCH", path="/webhooks/*/*/messages/@original")
        run = await emu.run_command(world.casey, world.help, "ticket", "status", number=4)
        follow_up = await emu.wait_for("POST", f"/webhooks/{emu.application_id}/{run['token']}", timeout=10)
        assert "second part" in text_of(follow_up.json)
        await _until_inbox_is_empty(database, seconds=5)
        await bot.dispatcher.drain()
    finally:
        await stop_bot(bot)
    edits = [c for c in emu.calls if c.method == "PATCH" and c.path == _original(emu, run["token"])]
    assert [text_of(edit.json) for edit in edits] == ["first part"]


async def test_a_click_left_unhandled_by_a_stopped_process_is_answered_by_the_next_through_its_token(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """A click deferred by a process that stopped before handling it: the next process rebuilds the
    interaction from the inbox and answers as the first would have, privately through the click's
    token and publicly in the channel."""
    reached, release = asyncio.Event(), asyncio.Event()
    router = Router("slow-click")

    @router.on(CommandInvoked, command("subscribe"))
    async def offer(event: CommandInvoked, ctx: HandlerContext) -> None:
        await ctx.reply(OutboundMessage(text="Did this solve it?", buttons=(SOLVED,)))

    @router.on(ActionInvoked, action("kb"))
    async def slow_click(event: ActionInvoked, ctx: HandlerContext) -> None:
        reached.set()
        await release.wait()
        await ctx.reply(OutboundMessage(text=f"just for you: {event.value}", private_to=event.actor))
        await ctx.reply(OutboundMessage(text=f"for everyone: {event.value}"))

    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path, router=router, inbox_lease_seconds=1)
    try:
        await emu.run_command(world.casey, world.help, "subscribe")
        await emu.wait_for("POST", f"/channels/{world.help.id}/messages")
        offer = emu.channel_messages(world.help)[-1]
        click = await emu.click(world.casey, offer, "sb|kb:solved|reset-password")
        await asyncio.wait_for(reached.wait(), 5)
    finally:
        await bot.dispatcher.stop(timeout=0.1)  # the click's handling cut off, rolled back
        for adapter in bot.adapters.values():
            await adapter.stop()
    (row,) = await _inbox_rows(database)
    assert row.kind == "button"
    release.set()

    bot, _ = await start_bot(world, database, tmp_path, router=router, inbox_lease_seconds=1)
    try:
        private = await emu.wait_for("POST", f"/webhooks/{emu.application_id}/{click['token']}", timeout=10)
        public = await emu.wait_for("POST", f"/channels/{world.help.id}/messages", timeout=10)
        await _until_inbox_is_empty(database, seconds=5)
    finally:
        await stop_bot(bot)
    assert private.content == "just for you: reset-password" and private.json["flags"] == EPHEMERAL
    assert public.content == "for everyone: reset-password"
    assert not [c for c in emu.calls if c.path == _original(emu, click["token"])], "the clicked message stays"


async def test_a_command_replayed_after_its_token_ran_out_is_answered_without_it(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """Discord's token answers an interaction for 15 minutes from its making (its id says when),
    whenever the row was written: one older is answered as a message, never through the token."""
    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path, inbox_lease_seconds=1)
    dm = emu.dm_channel(world.casey)
    try:
        emu.stall_next(seconds=1.0, method="GET", path=MEMBER_LOOKUP)
        run = await emu.run_command(world.casey, dm, "support", "help")
        await emu.wait_until(lambda: emu.stalled, timeout=5)
        (row,) = await _inbox_rows(database)
        await emu.wait_for("PATCH", _original(emu, run["token"]), timeout=10)

        # The same kind of row for a command Discord made 16 minutes ago, its token the one above.
        stale = json.loads(row.body)
        made = discord.utils.utcnow() - timedelta(minutes=16)
        stale["interaction"]["id"] = str(discord.utils.time_snowflake(made))
        stale["event"]["event_id"] = f"{stale['event']['event_id']}-stale"
        inbox = DatabaseInbox(database, platform="discord", lease=timedelta(seconds=1))
        await inbox.keep(kind=row.kind, person=row.person, body=stale)
        answer = await emu.wait_for(
            "POST", f"/channels/{dm.id}/messages", where=lambda c: "/ticket" in text_of(c.json), timeout=10
        )
        await _until_inbox_is_empty(database, seconds=5)
    finally:
        await stop_bot(bot)
    assert answer.status == 200
    assert (
        len([c for c in emu.calls if c.path.startswith(f"/webhooks/{emu.application_id}/{run['token']}")])
        == 1
    )


async def test_a_command_still_being_handled_past_the_lease_is_not_handled_again_by_another_process(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """Handling slower than the inbox lease (its work after the commit, which holds no database
    lock, waits): the process working on it holds its row (the lease is renewed), so neither another
    process nor its own replay loop runs the handler a second time."""
    handled: list[str] = []
    reached, release = asyncio.Event(), asyncio.Event()
    router = Router("slow-answer")

    async def slow_follow_through() -> None:
        reached.set()
        await release.wait()

    @router.on(CommandInvoked, command("ticket"))
    async def slow_answer(event: CommandInvoked, ctx: HandlerContext) -> None:
        handled.append(event.event_id)
        ctx.after_commit(slow_follow_through)
        await ctx.reply(OutboundMessage(text="done at last", private_to=event.actor))

    emu = world.emu
    first, _ = await start_bot(world, database, tmp_path / "first", router=router, inbox_lease_seconds=1)
    second = None
    try:
        run = await emu.run_command(world.casey, world.help, "ticket", "status", number=4)
        await asyncio.wait_for(reached.wait(), 5)
        (row,) = await _inbox_rows(database)
        second, second_adapter = await start_bot(
            world, database, tmp_path / "second", router=router, inbox_lease_seconds=1
        )
        # The lease the row was written with is over, and the first process is still at it.
        async with asyncio.timeout(5):
            while utcnow() <= row.lease_until:  # noqa: ASYNC110 - waiting for the wall clock
                await asyncio.sleep(0.05)
        assert await second_adapter.replay() == 0, "the row is still leased to the process handling it"

        release.set()
        answer = await emu.wait_for("PATCH", _original(emu, run["token"]), timeout=10)
        await _until_inbox_is_empty(database, seconds=5)
        await first.dispatcher.drain()
    finally:
        release.set()
        if second is not None:
            await stop_bot(second)
        await stop_bot(first)
    assert text_of(answer.json) == "done at last"
    assert handled == [handled[0]], "handled once"
    assert not [c for c in emu.calls if c.method == "DELETE" and c.path == _original(emu, run["token"])]


async def test_an_answer_owed_by_a_killed_process_and_swept_before_the_replay_replaces_the_placeholder(
    world: DiscordWorld, database_url: str, tmp_path: Path
) -> None:
    """A process killed after committing a command's answer, before its edit of the "thinking…"
    placeholder landed. Another process's sweep (every 2 s) posts the owed answer before its inbox
    replay (every lease / 2) has rebuilt the interaction: the answer still goes into the
    placeholder, through the token the inbox kept, not as a DM beside a "thinking…" left for the
    token's 15 minutes."""
    emu = world.emu
    dm = emu.dm_channel(world.casey)
    killed = BotProcess("killed", discord_env(database_url, emu, inbox_lease_seconds="5"), cwd=tmp_path)
    await killed.start()
    database = Database.from_url(database_url)
    other = None
    try:
        # The answer's edit of the placeholder hangs past the kill, and never lands.
        emu.stall_next(seconds=60, method="PATCH", path="/webhooks/*/*/messages/@original", dropped=True)
        run = await emu.run_command(world.casey, dm, "support", "help")
        await emu.wait_until(lambda: emu.stalled, timeout=20)
        (held,) = emu.stalled
        await killed.kill()
        (row,) = await _inbox_rows(database)

        clock = FakeClock(utcnow())
        other, other_adapter = await start_bot(
            world, database, tmp_path / "other", clock=clock, inbox_lease_seconds=5
        )
        # Its replay loop is held, so the sweep comes first, as whenever the sweep's tick does.
        assert other_adapter._replayer is not None
        other_adapter._replayer.cancel()
        clock.advance(seconds=30)  # past the lease of the claim that owes the answer
        answered = lambda: [  # noqa: E731
            c
            for c in emu.calls
            if c is not held and c.method in ("PATCH", "POST") and "/ticket" in text_of(c.json or {})
        ]
        async with asyncio.timeout(10):
            while not answered():  # noqa: ASYNC110 - the sweep runs every 2 s
                await asyncio.sleep(0.05)

        # Then the replay, once the row's lease has run out: a duplicate of the claim.
        async with asyncio.timeout(10):
            while utcnow() <= row.lease_until:  # noqa: ASYNC110 - waiting for the wall clock
                await asyncio.sleep(0.05)
        assert await other_adapter.replay() == 1
        await _until_inbox_is_empty(database, seconds=10)
        await other.dispatcher.drain()
    finally:
        await killed.stop()
        if other is not None:
            await stop_bot(other)
        await database.dispose()
    (answer,) = answered()
    assert (answer.method, answer.path) == ("PATCH", held.path), "answered in the placeholder"
    placeholder = emu.messages[emu.interactions[run["id"]].original_id or ""]
    assert "/ticket" in text_of(placeholder) and not int(placeholder.get("flags") or 0) & 128, "no thinking…"
