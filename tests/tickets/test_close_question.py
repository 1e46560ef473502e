"""Which "Did this solve it?" a click answers: only the latest question closes or reopens a ticket.
A button from an earlier round, or one posted before rounds were counted that could be from one, is
answered with what to do instead. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.core.events import Button
from bot.tickets.clocks import check_ticket_clocks
from storage.db import Database
from tests.fake_adapter import SentMessage
from tests.harness import STAFF_CHANNEL, BotHarness, button, make_settings
from tests.tickets.conversation import escalated, tickets


async def _close_question(bot: BotHarness) -> SentMessage:
    sent = await bot.staff_runs("/ticket close 1")
    return next(m for m in sent if m.text.endswith("Did this solve it?"))


async def _asked_again(bot: BotHarness) -> tuple[SentMessage, SentMessage]:
    """The team asks, the customer says No, the team asks again: (first question, second question)."""
    await escalated(bot)
    await bot.staff_runs("/ticket claim 1")
    first = await _close_question(bot)
    await bot.click(bot.customer, button(first, "No"), on=first)
    return first, await _close_question(bot)


async def _state(bot: BotHarness) -> str:
    (ticket,) = await tickets(bot)
    return ticket.state


async def test_yes_on_an_earlier_question_leaves_the_latest_one_open(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = await _asked_again(bot)
    with caplog.at_level(logging.INFO):
        sent = await bot.click(bot.customer, button(first, "Yes"), on=first)
    (answer,) = sent
    assert answer.delivery.message.private_to == bot.customer
    assert "earlier" in answer.text and "latest" in answer.text, answer.text
    assert await _state(bot) == "awaiting_confirmation", "an old Yes closed the ticket"
    (line,) = [r for r in caplog.records if "earlier close question" in r.getMessage()]
    assert getattr(line, "correlation_id", "-") != "-"

    sent = await bot.click(bot.customer, button(second, "Yes"), on=second)
    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.closed_how) == ("closed", "confirmed")
    assert any("confirmed ticket #1 is solved" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)


async def test_no_on_an_earlier_question_does_not_reopen_the_ticket(bot: BotHarness) -> None:
    first, _second = await _asked_again(bot)
    (answer,) = await bot.click(bot.customer, button(first, "No"), on=first)
    assert "latest" in answer.text, answer.text
    assert await _state(bot) == "awaiting_confirmation", "an old No reopened the ticket"


async def test_the_thank_you_reminder_answers_only_the_question_it_followed(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1 should be fixed")
    sent = await bot.customer_says("thanks, works now", thread=reply.ref.thread_id)
    (reminder,) = [m for m in sent if m.channel_id != STAFF_CHANNEL]
    await bot.customer_says("oh no, it fails again", thread=reply.ref.thread_id)  # reopens
    second = await _close_question(bot)

    (answer,) = await bot.click(bot.customer, button(reminder, "Yes, it's solved"), on=reminder)
    assert "latest" in answer.text, answer.text
    assert await _state(bot) == "awaiting_confirmation"
    await bot.click(bot.customer, button(second, "Yes"), on=second)
    assert await _state(bot) == "closed"


def _from_before_rounds(answer: str, label: str) -> Button:
    """A button as the bot posted them before rounds were counted: the ticket number alone."""
    return Button(action_id=f"ticket.confirm:{answer}", label=label, value="1")


async def test_a_button_from_before_rounds_answers_a_question_asked_only_once(bot: BotHarness) -> None:
    await escalated(bot)
    question = await _close_question(bot)
    await bot.click(bot.customer, _from_before_rounds("yes", "Yes, it's solved"), on=question)
    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.closed_how) == ("closed", "confirmed")


async def test_a_button_from_before_rounds_asks_again_once_there_were_several(bot: BotHarness) -> None:
    """It may answer any of them, so it answers none: the reply carries the latest question's buttons."""
    first, _second = await _asked_again(bot)
    (answer,) = await bot.click(bot.customer, _from_before_rounds("yes", "Yes, it's solved"), on=first)
    assert answer.delivery.message.private_to == bot.customer
    assert await _state(bot) == "awaiting_confirmation", "a button of unknown round closed the ticket"
    (answer,) = await bot.click(bot.customer, _from_before_rounds("no", "No, I still need help"), on=first)
    assert await _state(bot) == "awaiting_confirmation", "a button of unknown round reopened the ticket"

    await bot.click(bot.customer, button(answer, "Yes"), on=answer)
    assert await _state(bot) == "closed"


async def test_an_answer_that_is_neither_yes_nor_no_changes_nothing(bot: BotHarness) -> None:
    """A forged or garbled action id (`ticket.confirm:maybe`, or none after the colon) was taken
    for No and reopened the ticket."""
    await escalated(bot)
    question = await _close_question(bot)
    value = button(question, "Yes").value
    for action_id in ("ticket.confirm:maybe", "ticket.confirm", "ticket.confirm:"):
        garbled = Button(action_id=action_id, label="?", value=value)
        sent = await bot.click(bot.customer, garbled, on=question)
        assert await _state(bot) == "awaiting_confirmation", f"{action_id} reopened the ticket"
        (answer,) = sent
        assert "broken" in answer.text, answer.text


async def test_no_after_the_question_closed_it_unanswered_reopens_as_a_reply_would(bot: BotHarness) -> None:
    await escalated(bot)
    question = await _close_question(bot)
    bot.clock.advance(hours=73)
    await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)
    assert await _state(bot) == "closed"

    sent = await bot.click(bot.customer, button(question, "No"), on=question)
    assert [m.text for m in sent if m.channel_id != STAFF_CHANNEL] == [
        "Sorry it isn't solved yet. I've reopened ticket **#1** and told the team; they'll reply here."
    ]
    assert any("reopened" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)
    assert await _state(bot) == "claimed"


async def test_no_long_after_the_question_closed_it_unanswered_says_how_to_get_help(bot: BotHarness) -> None:
    await escalated(bot)
    question = await _close_question(bot)
    bot.clock.advance(hours=73)
    await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)
    bot.clock.advance(days=15)

    (answer,) = await bot.click(bot.customer, button(question, "No"), on=question)
    assert answer.text == (
        "Ticket #1 is closed now; nothing to confirm. To get more help, ask again or open a new ticket "
        "with `/ticket`."
    )
    assert await _state(bot) == "closed"


async def test_a_one_hour_close_question_tells_the_team_one_hour(database: Database, tmp_path: Path) -> None:
    bot = await BotHarness.create(make_settings(tmp_path, close_confirm_hours=1), database=database)
    try:
        await escalated(bot)
        sent = await bot.staff_runs("/ticket close 1")
        assert any(m.text.endswith("or after 1 hour without an answer.") for m in sent), [
            m.text for m in sent
        ]
    finally:
        await bot.close()
