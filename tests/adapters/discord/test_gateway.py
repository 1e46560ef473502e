"""The Discord adapter end to end: the real discord.py against the Discord emulator.

Each test reads like what happens on the server: someone writes, runs a command, clicks or reacts,
and the test waits for the REST call the bot makes in answer (no sleeps)."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.context import HandlerContext
from bot.core.events import (
    ActionInvoked,
    Button,
    CommandInvoked,
    Conversation,
    MessageReceived,
    OutboundMessage,
    Platform,
)
from bot.core.router import Router, action, command, pattern
from bot.handlers import basics
from tests.adapters.discord.harness import start_bot, stop_bot
from tests.emulators.discord import DiscordEmulator

EPHEMERAL = 64


class Handlers:
    """Small handlers that exercise the adapter: what they received, and a gate for a slow one."""

    def __init__(self) -> None:
        self.received: list[object] = []
        self.release = asyncio.Event()
        self.router = Router("adapter-test")
        router = self.router

        @router.on(CommandInvoked, command("ticket"))
        async def echo_args(event: CommandInvoked, ctx: HandlerContext) -> None:
            self.received.append(event)
            await ctx.reply(OutboundMessage(text=f"args: {event.args}", private_to=event.actor))

        @router.on(CommandInvoked, command("status"))
        async def slow_status(event: CommandInvoked, ctx: HandlerContext) -> None:
            await self.release.wait()  # slower than Discord's 3 seconds, as long as the test wants
            await ctx.reply("All systems operational.")

        @router.on(CommandInvoked, command("subscribe"))
        async def offer_buttons(event: CommandInvoked, ctx: HandlerContext) -> None:
            await ctx.reply(
                OutboundMessage(
                    text="Did this solve it?",
                    buttons=(
                        Button(action_id="kb:solved", label="That solved it", value="reset-password"),
                        Button(action_id="kb:more", label="I still need help", value="reset-password"),
                    ),
                )
            )

        @router.on(CommandInvoked, command("subscriptions"))
        async def silent(event: CommandInvoked, ctx: HandlerContext) -> None:
            self.received.append(event)  # handled, and deliberately no reply

        @router.on(ActionInvoked, action("kb"))
        async def clicked(event: ActionInvoked, ctx: HandlerContext) -> None:
            self.received.append(event)
            await ctx.reply(
                OutboundMessage(text=f"clicked {event.action_id}={event.value}", private_to=event.actor)
            )

        @router.on(MessageReceived, pattern(r"^relay (?P<text>.+)$", score=1.0))
        async def relay(event: MessageReceived, ctx: HandlerContext) -> None:
            staff = ctx.services.staff.staff_channel
            await ctx.post(
                staff,
                OutboundMessage(
                    text=f"**{event.actor.name}:** {ctx.match.captures['text']}",
                    mentions=ctx.services.staff.oncall_mentions(Platform.DISCORD),
                ),
            )

        @router.on(MessageReceived, pattern(r"^long answer$", score=1.0))
        async def long_answer(event: MessageReceived, ctx: HandlerContext) -> None:
            paragraph = "Reset your password from Settings → Security, then sign in again. " * 6
            await ctx.reply("\n\n".join(f"{i}. {paragraph.strip()}" for i in range(1, 8)))

        @router.on(MessageReceived, pattern(r"^post in (?P<channel>\d+)$", score=1.0))
        async def post_elsewhere(event: MessageReceived, ctx: HandlerContext) -> None:
            where = Conversation(
                platform=Platform.DISCORD,
                workspace_id=event.conversation.workspace_id,
                channel_id=ctx.match.captures["channel"],
            )
            await ctx.post(where, "Scheduled maintenance tonight at 22:00 UTC.")

        router.include(basics.router)


@pytest.fixture
def handlers() -> Handlers:
    return Handlers()


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


async def test_a_slash_command_with_options_reaches_handlers_as_typed_on_slack(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    put = next(c for c in emu.calls if c.method == "PUT")
    assert put.path == f"/applications/{emu.application_id}/commands", "global sync without a dev guild"
    assert {c["name"] for c in put.json} >= {
        "status",
        "ticket",
        "tickets",
        "incident",
        "subscribe",
        "unsubscribe",
        "support",
        "subscriptions",
        "component",
        "maintenance",
        "announce",
    }
    subscribe = next(c for c in put.json if c["name"] == "subscribe")
    assert [(o["name"], o["autocomplete"]) for o in subscribe["options"]] == [("components", True)]

    # Discord sends options in the order the user filled them in; handlers get Slack's order.
    run = await emu.run_command(world.sam, world.staff, "ticket", "close", reason="duplicate of #3", number=7)

    deferred = await emu.wait_for("POST", f"/interactions/{run['id']}/{run['token']}/callback")
    answer = await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    assert deferred.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert answer.content == "args: close 7 duplicate of #3"
    (event,) = handlers.received
    assert (event.name, event.args, event.event_id) == ("ticket", "close 7 duplicate of #3", run["id"])
    assert world.staff_role in event.actor.roles
    assert event.conversation.channel_id == world.staff.id


async def test_a_slow_command_is_deferred_at_once_and_answered_when_ready(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu

    run = await emu.run_command(world.casey, world.help, "status")

    # Discord got its answer while the handler was still working.
    deferred = await emu.wait_for("POST", f"/interactions/{run['id']}/{run['token']}/callback")
    assert deferred.json["type"] == 5
    assert not handlers.release.is_set()
    handlers.release.set()
    # A public answer: the private "thinking…" placeholder goes, the answer is a channel message.
    await emu.wait_for("DELETE", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    answer = await emu.wait_for("POST", f"/channels/{world.help.id}/messages")
    assert answer.content == "All systems operational."


async def test_a_button_still_works_after_the_bot_restarted(world, handlers, database, tmp_path, bots):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    emu = world.emu
    await emu.run_command(world.casey, world.help, "subscribe")
    offer = await emu.wait_for("POST", f"/channels/{world.help.id}/messages")
    buttons = [c for row in offer.json["components"] for c in row["components"]]
    assert [(b["label"], b["custom_id"]) for b in buttons] == [
        ("That solved it", "sb|kb:solved|reset-password"),
        ("I still need help", "sb|kb:more|reset-password"),
    ]
    message = emu.channel_messages(world.help)[-1]

    await stop_bot(bot)
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    assert len(emu.identifies) == 2, "a new gateway session: nothing survived in memory"

    click = await emu.click(world.casey, message, "sb|kb:solved|reset-password")

    acknowledged = await emu.wait_for("POST", f"/interactions/{click['id']}/{click['token']}/callback")
    answer = await emu.wait_for("POST", f"/webhooks/{emu.application_id}/{click['token']}")
    assert acknowledged.json == {"type": 6}
    assert answer.content == "clicked kb:solved=reset-password"
    assert answer.json["flags"] == EPHEMERAL
    (event,) = handlers.received
    assert (event.action_id, event.value, event.message_id) == ("kb:solved", "reset-password", message["id"])


async def test_a_long_answer_is_split_at_paragraphs_under_2000_characters(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    question = await emu.user_says(world.casey, world.help, "long answer")

    first = await emu.wait_for("POST", f"/channels/{question['id']}/messages")
    second = await emu.wait_for("POST", f"/channels/{question['id']}/messages")

    total = len(first.content) + len(second.content)
    assert total > 2500
    assert len(first.content) <= 2000 and len(second.content) <= 2000
    assert first.content.endswith("sign in again.") and second.content[0].isdigit(), "cut between paragraphs"


async def test_relayed_everyone_pings_nobody_but_the_oncall_role_is_pinged(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu

    await emu.user_says(world.casey, world.help, "relay @everyone @here <@&999> the site is down")

    relayed = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")
    allowed = relayed.json["allowed_mentions"]
    assert (allowed["parse"], allowed["users"], [str(r) for r in allowed["roles"]]) == (
        [],
        [],
        [world.staff_role],
    )
    assert relayed.content.startswith(f"<@&{world.staff_role}>")
    assert "@everyone" not in relayed.content and "@here" not in relayed.content
    assert "@\u200beveryone @\u200bhere <@&999> the site is down" in relayed.content


async def test_a_429_is_waited_out_and_the_message_still_arrives(world, handlers, database, tmp_path, bots):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    emu.fail_next(status=429, method="POST", path=f"/channels/{world.staff.id}/messages", retry_after=0.3)

    await emu.user_says(world.casey, world.help, "relay printer on fire")

    delivered = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")
    attempts = [c for c in emu.calls if c.path == f"/channels/{world.staff.id}/messages"]
    assert [c.status for c in attempts] == [429, 200]
    assert "printer on fire" in delivered.content


async def test_missing_access_is_reported_to_staff_once(world, handlers, database, tmp_path, bots):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    announcements = emu.add_channel(world.guild, "announcements")
    emu.deny_access(announcements)

    for _ in range(2):
        await emu.user_says(world.sam, world.help, f"post in {announcements.id}")
    notice = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")
    await bot.dispatcher.drain()

    attempts = [c for c in emu.calls if c.path == f"/channels/{announcements.id}/messages"]
    assert [c.status for c in attempts] == [403, 403], "each attempt refused, none retried"
    assert f"I can't post in channel `{announcements.id}` on discord (no_access)" in notice.content
    staff_posts = [c for c in emu.calls if c.path == f"/channels/{world.staff.id}/messages"]
    assert len(staff_posts) == 1, "staff told once"


async def test_a_channel_the_bot_cannot_see_is_not_even_tried(world, handlers, database, tmp_path, bots):
    emu = world.emu
    private = emu.add_channel(world.guild, "leadership", hidden_from_bot=True)
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)

    await emu.user_says(world.sam, world.help, f"post in {private.id}")
    notice = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")

    assert "(no_access)" in notice.content
    assert not [c for c in emu.calls if c.path.startswith(f"/channels/{private.id}")], (
        "the cached permissions said no: no request that would count toward Discord's invalid-request ban"
    )


async def test_a_public_answer_where_the_bot_cannot_post_goes_through_the_command_follow_up(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    emu.deny_access(world.help)  # e.g. Send Messages revoked; the bot's cache does not know yet
    handlers.release.set()

    run = await emu.run_command(world.casey, world.help, "status")

    answer = await emu.wait_for("POST", f"/webhooks/{emu.application_id}/{run['token']}")
    assert answer.content == "All systems operational."
    assert not answer.json.get("flags"), "public, like the answer it replaces"
    refused = [c for c in emu.calls if c.path == f"/channels/{world.help.id}/messages"]
    assert [c.status for c in refused] == [403]
    shown = emu.messages[answer_id(emu, answer)]
    assert shown["channel_id"] == world.help.id and not shown["flags"] & EPHEMERAL
    await bot.dispatcher.drain()
    assert not [c for c in emu.calls if c.path == f"/channels/{world.staff.id}/messages"], (
        "answered after all: nothing to report to staff"
    )


def answer_id(emu: DiscordEmulator, call) -> str:
    """The id of the message a follow-up call created (the emulator stores the bot's messages)."""
    return next(m["id"] for m in reversed(emu.messages.values()) if m["content"] == call.content)


async def test_a_command_without_a_reply_does_not_keep_thinking_forever(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu

    run = await emu.run_command(world.casey, world.help, "subscriptions")

    await emu.wait_for("POST", f"/interactions/{run['id']}/{run['token']}/callback")
    removed = await emu.wait_for(
        "DELETE", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original"
    )
    (event,) = handlers.received
    assert event.name == "subscriptions", "the handler ran and sent nothing"
    assert removed.status == 204
    assert not [m for m in emu.channel_messages(world.help) if m["flags"] & 128], "no placeholder left"


async def test_a_placeholder_already_answered_is_not_touched_again(world, handlers, database, tmp_path, bots):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu

    run = await emu.run_command(world.sam, world.staff, "ticket", "status", number=4)
    await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    await bot.dispatcher.drain()

    webhook_calls = [
        c for c in emu.calls if c.path.startswith(f"/webhooks/{emu.application_id}/{run['token']}")
    ]
    assert [c.method for c in webhook_calls] == ["PATCH"], "the private answer stays"


async def test_a_500_is_retried_and_the_message_arrives_exactly_once(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    emu.fail_next(status=500, method="POST", path=f"/channels/{world.staff.id}/messages")

    await emu.user_says(world.casey, world.help, "relay the printer is on fire")

    # discord.py waits a second before it retries a 5xx.
    delivered = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")
    await bot.dispatcher.drain()
    attempts = [c for c in emu.calls if c.path == f"/channels/{world.staff.id}/messages"]
    assert [c.status for c in attempts] == [500, 200]
    assert "the printer is on fire" in delivered.content
    stored = [m for m in emu.channel_messages(world.staff) if "printer" in m["content"]]
    assert len(stored) == 1


async def test_a_private_answer_after_the_interaction_token_expired_is_not_posted_publicly(
    world,
    database,
    tmp_path,
    bots,
) -> None:
    """A command's private answer (here `/support questions`-like staff data) comes after the
    15-minute token has run out (a backlog). It must not fall back to a public channel message."""
    release = asyncio.Event()
    router = Router("review")

    @router.on(CommandInvoked, command("status"))
    async def slow_private(event: CommandInvoked, ctx: HandlerContext) -> None:
        await release.wait()
        await ctx.reply(OutboundMessage(text="PRIVATE: for your eyes only", private_to=event.actor))

    bot, adapter = await start_bot(world, database, tmp_path, router=router)
    bots.append(bot)
    emulator = world.emu
    run = await emulator.run_command(world.casey, world.help, "status")
    await emulator.wait_for("POST", f"/interactions/{run['id']}/{run['token']}/callback")
    for pending in adapter.interactions._pending.values():
        pending.received -= 16 * 60  # the token has expired
    release.set()
    await bot.dispatcher.drain()
    leaked = [m for m in emulator.channel_messages(world.help) if "PRIVATE" in (m["content"] or "")]
    assert leaked == [], "a private answer was posted for everyone in the channel"
    in_dm = emulator.channel_messages(emulator.dm_channel(world.casey))
    assert [m["content"] for m in in_dm] == ["PRIVATE: for your eyes only"], "it went to the person's DMs"


def test_discord_tells_a_deleted_message_from_a_deleted_channel() -> None:
    from types import SimpleNamespace

    import discord

    from bot.adapters.base import DeliveryFailure
    from bot.adapters.discord.translate import delivery_error

    response = SimpleNamespace(status=404, reason="Not Found")
    message = delivery_error(discord.NotFound(response, {"code": 10008, "message": "Unknown Message"}))
    channel = delivery_error(discord.NotFound(response, {"code": 10003, "message": "Unknown Channel"}))
    assert (message.code, channel.code) == (DeliveryFailure.MESSAGE_GONE, DeliveryFailure.CHANNEL_GONE)
