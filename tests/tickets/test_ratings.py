"""The customer's rating of a closed ticket (CSAT): a second click on another score changes it, and
says so; the same score again changes nothing. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.fake_adapter import SentMessage
from tests.harness import STAFF_CHANNEL, BotHarness, button
from tests.tickets.conversation import escalated, tickets, transcript


async def _rating_buttons(bot: BotHarness) -> SentMessage:
    await escalated(bot)
    sent = await bot.staff_runs("/ticket close 1 export worker fixed")
    question = next(m for m in sent if m.channel_id == "community")
    sent = await bot.click(bot.customer, button(question, "Yes"), on=question)
    return next(m for m in sent if m.delivery.message.buttons)


async def test_a_customer_who_rates_again_is_told_the_rating_changed(bot: BotHarness) -> None:
    rating = await _rating_buttons(bot)
    (thanks, _) = await bot.click(bot.customer, button(rating, "2"), on=rating)
    assert thanks.text == "Thanks for rating ticket #1 2/5!"

    sent = await bot.click(bot.customer, button(rating, "4"), on=rating)
    to_customer = [m.text for m in sent if m.channel_id != STAFF_CHANNEL]
    assert to_customer == ["Changed your rating of ticket #1 from 2/5 to 4/5."]
    assert [m.text for m in sent if m.channel_id == STAFF_CHANNEL] == [
        "Casey changed their rating of ticket #1 from 2/5 to 4/5."
    ]
    (ticket,) = await tickets(bot)
    assert ticket.rating == 4
    assert [text for kind, text in await transcript(bot, 1) if text.startswith("Rated")] == [
        "Rated 2/5",
        "Rated 4/5 (was 2/5)",
    ]


async def test_the_same_rating_twice_changes_nothing_and_tells_nobody_again(bot: BotHarness) -> None:
    rating = await _rating_buttons(bot)
    await bot.click(bot.customer, button(rating, "5"), on=rating)
    sent = await bot.click(bot.customer, button(rating, "5"), on=rating)
    assert [m.text for m in sent] == ["You rated ticket #1 5/5 already; thanks!"]
    assert [text for _, text in await transcript(bot, 1) if text.startswith("Rated")] == ["Rated 5/5"]
