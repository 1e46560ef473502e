"""A DM (or anything else) sent while the bot was down is answered after a restart: each process
stores its gateway session per shard, and the next one resumes it on a socket of its own and reads
what Discord replays. What was settled before is not replayed; what was received but not settled is;
a stored session Discord no longer knows does not stop the start.

The kills are real: `supportbot run` in its own process, SIGKILLed (tests/bot_process.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.adapters.discord.resume import SAVE_EVERY, STALE_AFTER, Settled, current_session
from bot.core.context import HandlerContext
from bot.core.events import ReactionAdded
from bot.core.router import Router
from storage import gateway_sessions_repo
from storage.db import Database
from storage.models import DiscordGatewaySession
from tests.adapters.discord.harness import DiscordWorld, posted, start_bot, stop_bot, text_of
from tests.bot_process import BotProcess, discord_env
from tests.conftest import postgres_for_processes
from tests.emulators.discord import Channel

AFTER_A_KILL = STALE_AFTER + 5.0
"""How long a restarted bot may take to answer what the killed one's session holds: it takes that
session over once the killed process has not saved it for `STALE_AFTER` seconds (a live process's
session is left alone)."""


def _env(world: DiscordWorld, database_url: str) -> dict[str, str]:
    return discord_env(
        database_url,
        world.emu,
        discord_community_channel_ids=world.help.id,
        staff_channel=f"discord:{world.guild.id}/{world.staff.id}",
    )


def _answers(world: DiscordWorld, dm: Channel, containing: str) -> int:
    return sum(
        1
        for m in world.emu.channel_messages(dm)
        if m["author"]["id"] == world.emu.bot.id and containing in text_of(m).lower()
    )


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with postgres_for_processes("tresume") as url:
        yield url


async def test_a_dm_sent_while_the_bot_was_killed_is_answered_once_after_the_restart(
    world: DiscordWorld, sqlite_url: str, tmp_path: Path
) -> None:
    emu = world.emu
    dm = emu.dm_channel(world.casey)
    bot = BotProcess("discord", _env(world, sqlite_url), cwd=tmp_path)
    database = Database.from_url(sqlite_url)
    await bot.start()
    try:
        await emu.user_says(world.casey, dm, "How do I reset my API key?")
        _, asked_at = emu.live_session()
        await posted(emu, dm.id, "API key")
        await _stored(database, [0], lambda stored: stored[0].sequence >= asked_at if stored else False)
        await bot.kill()

        await emu.user_says(world.casey, dm, "Where can I download my invoices?")

        await bot.start()
        await posted(emu, dm.id, "invoice", within=AFTER_A_KILL)
        await asyncio.sleep(1.0)  # time enough for a second answer, if there were one
    finally:
        await bot.stop()
        await database.dispose()

    assert _answers(world, dm, "invoice") == 1
    assert _answers(world, dm, "api key") == 1, "what was answered before the kill is not answered again"
    assert len(emu.resumes) == 1, "the new process resumed the killed one's session"


async def test_a_dm_received_but_not_yet_handled_at_the_kill_is_answered_once_after_the_restart(
    world: DiscordWorld, postgres_url: str, tmp_path: Path
) -> None:
    emu = world.emu
    dm = emu.dm_channel(world.robin)
    bot = BotProcess("discord", _env(world, postgres_url), cwd=tmp_path)
    await bot.start()
    # The bot receives the DM but cannot commit it: its claim waits on this lock until the kill.
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as lock:
            await lock.exec_driver_sql("BEGIN")
            await lock.exec_driver_sql("LOCK TABLE processed_events IN ACCESS EXCLUSIVE MODE")
            await emu.user_says(world.robin, dm, "Where can I download my invoices?")
            await asyncio.sleep(2 * SAVE_EVERY)  # received, and sessions stored meanwhile
            await bot.kill()
            await lock.exec_driver_sql("ROLLBACK")
        assert _answers(world, dm, "invoice") == 0

        await bot.start()
        await posted(emu, dm.id, "invoice", within=AFTER_A_KILL)
        await asyncio.sleep(1.0)
    finally:
        await bot.stop()
        await engine.dispose()

    assert _answers(world, dm, "invoice") == 1


async def test_a_dm_replayed_to_a_process_killed_before_handling_it_is_answered_once_after_the_next_restart(
    world: DiscordWorld, postgres_url: str, tmp_path: Path
) -> None:
    """Killed twice: the second process had read the first one's DM from its session but not yet
    handled it. The first session stays stored, and resumable, until what it replayed is settled;
    so the third process resumes it again and answers the DM."""
    emu = world.emu
    dm = emu.dm_channel(world.robin)
    bot = BotProcess("discord", _env(world, postgres_url), cwd=tmp_path)
    engine = create_async_engine(postgres_url)
    try:
        await bot.start()
        await _until_stored(engine)
        await bot.kill()
        await emu.user_says(world.robin, dm, "Where can I download my invoices?")

        emu.hold_identify()  # not READY, so not draining, until the claims are blocked
        starting = asyncio.create_task(bot.start())
        # A new process: interpreter, imports and migrations before it IDENTIFYs, which on a loaded
        # machine (two pytest workers, another run beside) takes longer than the emulator's 5 s.
        await emu.wait_until(lambda: len(emu.identifies) == 2, timeout=30)
        async with engine.connect() as lock:
            await lock.exec_driver_sql("BEGIN")
            await lock.exec_driver_sql("LOCK TABLE processed_events IN ACCESS EXCLUSIVE MODE")
            emu.release_identify()
            await starting
            await bot.wait_for_log(
                r"previous session of shard 0 resumed: \d+ messages replayed, 1 read again"
            )
            await asyncio.sleep(2 * SAVE_EVERY)  # what the process would store meanwhile, stored
            await bot.kill()
            await lock.exec_driver_sql("ROLLBACK")
        assert _answers(world, dm, "invoice") == 0

        await bot.start()
        await posted(emu, dm.id, "invoice", within=AFTER_A_KILL)
        await asyncio.sleep(1.0)  # time enough for a second answer, if there were one
    finally:
        await bot.stop()
        await engine.dispose()

    assert _answers(world, dm, "invoice") == 1


async def _until_stored(engine: AsyncEngine) -> None:
    """Until the bot process has stored its gateway session."""
    async with asyncio.timeout(10):
        while True:
            async with engine.connect() as connection:
                stored = await connection.exec_driver_sql("SELECT count(*) FROM discord_gateway_sessions")
                if stored.scalar():
                    return
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("where", ["on Discord", "unreachable"])
async def test_a_stored_session_that_cannot_be_resumed_does_not_stop_the_start(
    world: DiscordWorld, database: Database, tmp_path: Path, where: str
) -> None:
    """Discord answers INVALID_SESSION for a session it no longer knows; or the resume URL does
    not answer at all. Either way the bot starts, answers, and stores its new session."""
    emu = world.emu
    async with database.transaction() as session:
        await gateway_sessions_repo.save(
            session,
            shard_id=0,
            session_id="expired",
            resume_url=emu.gateway_url if where == "on Discord" else "ws://127.0.0.1:9/gateway",
            sequence=41,
            owner="a process that stopped",
            at=datetime.now(UTC),
            hand_over=True,
        )

    bot, _ = await start_bot(world, database, tmp_path)
    try:
        dm = emu.dm_channel(world.casey)
        await emu.user_says(world.casey, dm, "How do I reset my API key?")
        await posted(emu, dm.id, "API key")
        live, _ = emu.live_session()
        (stored,) = await _stored(database, [0], lambda stored: [s.session_id for s in stored] == [live])
    finally:
        await stop_bot(bot)

    assert emu.resumes == [], "Discord answered the RESUME with INVALID_SESSION"
    assert stored.session_id == live, "the expired session was replaced by the new one"


async def test_after_a_clean_stop_a_dm_sent_meanwhile_is_answered_and_nothing_twice(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """discord.py's `close()` ends its socket with 4000 (its first close frame), so even a clean stop
    leaves the session resumable: a restart for a deploy loses nothing, and replays nothing twice."""
    emu = world.emu
    dm = emu.dm_channel(world.casey)
    bot, _ = await start_bot(world, database, tmp_path)
    await emu.user_says(world.casey, dm, "How do I reset my API key?")
    await posted(emu, dm.id, "API key")
    session_id, last = emu.live_session()
    await stop_bot(bot)
    async with database.session() as session:
        (stored,) = await gateway_sessions_repo.of_shards(session, shard_ids=[0])
    assert (stored.session_id, stored.sequence) == (session_id, last), "stored at the stop, all settled"

    await emu.user_says(world.casey, dm, "Where can I download my invoices?")

    bot, _ = await start_bot(world, database, tmp_path)
    try:
        await posted(emu, dm.id, "invoice")
        await asyncio.sleep(1.0)
    finally:
        await stop_bot(bot)

    assert [r["seq"] for r in emu.resumes] == [last]
    assert _answers(world, dm, "api key") == 1
    assert _answers(world, dm, "invoice") == 1


async def test_a_dm_sent_while_the_new_session_is_not_yet_ready_is_answered(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """Until its new session is READY a starting bot receives nothing on it; the old session, still
    resumable, keeps what is sent meanwhile. So the old one is drained only after READY: drained
    (and ended) before, a DM in between reached neither session."""
    emu = world.emu
    dm = emu.dm_channel(world.casey)
    bot, _ = await start_bot(world, database, tmp_path)
    await stop_bot(bot)  # the session stored, and left resumable

    emu.hold_identify()
    starting = asyncio.create_task(start_bot(world, database, tmp_path))
    try:
        await emu.wait_until(lambda: len(emu.identifies) == 2)
        with contextlib.suppress(TimeoutError):  # a drain started before READY is over by now
            await emu.wait_until(lambda: emu.resumes, timeout=1.0)
        await emu.user_says(world.casey, dm, "Where can I download my invoices?")
    finally:
        emu.release_identify()
    bot, _ = await starting
    try:
        await posted(emu, dm.id, "invoice")
    finally:
        await stop_bot(bot)

    assert _answers(world, dm, "invoice") == 1


async def test_a_stop_while_the_old_session_is_drained_keeps_it_for_the_next_process(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """A bot stopped before it had drained the previous session (a long replay, RESUMED not yet
    come) leaves that session resumable and stored, not its own over it: the next process resumes
    it and answers what was sent to it while no bot was up."""
    emu = world.emu
    dm = emu.dm_channel(world.casey)
    bot, _ = await start_bot(world, database, tmp_path)
    await stop_bot(bot)
    async with database.session() as session:
        (old,) = await gateway_sessions_repo.of_shards(session, shard_ids=[0])
    await emu.user_says(world.casey, dm, "Where can I download my invoices?")

    emu.withhold_resumed = True
    bot, _ = await start_bot(world, database, tmp_path)
    try:
        await emu.wait_until(lambda: emu.resumes)
    finally:
        await stop_bot(bot)
    async with database.session() as session:
        (stored,) = await gateway_sessions_repo.of_shards(session, shard_ids=[0])
    assert stored.session_id == old.session_id, "the undrained session is still the one stored"

    emu.withhold_resumed = False
    bot, _ = await start_bot(world, database, tmp_path)
    try:
        await posted(emu, dm.id, "invoice")
    finally:
        await stop_bot(bot)
    assert _answers(world, dm, "invoice") == 1


async def test_a_staff_ticket_reaction_made_while_the_bot_was_down_opens_the_ticket_after_the_restart(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path)
    message = await emu.user_says(world.robin, world.offtopic, "the dashboard shows yesterday's numbers")
    await stop_bot(bot)

    await emu.react(world.sam, message, "🎫")

    bot, _ = await start_bot(world, database, tmp_path)
    try:
        await posted(emu, world.staff.id, "Ticket #1")
    finally:
        await stop_bot(bot)


async def test_the_stored_sequence_waits_for_a_reaction_not_yet_handled(
    world: DiscordWorld, postgres_database: Database, tmp_path: Path
) -> None:
    """A reaction is held back like a message: a kill while its handler runs replays it. PostgreSQL
    only: on SQLite a handler held open in its transaction blocks every other write."""
    database = postgres_database
    emu = world.emu
    handling, release = asyncio.Event(), asyncio.Event()
    router = Router("slow-reactions")

    @router.on(ReactionAdded)
    async def slow(event: ReactionAdded, ctx: HandlerContext) -> None:
        handling.set()
        await release.wait()

    dm = emu.dm_channel(world.casey)
    bot, _ = await start_bot(world, database, tmp_path, router=router)
    try:
        message = await emu.user_says(world.casey, dm, "thanks!")
        await emu.react(world.casey, message, "👍")
        _, reacted_at = emu.live_session()
        async with asyncio.timeout(5):
            await handling.wait()
        await asyncio.sleep(2 * SAVE_EVERY)  # stored meanwhile
        held = await _stored_sequence(database)
        release.set()
        async with asyncio.timeout(5):
            while True:
                if await _stored_sequence(database) >= reacted_at:
                    break
                await asyncio.sleep(0.1)
    finally:
        release.set()
        await stop_bot(bot)
    assert held < reacted_at, "stored past a reaction still being handled"


async def _stored(
    database: Database, shard_ids: list[int], done: Callable[[list[DiscordGatewaySession]], bool]
) -> list[DiscordGatewaySession]:
    """The sessions stored for `shard_ids` once `done` holds for them, or else as they are after two
    of the bot's saves (about one a second): what a fixed wait of `2 * SAVE_EVERY` would read,
    without waiting longer than the save takes."""
    deadline = time.monotonic() + 2 * SAVE_EVERY
    while True:
        async with database.session() as session:
            stored = await gateway_sessions_repo.of_shards(session, shard_ids=shard_ids)
        if done(stored) or time.monotonic() >= deadline:
            return stored
        await asyncio.sleep(0.05)


async def _stored_sequence(database: Database) -> int:
    async with database.session() as session:
        stored = await gateway_sessions_repo.of_shards(session, shard_ids=[0])
    return stored[0].sequence if stored else 0


async def test_each_shard_stores_its_own_session(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    emu = world.emu
    bot, _ = await start_bot(world, database, tmp_path, discord_shard_count=2)
    try:
        live = {shard: emu.live_session(shard)[0] for shard in (0, 1)}
        stored = await _stored(
            database, [0, 1], lambda stored: {s.shard_id: s.session_id for s in stored} == live
        )
    finally:
        await stop_bot(bot)
    assert {s.shard_id: s.session_id for s in stored} == live


async def test_the_session_read_from_discord_py_is_the_one_discord_holds(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """`current_session` reads discord.py's private state: a discord.py that moved it fails here."""
    emu = world.emu
    bot, adapter = await start_bot(world, database, tmp_path)
    try:
        asked = await emu.user_says(world.casey, world.help, "How do I reset my API key?")
        await posted(emu, asked["id"])  # in a thread on the question
        ours = current_session(adapter.client, 0)
        session_id, last = emu.live_session()
    finally:
        await stop_bot(bot)
    assert ours is not None
    assert (ours.session_id, ours.resume_url) == (session_id, emu.gateway_url)
    assert ours.sequence <= last  # the bot's own post may still be on its way


