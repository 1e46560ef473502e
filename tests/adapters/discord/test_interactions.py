"""Interactions: a command or click is deferred at once and answered when the handler is ready,
privately in place of the "thinking…" placeholder or publicly (through the command's follow-up where
the bot may not post), the placeholder removed when nothing answers; buttons work after a restart;
a private answer whose token expired goes to the person's DMs, never to the channel; a follow-up that
hangs is given up, not sent twice."""

from __future__ import annotations

import asyncio
import time

from bot.core.context import HandlerContext
from bot.core.events import Button, CommandInvoked, Conversation, Delivery, OutboundMessage, Platform
from bot.core.outbound import Outbound
from bot.core.router import Router, command
from tests.adapters.discord.harness import (
    EPHEMERAL,
    answer_id,
    connect,
    custom_id,
    start_bot,
    stop_bot,
)


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
    refused = [c for c in emu.calls if c.method == "POST" and c.path == f"/channels/{world.help.id}/messages"]
    assert [c.status for c in refused] == [403]
    shown = emu.messages[answer_id(emu, answer)]
    assert shown["channel_id"] == world.help.id and not shown["flags"] & EPHEMERAL
    await bot.dispatcher.drain()
    assert not [
        c for c in emu.calls if c.method == "POST" and c.path == f"/channels/{world.staff.id}/messages"
    ], "answered after all: nothing to report to staff"


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


async def test_a_private_answer_after_the_interaction_token_expired_is_not_posted_publicly(
    world,
    database,
    tmp_path,
    bots,
) -> None:
    """A command's private answer (here `/support questions`-like staff data) comes after the
    15-minute token has run out (a backlog). It must not fall back to a public channel message."""
    started, release = asyncio.Event(), asyncio.Event()
    router = Router("review")

    @router.on(CommandInvoked, command("status"))
    async def slow_private(event: CommandInvoked, ctx: HandlerContext) -> None:
        started.set()
        await release.wait()
        await ctx.reply(OutboundMessage(text="PRIVATE: for your eyes only", private_to=event.actor))

    bot, adapter = await start_bot(world, database, tmp_path, router=router)
    bots.append(bot)
    emulator = world.emu
    run = await emulator.run_command(world.casey, world.help, "status")
    await emulator.wait_for("POST", f"/interactions/{run['id']}/{run['token']}/callback")
    await asyncio.wait_for(started.wait(), 5)  # deferred, kept in the inbox, and being handled
    for pending in adapter.interactions._pending.values():
        pending.received -= 16 * 60  # the token has expired
    release.set()
    await bot.dispatcher.drain()
    leaked = [m for m in emulator.channel_messages(world.help) if "PRIVATE" in (m["content"] or "")]
    assert leaked == [], "a private answer was posted for everyone in the channel"
    in_dm = emulator.channel_messages(emulator.dm_channel(world.casey))
    assert [m["content"] for m in in_dm] == ["PRIVATE: for your eyes only"], "it went to the person's DMs"


async def test_a_private_answer_to_a_click_whose_follow_up_hangs_is_given_up_not_sent_twice(world, adapters):
    """A follow-up takes no nonce: Discord applies it but answers late, so the bot gives it up after its
    timeout, counted as failed, rather than post a second copy or hold the channel for the stall."""
    emu = world.emu
    adapter, inbox = await connect(world, adapters, send_timeout=0.5)
    help_channel = Conversation(
        platform=Platform.DISCORD, workspace_id=world.guild.id, channel_id=world.help.id
    )
    solved = Button(action_id="kb:solved", label="That solved it", value="reset-password")
    await adapter.send(
        Delivery(
            conversation=help_channel,
            message=OutboundMessage(text="Did this solve it?", buttons=(solved,)),
            idempotency_key="offer",
        )
    )
    offer = emu.channel_messages(world.help)[-1]
    await emu.click(world.casey, offer, custom_id(offer, "That solved it"))
    click = await inbox.next()
    emu.stall_next(seconds=3, path="/webhooks/*")
    outbound = Outbound({Platform.DISCORD: adapter}, base_delay=0.01)

    asked = time.monotonic()
    thanks = OutboundMessage(text="Glad it helped!", private_to=click.actor)
    sent = await outbound.send(Delivery(conversation=click.conversation, message=thanks, reply_to=click))
    waited = time.monotonic() - asked

    assert sent is None, "given up in doubt"
    assert waited < 3, "not held for the whole stall"
    follow_ups = [c for c in emu.calls if c.method == "POST" and c.path.startswith("/webhooks/")]
    assert len(follow_ups) == 1, "not sent again"
    failed = {"platform": "discord", "result": "failed"}
    assert outbound.metrics.registry.get_sample_value("supportbot_deliveries_total", failed) == 1


async def test_a_private_answer_whose_placeholder_edit_hangs_is_edited_again_not_followed_up(world, adapters):
    """Replacing the "thinking…" placeholder is an edit, harmless to repeat: after the timeout the core
    sends the answer again and it replaces the placeholder again, rather than coming as a second
    message."""
    emu = world.emu
    adapter, inbox = await connect(world, adapters, send_timeout=0.5)
    run = await emu.run_command(world.casey, world.help, "subscriptions")
    asked = await inbox.next()
    original = f"/webhooks/{emu.application_id}/{run['token']}/messages/@original"
    emu.stall_next(seconds=3, path=original)
    outbound = Outbound({Platform.DISCORD: adapter}, base_delay=0.01)

    started = time.monotonic()
    answer = OutboundMessage(text="You follow: API, Payments.", private_to=asked.actor)
    sent = await outbound.send(Delivery(conversation=asked.conversation, message=answer, reply_to=asked))
    waited = time.monotonic() - started

    assert sent is not None
    assert waited < 3, "not held for the whole stall"
    edits = [c for c in emu.calls if c.method == "PATCH" and c.path == original]
    assert [c.content for c in edits] == ["You follow: API, Payments."] * 2
    assert not [c for c in emu.calls if c.method == "POST" and c.path.startswith("/webhooks/")]
