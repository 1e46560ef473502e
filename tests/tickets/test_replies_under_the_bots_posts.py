"""A team member replying in the staff channel under a post of the bot's that is no ticket's card
(a digest, a broadcast's copy, an answer): the team's own talk, taken at once. Only while a staff
card is on its way (its post decided, its thread not noted yet) may the reply be an answer under
that card, worth waiting for."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from bot.adapters.base import DeliveryError
from bot.core import dispatch
from bot.core.events import MessageReceived
from bot.handlers.tickets import CARD_NOTED_WITHIN, NOT_PASSED_ON
from tests.fake_adapter import SentMessage
from tests.harness import STAFF_CHANNEL, BotHarness
from tests.tickets.conversation import escalated, tickets

STAFF_CHANNEL_GONE = DeliveryError("channel_not_found", permanent=True)


@pytest.fixture(autouse=True)
def tries_close_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "TOO_EARLY_DELAYS", (0.01, 0.01, 0.01))


async def replies_under_the_bots_post(bot: BotHarness, text: str, *, post: str) -> list[SentMessage]:
    """Sam replies in the staff channel under `post`, a post of the bot's made seconds ago."""
    thread = bot.staff_room.in_thread(post)
    message_id = f"r-{post}-{len(bot.adapter.sent)}"
    return await bot.send(
        MessageReceived(
            actor=bot.staff,
            conversation=thread,
            text=text,
            message_id=message_id,
            event_id=message_id,
            in_own_thread=True,
            thread_started_at=bot.clock.now - timedelta(seconds=5),
        )
    )


def tries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "too early" in r.getMessage()]


async def test_a_reply_under_the_bots_digest_with_no_card_on_its_way_is_the_teams_talk_at_once(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    await escalated(bot)  # its card posted and noted: nothing on its way
    caplog.set_level(logging.DEBUG, logger="bot.core.dispatch")

    said = await replies_under_the_bots_post(bot, "nice numbers this week", post="m-digest")

    assert said == [], "nobody is told anything"
    assert tries(caplog) == [], "taken at once, not held for a card"


async def test_a_reply_under_the_bots_post_while_a_card_is_on_its_way_waits_for_it_until_the_window_ends(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A card whose post failed is never noted: replies wait for it only within `CARD_NOTED_WITHIN`."""
    await escalated_without_a_card(bot)
    (ticket,) = await tickets(bot)
    assert ticket.staff_thread_id is None
    bot.adapter.failures.pop(STAFF_CHANNEL)
    caplog.set_level(logging.DEBUG, logger="bot.core.dispatch")

    (told,) = await replies_under_the_bots_post(bot, "on it", post="m-digest")

    assert told.text == NOT_PASSED_ON and told.delivery.message.private_to == bot.staff
    assert len(tries(caplog)) == 4, "the first try and one after each delay"

    caplog.clear()
    bot.clock.advance(seconds=CARD_NOTED_WITHIN.total_seconds() + 1)
    assert await replies_under_the_bots_post(bot, "and this?", post="m-report") == []
    assert tries(caplog) == [], "a card that never came holds no reply past the window"


async def test_a_card_posted_again_for_its_ticket_is_waited_for_too(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    to_customer = await escalated_without_a_card(bot)
    bot.clock.advance(seconds=CARD_NOTED_WITHIN.total_seconds() + 1)
    # Casey adds to her ticket: with no staff thread yet, the card goes out again (and fails again).
    await bot.customer_says("it also fails on mobile", thread=to_customer.ref.thread_id)
    bot.adapter.failures.pop(STAFF_CHANNEL)
    caplog.set_level(logging.DEBUG, logger="bot.core.dispatch")

    (told,) = await replies_under_the_bots_post(bot, "on it", post="m-digest")

    assert told.text == NOT_PASSED_ON
    assert len(tries(caplog)) == 4


async def escalated_without_a_card(bot: BotHarness) -> SentMessage:
    """Casey asks for a person while the staff channel refuses the bot: her card is never posted."""
    bot.adapter.fail_channel(STAFF_CHANNEL, STAFF_CHANNEL_GONE)
    sent = await bot.customer_says("can I talk to a human please")
    (to_customer,) = sent
    return to_customer
