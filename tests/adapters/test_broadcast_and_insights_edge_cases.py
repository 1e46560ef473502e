"""Edges a review found in status broadcasts, insights and Discord interactions: a deleted incident
card turning a subscription off, a delivery that crashes every time, staff questions counted as
customers', a question forging report lines, a private answer after the interaction token expired.
Each test failed before its fix."""

from __future__ import annotations

import asyncio

from bot.adapters.base import DeliveryError
from bot.core.context import HandlerContext
from bot.core.events import CommandInvoked, Conversation, Delivery, OutboundMessage, Platform, SentRef
from bot.core.router import Router, command
from bot.status.broadcast.pacing import LanePolicy
from bot.status.broadcast.worker import BroadcastWorker, WorkerConfig
from storage import broadcast_repo
from tests.adapters.discord.harness import start_bot
from tests.fake_adapter import FakeAdapter
from tests.harness import BotHarness
from tests.status.conftest import deliver, received, subscribe

# -- status broadcasts ------------------------------------------------------------------------------


async def test_an_edit_of_a_deleted_first_notice_does_not_turn_off_the_subscription(
    bot: BotHarness,
) -> None:
    """Someone deletes the bot's incident card (Discord answers the edit with 404 Unknown Message,
    which the Discord adapter maps to `message_not_found`). The channel still works: the
    subscription must stay on, and staff must not be told the bot can't post there."""
    await subscribe(bot, "news")
    await bot.staff_runs("/incident open api minor Slow API")
    await deliver(bot)
    real_send = bot.adapter.send

    async def send(delivery: Delivery) -> SentRef:
        if delivery.edit is not None and delivery.conversation.channel_id == "news":
            raise DeliveryError("Discord: Unknown Message", permanent=True, code="message_not_found")
        return await real_send(delivery)

    bot.adapter.send = send  # type: ignore[method-assign]
    await bot.staff_runs("/incident update 1 monitoring Fix deployed")
    await deliver(bot)
    assert any("Fix deployed" in m.text for m in received(bot, "news")), "the update itself was posted"
    async with bot.bot.database.transaction() as session:
        found = await broadcast_repo.get_subscription(
            session, platform="fake", workspace_id="W1", channel_id="news"
        )
    assert found is not None
    assert found.active, f"subscription turned off because an edit failed ({found.disabled_reason})"
    assert not [m for m in bot.staff_posts() if "turned off its subscription" in m.text]


# -- insights ---------------------------------------------------------------------------------------


async def test_staff_questions_are_not_counted_as_recurring_customer_questions(bot: BotHarness) -> None:
    await bot.customer_says("my csv export failed")
    staff_dm = Conversation(platform=Platform.FAKE, workspace_id="W1", channel_id="D-S1", is_direct=True)
    await bot.says(bot.staff, "my csv export failed", conversation=staff_dm)
    await bot.says(bot.staff, "why did my data export fail?", conversation=staff_dm)
    (report,) = await bot.staff_runs("/support questions 7")
    assert "`export-failed`: asked 1×" in report.text, report.text


async def test_a_customers_question_cannot_forge_lines_of_the_staff_report(bot: BotHarness) -> None:
    await bot.customer_dms(
        "my csv export failed\n- `refund-policy`: asked 999×, solved 0, escalated 999 (e.g. \u201cx\u201d)"
    )
    (report,) = await bot.staff_runs("/support questions 7")
    forged = [line for line in report.text.splitlines() if line.startswith("- `refund-policy`")]
    assert forged == [], report.text


# -- Discord interactions ---------------------------------------------------------------------------


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
    for pending in adapter._pending.values():
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

    from bot.adapters.discord.adapter import _delivery_error

    response = SimpleNamespace(status=404, reason="Not Found")
    message = _delivery_error(discord.NotFound(response, {"code": 10008, "message": "Unknown Message"}))
    channel = _delivery_error(discord.NotFound(response, {"code": 10003, "message": "Unknown Channel"}))
    assert (message.code, channel.code) == ("message_not_found", "not_found")


async def test_a_delivery_that_crashes_every_time_is_given_up_not_retried_forever(bot: BotHarness) -> None:
    class Crashing(FakeAdapter):
        async def send(self, delivery: Delivery) -> SentRef:
            raise RuntimeError("a bug in the adapter")

    await subscribe(bot, "news")
    await bot.staff_runs("/announce Version 2.3 is out")
    worker = BroadcastWorker(
        bot.bot.database,
        {Platform.FAKE: Crashing(Platform.FAKE)},
        policy=lambda lane: LanePolicy(rate=None),
        staff_channel=None,
        page_url="http://status.test/",
        config=WorkerConfig(max_attempts=3, base_backoff=0.01, max_backoff=0.02),
    )

    await worker.run_until_idle(limit_s=10)

    async with bot.bot.database.transaction() as session:
        assert await broadcast_repo.delivery_counts(session) == {broadcast_repo.FAILED: 1}


async def test_an_update_to_a_deleted_first_notice_stands_at_the_top_level(bot: BotHarness) -> None:
    await subscribe(bot, "news")
    await bot.staff_runs("/incident open api minor Slow API")
    await deliver(bot)
    real_send = bot.adapter.send

    async def send(delivery: Delivery) -> SentRef:
        if delivery.conversation.channel_id == "news" and delivery.conversation.thread_id is not None:
            raise DeliveryError("Discord: Unknown Message", permanent=True, code="message_not_found")
        return await real_send(delivery)

    bot.adapter.send = send  # type: ignore[method-assign]
    await bot.staff_runs("/incident update 1 monitoring Fix deployed")
    await deliver(bot)

    (update,) = [m for m in received(bot, "news") if "Fix deployed" in m.text and m.delivery.edit is None]
    assert update.delivery.conversation.thread_id is None
