"""Stopping the bot: events already accepted from a platform are answered before its connection closes."""

from __future__ import annotations

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.app import create_bot
from bot.core.events import Actor, Conversation, Delivery, MessageReceived, Platform, SentRef
from storage.db import Database
from tests.fake_adapter import FakeAdapter
from tests.harness import FakeClock, make_settings


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
