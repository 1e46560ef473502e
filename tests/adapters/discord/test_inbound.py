"""What the Discord adapter hears: messages where it serves people, mentions and DMs anywhere, never
bots (itself included); and with shards split across processes, each hears only its own guilds."""

from __future__ import annotations

from bot.core.events import MessageReceived
from tests.adapters.discord.harness import connect, start_bot


async def test_messages_elsewhere_and_from_bots_are_ignored_but_mentions_and_dms_are_not(
    world, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    emu = world.emu
    helper_bot = emu.add_user("otherbot", bot=True)
    emu.add_member(world.guild, helper_bot)

    await emu.user_says(world.casey, world.offtopic, "hello")  # not a channel the bot serves
    await emu.user_says(helper_bot, world.help, "hello")  # another bot
    await emu.user_says(world.casey, world.offtopic, f"<@{emu.bot.id}> hello", mentions=[emu.bot])
    mention_reply = await emu.wait_for("POST", "/channels/*/messages")
    await emu.user_says(world.robin, emu.dm_channel(world.robin), "hello")
    dm_reply = await emu.wait_for("POST", "/channels/*/messages")
    await bot.dispatcher.drain()

    assert mention_reply.content.startswith("Hi Casey!")
    assert dm_reply.path == f"/channels/{emu.dm_channel(world.robin).id}/messages"
    assert dm_reply.content.startswith("Hi Robin!")
    # Two answers in all: the bot's own posts (echoed back by the gateway) were not answered either.
    posts = [c for c in emu.calls if c.method == "POST" and c.path.endswith("/messages")]
    assert len(posts) == 2, [c.path for c in posts]


async def test_two_processes_split_the_shards_and_each_hears_only_its_guilds(world, adapters):
    emu = world.emu
    other = emu.add_guild("Globex")
    while emu._shard_of(other.id, 2) == emu._shard_of(world.guild.id, 2):
        other = emu.add_guild("Globex")
    other_help = emu.add_channel(other, "help")
    emu.add_member(other, world.robin)
    first_shard = emu._shard_of(world.guild.id, 2)

    ours, ours_inbox = await connect(
        world,
        adapters,
        shard_count=2,
        shard_ids=[first_shard],
        community_channel_ids=[world.help.id, other_help.id],
    )
    theirs, theirs_inbox = await connect(
        world,
        adapters,
        shard_count=2,
        shard_ids=[1 - first_shard],
        sync_commands=False,
        community_channel_ids=[world.help.id, other_help.id],
    )
    assert sorted(tuple(i["shard"]) for i in emu.identifies) == [(0, 2), (1, 2)]

    await emu.user_says(world.casey, world.help, "hello from Acme")
    await emu.user_says(world.robin, other_help, "hello from Globex")

    heard_here, heard_there = await ours_inbox.next(), await theirs_inbox.next()
    assert isinstance(heard_here, MessageReceived) and heard_here.text == "hello from Acme"
    assert isinstance(heard_there, MessageReceived) and heard_there.text == "hello from Globex"
    assert ours_inbox.events.empty() and theirs_inbox.events.empty()
    ours_guilds, their_guilds = {g.id for g in ours.client.guilds}, {g.id for g in theirs.client.guilds}
    assert int(world.guild.id) in ours_guilds and int(other.id) in their_guilds
    assert not ours_guilds & their_guilds
