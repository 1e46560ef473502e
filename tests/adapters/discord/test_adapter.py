"""The Discord adapter on its own (events collected from its sink): sharding across processes,
dev-guild command sync, ticket threads with their fallbacks, the global rate limit, autocomplete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.adapters.discord.adapter import DiscordAdapter
from bot.app import build_router
from bot.core.events import (
    Actor,
    Conversation,
    Delivery,
    InboundEvent,
    MessageReceived,
    OutboundMessage,
    Platform,
)
from bot.status.model import OPEN_STAGES, ComponentStatus, Impact
from tests.adapters.discord.harness import DiscordWorld
from tests.emulators.discord import DiscordEmulator


@pytest.fixture
async def emu() -> AsyncIterator[DiscordEmulator]:
    async with DiscordEmulator(route_limit=1000) as emulator:
        yield emulator


class Inbox:
    def __init__(self) -> None:
        self.events: asyncio.Queue[InboundEvent] = asyncio.Queue()

    async def __call__(self, event: InboundEvent) -> None:
        await self.events.put(event)

    async def next(self) -> InboundEvent:
        return await asyncio.wait_for(self.events.get(), 5)


@pytest.fixture
async def adapters() -> AsyncIterator[list[DiscordAdapter]]:
    started: list[DiscordAdapter] = []
    yield started
    for adapter in started:
        await adapter.stop()


async def connect(
    world: DiscordWorld, started: list[DiscordAdapter], **options: object
) -> tuple[DiscordAdapter, Inbox]:
    emu = world.emu
    options.setdefault("community_channel_ids", [world.help.id])
    adapter = DiscordAdapter(
        token=emu.token,
        commands=build_router().catalogue(),
        api_base=emu.api_base,
        gateway_url=emu.gateway_url,
        guild_ready_timeout=0.05,
        ready_timeout=10,
        **options,  # type: ignore[arg-type]
    )
    inbox = Inbox()
    await adapter.start(inbox)
    started.append(adapter)
    return adapter, inbox


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


async def test_commands_sync_to_the_dev_guild_when_one_is_set(world, adapters):
    await connect(world, adapters, dev_guild_id=world.guild.id)
    (sync,) = [c for c in world.emu.calls if c.method == "PUT"]
    assert sync.path == f"/applications/{world.emu.application_id}/guilds/{world.guild.id}/commands"
    ticket = next(c for c in sync.json if c["name"] == "ticket")
    close = next(o for o in ticket["options"] if o["name"] == "close")
    assert [(o["name"], o["type"], o.get("autocomplete", False)) for o in close["options"]] == [
        ("number", 4, True),
        ("reason", 3, False),
    ]

    # The fixed choices are the status handlers' vocabulary, so Discord never offers a word they refuse.
    def choices(command: str, sub: str, option: str) -> tuple[str, ...]:
        group = next(c for c in sync.json if c["name"] == command)
        spec = next(
            o for o in next(s for s in group["options"] if s["name"] == sub)["options"] if o["name"] == option
        )
        return tuple(c["value"] for c in spec["choices"])

    assert choices("component", "set", "status") == tuple(ComponentStatus)
    assert choices("incident", "open", "impact") == tuple(Impact)
    assert choices("incident", "update", "status") == OPEN_STAGES


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


async def test_a_burst_over_the_global_limit_is_waited_out_by_discord_py(world, adapters):
    emu = world.emu
    emu.global_limit = 10
    adapter, _ = await connect(world, adapters)
    channels = [emu.add_channel(world.guild, f"status-{i}") for i in range(15)]

    await asyncio.gather(
        *(
            adapter.send(
                Delivery(
                    conversation=Conversation(platform=Platform.DISCORD, channel_id=c.id),
                    message=OutboundMessage(text="Investigating: API errors"),
                )
            )
            for c in channels
        )
    )

    statuses = [c.status for c in emu.calls if c.path.endswith("/messages")]
    assert statuses.count(429) >= 1, "the burst did exceed the global limit"
    assert all(emu.channel_messages(c) for c in channels), "yet every channel got its message"


async def test_autocomplete_offers_the_suggesters_choices(world, adapters):
    asked: list[tuple[str, str, str]] = []

    async def suggest(kind: str, current: str, actor: Actor) -> Sequence[tuple[str, str]]:
        asked.append((kind, current, actor.id))
        return [("#12 export fails", "12"), ("#15 invoice", "15"), ("not a number", "x")]

    await connect(world, adapters, suggest=suggest)
    emu = world.emu
    interaction = await emu.autocomplete(
        world.sam, world.staff, "ticket", "status", focused="number", number="1"
    )

    answer = await emu.wait_for("POST", f"/interactions/{interaction['id']}/{interaction['token']}/callback")
    assert answer.json == {
        "type": 8,
        "data": {
            "choices": [{"name": "#12 export fails", "value": 12}, {"name": "#15 invoice", "value": 15}]
        },
    }
    assert asked == [("ticket", "1", world.sam.id)]


async def test_a_broadcast_resent_after_a_crash_posts_nothing_new(world, adapters):
    """The outbox may resend a delivery whose send was in flight at a crash: the same idempotency key
    becomes the same enforced nonce, and Discord keeps the first message."""
    emu = world.emu
    adapter, _ = await connect(world, adapters)
    channel = emu.add_channel(world.guild, "status")
    delivery = Delivery(
        conversation=Conversation(platform=Platform.DISCORD, channel_id=channel.id),
        message=OutboundMessage(text="Investigating: API errors"),
        idempotency_key="broadcast-7:discord:status",
    )
    first = await adapter.send(delivery)
    again = await adapter.send(delivery)
    assert again.message_id == first.message_id
    assert len(emu.channel_messages(channel)) == 1
    other = Delivery(
        conversation=delivery.conversation,
        message=delivery.message,
        idempotency_key="broadcast-8:discord:status",
    )
    await adapter.send(other)
    assert len(emu.channel_messages(channel)) == 2, "a different delivery is a different message"


async def test_a_long_notice_is_known_by_its_first_part(world, adapters):
    """A notice longer than one message goes out in parts; threads hang under, and edits replace,
    the part that starts it."""
    emu = world.emu
    adapter, _ = await connect(world, adapters)
    channel = emu.add_channel(world.guild, "status")
    text = "\n\n".join(f"Region {n}: " + "rolling back and verifying. " * 20 for n in range(8))
    delivery = Delivery(
        conversation=Conversation(platform=Platform.DISCORD, channel_id=channel.id),
        message=OutboundMessage(text=text),
    )
    ref = await adapter.send(delivery)
    first, *rest = emu.channel_messages(channel)
    assert rest, "the notice needed more than one message"
    assert ref.message_id == first["id"]
    assert first["content"].startswith("Region 0:")
