"""Threads on Discord: an answer goes in a thread on the message it answers; a ticket's own room is a
private thread with the customer in it, else a public one, else a post in the ticket forum."""

from __future__ import annotations

import pytest

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.core.events import Conversation, Delivery, OutboundMessage, Platform
from tests.adapters.discord.harness import connect, start_bot


async def test_a_greeting_in_the_help_channel_is_answered_in_a_thread_on_it(world, database, tmp_path, bots):
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    emu = world.emu

    question = await emu.user_says(world.casey, world.help, "hello there")

    thread = await emu.wait_for("POST", f"/channels/{world.help.id}/messages/{question['id']}/threads")
    answer = await emu.wait_for("POST", f"/channels/{question['id']}/messages")
    assert thread.json["name"] == "hello there"
    assert answer.content.startswith("Hi Casey!")
    assert answer.json["allowed_mentions"]["parse"] == []


async def test_ticket_threads_are_private_then_public_then_a_forum_post(world, adapters):
    emu = world.emu
    forum = emu.add_channel(world.guild, "tickets", type=15)
    adapter, _ = await connect(world, adapters, ticket_forum_id=forum.id)
    help_channel = Conversation(
        platform=Platform.DISCORD, workspace_id=world.guild.id, channel_id=world.help.id
    )

    private = await adapter.threads.create(help_channel, "Ticket #1: export fails", invite=[world.casey.id])
    assert emu.channels[private.thread_id].type == 12
    assert world.casey.id in emu.thread_members[private.thread_id]
    assert private.channel_id == world.help.id

    world.guild.private_threads = False  # e.g. a channel where private threads are not allowed
    public = await adapter.threads.create(help_channel, "Ticket #2")
    assert emu.channels[public.thread_id].type == 11

    world.help.threads_allowed = False  # no thread of any kind in this channel: a post in the forum
    in_forum = await adapter.threads.create(help_channel, "Ticket #3")
    assert in_forum.channel_id == forum.id
    assert emu.channels[in_forum.thread_id].parent_id == forum.id

    # A message to the thread conversation lands in the thread.
    ref = await adapter.send(Delivery(conversation=in_forum, message=OutboundMessage(text="Hi, Sam here.")))
    assert ref.thread_id == in_forum.thread_id
    assert emu.channel_messages(in_forum.thread_id)[-1]["content"] == "Hi, Sam here."


async def test_a_private_thread_the_customer_cannot_be_added_to_becomes_a_public_one(world, adapters):
    emu = world.emu
    adapter, _ = await connect(world, adapters)
    help_channel = Conversation(
        platform=Platform.DISCORD, workspace_id=world.guild.id, channel_id=world.help.id
    )
    emu.fail_next(status=403, code=50001, method="PUT", path=f"/channels/*/thread-members/{world.casey.id}")

    room = await adapter.threads.create(help_channel, "Ticket #4: invoice", invite=[world.casey.id])

    assert emu.channels[room.thread_id].type == 11, "a thread Casey can see"
    assert world.casey.id in emu.thread_members[room.thread_id]
    kinds = [c.json["type"] for c in emu.calls if c.path == f"/channels/{world.help.id}/threads"]
    assert kinds == [12, 11]


async def test_no_thread_anywhere_is_a_delivery_error(world, adapters):
    world.guild.max_active_threads = 0
    adapter, _ = await connect(world, adapters)
    help_channel = Conversation(
        platform=Platform.DISCORD, workspace_id=world.guild.id, channel_id=world.help.id
    )
    with pytest.raises(DeliveryError) as raised:
        await adapter.threads.create(help_channel, "Ticket #9")
    assert raised.value.permanent and raised.value.code is DeliveryFailure.REJECTED
