"""Stopping the bot: events already accepted from a platform are answered before its connection closes,
and the whole stop ends within STOP_GRACE_SECONDS, saying what it left for the next start."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.app import create_bot
from bot.core.context import HandlerContext
from bot.core.events import Actor, Conversation, Delivery, MessageReceived, Platform, SentRef
from bot.core.router import Router, pattern
from storage.db import Database
from tests.fake_adapter import FakeAdapter
from tests.harness import BotHarness, FakeClock, make_settings
from tests.status.conftest import subscribe


class ClosingAdapter(FakeAdapter):
    """Like a real platform client: once stopped, its connection is closed and nothing can be sent."""

    def __init__(self) -> None:
        super().__init__(Platform.CONSOLE)
        self.stopped = False

    async def stop(self) -> None:
        await super().stop()
        self.stopped = True

    async def send(self, delivery: Delivery) -> SentRef:
        if self.stopped:
            raise DeliveryError("connection closed", permanent=True, code=DeliveryFailure.UNAVAILABLE)
        return await super().send(delivery)


async def test_a_question_queued_when_the_bot_stops_is_still_answered(
    database: Database, tmp_path: object
) -> None:
    adapter = ClosingAdapter()
    bot = await create_bot(
        make_settings(tmp_path),
        adapters={Platform.CONSOLE: adapter},
        clock=FakeClock(),
        database=database,
        with_web=False,
    )
    await bot.start()
    community = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="community")
    # Five customers ask in one channel (one queue, handled in order); each platform has been told
    # "received" (the sink returned), and then the operator stops the bot.
    for n in range(1, 6):
        customer = Actor(platform=Platform.CONSOLE, id=f"C{n}", display_name=f"Customer {n}")
        await adapter.inject(
            MessageReceived(
                actor=customer,
                conversation=community,
                text="I need a person please",
                message_id=f"u{n}",
                event_id=f"u{n}",
            )
        )
    await bot.stop()

    answered = {m.ref.thread_id for m in adapter.in_channel("community")}
    assert answered == {f"u{n}" for n in range(1, 6)}, "replies were sent after the adapter had closed"
    assert all("ticket" in m.text.lower() for m in adapter.in_channel("community"))
    assert len(adapter.in_channel("staff")) == 5, "staff cards for new tickets were lost"


class StuckAdapter(FakeAdapter):
    """A platform that never answers a broadcast in the channel `stuck` (a hung connection)."""

    def __init__(self) -> None:
        super().__init__(Platform.CONSOLE)
        self.stuck = asyncio.Event()

    async def send(self, delivery: Delivery) -> SentRef:
        if delivery.conversation.channel_id == "stuck" and delivery.reply_to is None:
            self.stuck.set()
            await asyncio.Event().wait()
        return await super().send(delivery)


async def test_a_stop_gives_up_within_its_grace_and_says_what_was_left(
    database: Database, tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    grace = 1.0
    adapter = StuckAdapter()
    bot = await create_bot(
        make_settings(tmp_path, stop_grace_seconds=grace),
        adapters={Platform.CONSOLE: adapter},
        clock=FakeClock(),
        database=database,
        with_web=False,
    )
    blocking = Router("blocking")
    entered = asyncio.Event()

    @blocking.on(MessageReceived, pattern(r"^wait forever$", score=1.0))
    async def wait_forever(event: MessageReceived, ctx: HandlerContext) -> None:
        entered.set()
        await asyncio.Event().wait()

    bot.dispatcher.router = Router("test-root").include(blocking, bot.dispatcher.router)
    await bot.start()
    harness = BotHarness(bot, adapter, FakeClock())
    await subscribe(harness, "stuck")
    await harness.staff_runs("/announce Version 2.3 is out")
    await asyncio.wait_for(adapter.stuck.wait(), 10)  # the broadcast worker is sending it, for ever
    community = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="community")
    for n in range(1, 4):  # one channel, one queue: the first blocks, two wait behind it
        customer = Actor(platform=Platform.CONSOLE, id=f"C{n}", display_name=f"Customer {n}")
        await adapter.inject(
            MessageReceived(
                actor=customer,
                conversation=community,
                text="wait forever",
                message_id=f"w{n}",
                event_id=f"w{n}",
            )
        )
    await asyncio.wait_for(entered.wait(), 10)

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="bot.app"):
        await asyncio.wait_for(bot.stop(), grace + 10)  # an unbounded stop fails here, not hangs
    took = time.monotonic() - started

    assert took < grace + 0.5, f"stop took {took:.2f} s with a grace of {grace} s"
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stop:")]
    assert line.startswith("stop: gave up after "), line
    assert "2 queued events and 1 being handled were not answered" in line, line
    assert "1 outbox delivery stays queued for the next start" in line, line


async def test_a_stop_with_nothing_in_hand_says_it_is_done(
    database: Database, tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await create_bot(
        make_settings(tmp_path),
        adapters={Platform.CONSOLE: FakeAdapter(Platform.CONSOLE)},
        clock=FakeClock(),
        database=database,
        with_web=False,
    )
    await bot.start()
    with caplog.at_level(logging.INFO, logger="bot.app"):
        await bot.stop()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stop:")]
    assert line.startswith("stop: done in "), line
    assert line.endswith(" s"), line
