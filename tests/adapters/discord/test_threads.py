"""Threads on Discord: an answer goes in a thread on the message it answers; a ticket's own room is a
private thread with the customer in it, else a public one, else a post in the ticket forum; a room
whose creation hangs is looked for, never asked for twice."""

from __future__ import annotations

import time

import pytest

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.core.events import Actor, Conversation, Delivery, NewThread, OutboundMessage, Platform, SentRef
from bot.core.outbound import Outbound
from tests.adapters.discord.harness import connect, start_bot, text_of


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


async def _ticket_room_asked_for(world, adapter) -> tuple[SentRef | None, float]:
    """Casey's ticket opened as the bot opens it (a room of its own, through the core's retries),
    and how long that took."""
    help_channel = Conversation(
        platform=Platform.DISCORD, workspace_id=world.guild.id, channel_id=world.help.id
    )
    casey = Actor(platform=Platform.DISCORD, id=world.casey.id, display_name="casey")
    opened = Delivery(
        conversation=help_channel,
        message=OutboundMessage(text="Ticket #4 is open; Sam will be with you shortly."),
        new_thread=NewThread(title="Ticket #4: export fails", invite=(casey,)),
    )
    asked = time.monotonic()
    ref = await Outbound({Platform.DISCORD: adapter}, base_delay=0.01).send(opened)
    return ref, time.monotonic() - asked


def _rooms_in(world) -> list[str]:
    return [c.id for c in world.emu.channels.values() if c.parent_id == world.help.id]


async def test_a_ticket_room_whose_creation_hangs_is_found_not_opened_twice(world, adapters):
    """Creating a thread is not safe to repeat: after the timeout the bot looks for the room it asked
    for, finds it (Discord announced it on the gateway), and the ticket's message lands there."""
    emu = world.emu
    adapter, _ = await connect(world, adapters, send_timeout=0.5)
    emu.stall_next(seconds=3, path=f"/channels/{world.help.id}/threads")

    ref, waited = await _ticket_room_asked_for(world, adapter)

    assert waited < 3, "not held for the whole stall"
    assert ref is not None and _rooms_in(world) == [ref.thread_id], "one room"
    assert world.casey.id in emu.thread_members[ref.thread_id]
    assert [text_of(m) for m in emu.channel_messages(ref.thread_id)] == [
        "Ticket #4 is open; Sam will be with you shortly."
    ]


async def test_a_ticket_room_not_made_by_the_timeout_is_not_asked_for_again(world, adapters):
    """A creation still on its way is in doubt: the bot does not ask for a second room (that would
    make two) and the message goes where it would without one, in the channel."""
    emu = world.emu
    adapter, _ = await connect(world, adapters, send_timeout=0.5)
    emu.stall_next(seconds=3, path=f"/channels/{world.help.id}/threads", applied_late=True)

    ref, waited = await _ticket_room_asked_for(world, adapter)

    assert ref is not None and ref.thread_id is None
    assert waited < 3, "not held for the whole stall"
    assert [text_of(m) for m in emu.channel_messages(world.help)] == [
        "Ticket #4 is open; Sam will be with you shortly."
    ]
    await emu.wait_until(lambda: _rooms_in(world), timeout=5)
    assert len(_rooms_in(world)) == 1, "the late room is the only one: left empty, never doubled"