def test_the_stored_sequence_waits_for_the_oldest_unsettled_message() -> None:
    settled = Settled()
    settled.received(0, 5, "m5")
    settled.received(0, 7, "m7")
    settled.received(1, 3, "other-shard")
    assert settled.safe(0, latest=9) == 4
    settled.settled("m5")
    assert settled.safe(0, latest=9) == 6
    settled.settled("m7")
    assert settled.safe(0, latest=9) == 9
    assert settled.safe(1, latest=4) == 2


async def _stored_session_id(database: Database) -> str | None:
    async with database.session() as session:
        stored = await gateway_sessions_repo.of_shards(session, shard_ids=[0])
    return stored[0].session_id if stored else None


async def test_a_bot_started_beside_a_live_one_on_its_shard_leaves_that_ones_session_alone(
    world: DiscordWorld, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes on one shard (a misconfiguration, or a deploy that starts the new process
    before the old one stops): the second neither resumes the first's live session (Discord would
    move it off the first's socket) nor stores its own over it, while both answer."""
    emu = world.emu
    dm = emu.dm_channel(world.casey)
    first, first_adapter = await start_bot(world, database, tmp_path)
    try:
        await asyncio.sleep(2 * SAVE_EVERY)  # stored
        first_session = current_session(first_adapter.client, 0)
        assert first_session is not None
        with caplog.at_level(logging.INFO, logger="bot.adapters.discord"):
            second, _ = await start_bot(world, database, tmp_path)
            try:
                await emu.user_says(world.casey, dm, "How do I reset my API key?")
                await posted(emu, dm.id, "API key")
                stored = set()
                for _ in range(int(3 * SAVE_EVERY / 0.2)):  # both would have stored meanwhile
                    stored.add(await _stored_session_id(database))
                    await asyncio.sleep(0.2)
            finally:
                await stop_bot(second)
    finally:
        await stop_bot(first)

    assert stored == {first_session.session_id}, "the live bot's session stays the one stored"
    assert "previous session of shard 0" not in caplog.text, "the live bot's session was not resumed"
    assert "stored session of shard 0 is another live process's; left alone" in caplog.text
    assert _answers(world, dm, "api key") == 1


async def test_a_bot_beside_one_that_stops_takes_over_its_session_at_once(
    world: DiscordWorld, database: Database, tmp_path: Path
) -> None:
    """A deploy that starts the new process first: the old one, at its clean stop, hands its session
    over, and the new one resumes it (what it received and had not settled is replayed) and stores
    its own in its place, without waiting for the row to go stale."""
    emu = world.emu
    first, first_adapter = await start_bot(world, database, tmp_path)
    await asyncio.sleep(2 * SAVE_EVERY)
    first_session = current_session(first_adapter.client, 0)
    assert first_session is not None
    second, second_adapter = await start_bot(world, database, tmp_path)
    try:
        await asyncio.sleep(2 * SAVE_EVERY)  # the second has found the first's session, and kept off
        await stop_bot(first)
        ours = current_session(second_adapter.client, 0)
        assert ours is not None
        async with asyncio.timeout(STALE_AFTER - SAVE_EVERY):
            while True:
                if await _stored_session_id(database) == ours.session_id:
                    break
                await asyncio.sleep(0.1)
    finally:
        await stop_bot(second)

    assert [r["session_id"] for r in emu.resumes] == [first_session.session_id]


async def test_a_dm_held_by_a_bot_killed_beside_a_live_one_is_answered_by_the_live_one(
    world: DiscordWorld, postgres_url: str, tmp_path: Path
) -> None:
    """The first bot received a DM and was killed before it handled it; a second bot on the same
    shard, started after the DM (so its own session never had it) and leaving the first's session
    alone while it lived, resumes that session once the first stops saving it, and answers."""
    emu = world.emu
    dm = emu.dm_channel(world.robin)
    first = BotProcess("discord", _env(world, postgres_url), cwd=tmp_path / "first")
    second = BotProcess("discord", _env(world, postgres_url), cwd=tmp_path / "second")
    for bot in (first, second):
        bot.cwd.mkdir()
    engine = create_async_engine(postgres_url)
    try:
        await first.start()
        await _until_stored(engine)
        async with engine.connect() as lock:
            # The first bot receives the DM but cannot commit it: its claim waits on this lock.
            await lock.exec_driver_sql("BEGIN")
            await lock.exec_driver_sql("LOCK TABLE processed_events IN ACCESS EXCLUSIVE MODE")
            await emu.user_says(world.robin, dm, "Where can I download my invoices?")
            await second.start()
            await second.wait_for_log(r"stored session of shard 0 is another live process's; left alone")
            await first.kill()
            await lock.exec_driver_sql("ROLLBACK")

        await posted(emu, dm.id, "invoice", within=AFTER_A_KILL)
        await asyncio.sleep(1.0)  # time enough for a second answer, if there were one
    finally:
        await first.stop()
        await second.stop()
        await engine.dispose()

    assert _answers(world, dm, "invoice") == 1
