"""Corners of the support conversation a review found wrong: a staff answer in the customer's thread,
replies to a close question, other people in a ticket's thread, the team's own words, numbers that
start a summary, long messages, rephrased questions, product words that sound angry, and what the bot
promises about closed tickets. Each test failed before its fix."""

from __future__ import annotations

from bot.adapters.base import DeliveryError
from bot.core.events import Conversation, Platform
from bot.tickets.clocks import check_ticket_clocks
from tests.harness import STAFF_CHANNEL, BotHarness, button
from tests.tickets.conversation import escalated, tickets, transcript


async def _clocks(bot: BotHarness) -> dict[str, int]:
    return await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)


def _dm(bot: BotHarness) -> Conversation:
    return Conversation(platform=Platform.FAKE, workspace_id="W1", channel_id="D-C1", is_direct=True)


async def test_staff_answering_in_the_customers_thread_stops_the_first_response_clock(
    bot: BotHarness,
) -> None:
    reply, _ = await escalated(bot)
    await bot.says(bot.staff, "Hi Casey, looking at it now", thread=reply.ref.thread_id)
    bot.clock.advance(hours=4, minutes=5)
    before = len(bot.adapter.sent)
    result = await _clocks(bot)
    told = [m.text for m in bot.adapter.sent[before:] if m.channel_id == "community"]
    assert result["breached"] == 0 and not told, (
        f"staff already answered, yet the ticket was re-escalated and the customer told: {told}"
    )


async def test_a_reply_after_a_confirmed_close_does_not_reopen_an_older_ticket(bot: BotHarness) -> None:
    dm = _dm(bot)
    await bot.customer_dms("I need a human")  # ticket #1
    await bot.staff_runs("/ticket close 1")
    bot.clock.advance(hours=73)
    assert (await _clocks(bot))["auto_closed"] == 1  # #1 closed for lack of an answer
    await bot.customer_runs("/ticket my invoices show the wrong currency", conversation=dm)  # ticket #2
    sent = await bot.staff_runs("/ticket close 2")
    question = next(m for m in sent if m.channel_id == "D-C1")
    await bot.click(bot.customer, button(question, "Yes"), on=question)  # #2 confirmed solved
    sent = await bot.customer_dms("thanks, all good now")
    states = {t.number: t.state for t in await tickets(bot)}
    assert states == {1: "closed", 2: "closed"}, (
        f"a thank-you after confirming #2 reopened the old #1: {states}; sent {[m.text for m in sent]}"
    )


async def test_replying_while_asked_to_confirm_reopens_as_the_status_card_promises(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket claim 1")
    await bot.staff_runs("/ticket close 1 should be fixed")
    (card,) = await bot.customer_runs("/ticket status 1")
    assert "or reply to reopen" in card.text  # what the customer is promised
    await bot.customer_says("no, it still fails with error 500", thread=reply.ref.thread_id)
    (ticket,) = await tickets(bot)
    assert ticket.state != "awaiting_confirmation", "the customer replied, but the ticket was not reopened"


async def test_a_customer_who_replied_is_not_told_we_didnt_hear_back(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1 should be fixed")
    await bot.customer_says("no, it still fails with error 500", thread=reply.ref.thread_id)
    bot.clock.advance(hours=73)
    before = len(bot.adapter.sent)
    await _clocks(bot)
    told = [m.text for m in bot.adapter.sent[before:] if m.channel_id == "community"]
    assert not any("we didn't hear back" in t for t in told), told


async def test_a_second_customer_asking_for_a_person_in_a_ticket_thread_gets_an_answer(
    bot: BotHarness,
) -> None:
    reply, _ = await escalated(bot)
    sent = await bot.says(bot.other_customer, "can I talk to a human too please?", thread=reply.ref.thread_id)
    assert sent, "Robin asked for a person and got no reply at all; nothing reached the team"


async def test_a_ticket_summary_starting_with_a_number_opens_a_ticket(bot: BotHarness) -> None:
    sent = await bot.customer_runs("/ticket 3 users cannot log in since the upgrade")
    assert any("ticket **#1**" in m.text for m in sent), [m.text for m in sent]
    assert len(await tickets(bot)) == 1


async def test_the_teams_own_messages_in_community_channels_are_left_alone(bot: BotHarness) -> None:
    sent = await bot.says(bot.staff, "If it happens again, open a ticket and we'll dig in")
    assert sent == [] and await tickets(bot) == [], [m.text for m in sent]
    sent = await bot.says(bot.staff, "Tip: you can always talk to a human by asking here")
    assert sent == [] and await tickets(bot) == [], [m.text for m in sent]


async def test_a_confirmed_closed_ticket_is_not_promised_to_reopen_on_reply(bot: BotHarness) -> None:
    reply, card = await escalated(bot)
    sent = await bot.staff_runs("/ticket close 1")
    question = next(m for m in sent if m.channel_id == "community")
    await bot.click(bot.customer, button(question, "Yes"), on=question)
    (status,) = await bot.customer_runs("/ticket status 1")
    promised = "Reply in its thread if you still need help and it reopens" in status.text
    await bot.customer_says("it broke again, same error", thread=reply.ref.thread_id)
    (ticket, *_) = await tickets(bot)
    assert not promised or ticket.state != "closed", (
        "the status card promises a reply reopens the ticket, but replying left it closed"
    )
    # The staff side says the same: "The customer can reopen it by replying."
    staff_thread = bot.staff_room.in_thread(card.ref.message_id)
    (answer,) = await bot.says(bot.staff, "one more thing", conversation=staff_thread)
    reopens = "customer can reopen it by replying" in answer.text
    await bot.customer_says("hello? still broken", thread=reply.ref.thread_id)
    (ticket, *_) = await tickets(bot)
    assert not reopens or ticket.state != "closed"


async def test_a_ticket_whose_first_post_failed_does_not_swallow_the_whole_channel(bot: BotHarness) -> None:
    bot.adapter.fail_channel("community", DeliveryError("missing_access", permanent=True))
    await bot.customer_runs("/ticket my export failed with error 500")
    del bot.adapter.failures["community"]
    (ticket,) = await tickets(bot)
    sent = await bot.says(bot.other_customer, "how do I reset my api key?")
    assert sent and not any("someone else's ticket" in m.text for m in sent), (
        f"ticket #1 kept the whole channel as its home ({ticket.conversation_key}); "
        "another customer's question in the channel got no answer"
    )


async def test_a_long_escalated_message_is_kept_whole_in_the_transcript(bot: BotHarness) -> None:
    log = "\n".join(f"line {i}: ERROR worker crashed at step {i}" for i in range(200))
    text = "can I talk to a human please, here is the log:\n" + log
    assert 2000 < len(text) <= 20_000
    await bot.customer_dms(text)
    lines = await transcript(bot, 1)
    assert lines[0] == ("customer", text), f"kept {len(lines[0][1])} of {len(text)} characters"


async def test_raising_the_priority_of_a_waiting_ticket_tells_staff_the_truth(bot: BotHarness) -> None:
    await escalated(bot)
    bot.clock.advance(hours=2)
    (sent,) = await bot.staff_runs("/ticket priority 1 urgent")  # urgent = 15 minutes: 1h45 overdue
    assert "answer due in less than a minute" not in sent.text, sent.text


async def test_unknown_tickets_subcommand_gets_a_clear_reply(bot: BotHarness) -> None:
    (reply,) = await bot.customer_runs("/tickets closed")
    assert "closed" in reply.text or "don't know" in reply.text, reply.text


async def test_that_solved_it_does_not_claim_a_closed_ticket_stays_open(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    sent = await bot.staff_runs("/ticket close 1")
    question = next(m for m in sent if m.text.endswith("Did this solve it?"))
    await bot.click(bot.customer, button(question, "Yes"), on=question)
    (ack,) = await bot.click(bot.customer, button(reply, "That solved it"), on=reply)
    assert "stays open" not in ack.text, ack.text


async def test_an_ordinary_question_about_the_trash_is_answered_not_escalated_as_frustration(
    bot: BotHarness,
) -> None:
    sent = await bot.customer_dms("How do I restore a deleted file from the trash?")
    assert not any("sounds frustrated" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)


async def test_a_thank_you_instead_of_the_button_keeps_the_close_question_open(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1 should be fixed")
    sent = await bot.customer_says("thanks, works now", thread=reply.ref.thread_id)
    (answer,) = [m for m in sent if m.channel_id != STAFF_CHANNEL]
    assert "Yes, it's solved" in answer.text
    (ticket,) = await tickets(bot)
    assert ticket.state == "awaiting_confirmation"
    assert ("customer", "thanks, works now") in await transcript(bot, 1)


async def test_a_thank_you_in_a_dm_is_acknowledged_not_escalated(bot: BotHarness) -> None:
    (answer,) = await bot.customer_dms("thank you so much!")
    assert answer.text.startswith("Glad that's sorted")
    assert await tickets(bot) == []


async def test_an_error_code_in_capitals_is_not_shouting(bot: BotHarness) -> None:
    sent = await bot.customer_dms("I get ERR_SSL_PROTOCOL_ERROR from the API when I connect")
    assert not any("shouting" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)


async def test_a_ticket_number_alone_still_shows_its_status(bot: BotHarness) -> None:
    await escalated(bot)
    (card,) = await bot.customer_runs("/ticket 1")
    assert card.text.startswith("Ticket #1: can I talk to a human please")


async def test_a_customers_summary_may_start_with_a_staff_word(bot: BotHarness) -> None:
    sent = await bot.customer_runs("/ticket close my account please, I am moving to another tool")
    assert any("ticket **#1**" in m.text for m in sent), [m.text for m in sent]
    sent = await bot.customer_runs("/ticket status page shows yesterday's data")
    assert any("ticket **#2**" in m.text for m in sent), [m.text for m in sent]
    assert [t.summary for t in await tickets(bot)] == [
        "close my account please, I am moving to another tool",
        "status page shows yesterday's data",
    ]


async def test_a_customer_naming_a_ticket_with_a_staff_command_is_refused(bot: BotHarness) -> None:
    await escalated(bot)
    (refusal,) = await bot.customer_runs("/ticket close 1")
    assert refusal.text.startswith("That's for the support team only.")
    assert [t.state for t in await tickets(bot)] == ["open"]


async def test_a_closed_tickets_priority_is_left_alone(bot: BotHarness) -> None:
    await escalated(bot)
    sent = await bot.staff_runs("/ticket close 1")
    question = next(m for m in sent if m.channel_id == "community")
    await bot.click(bot.customer, button(question, "Yes"), on=question)
    (answer,) = await bot.staff_runs("/ticket priority 1 urgent")
    assert answer.text == "Ticket #1 is closed; its priority no longer matters."
    assert [t.priority for t in await tickets(bot)] == ["normal"]


async def test_a_right_to_left_override_typed_in_a_command_does_not_reverse_the_answer(
    bot: BotHarness,
) -> None:
    (answer,) = await bot.customer_runs("/ticket status \u202e12x")
    assert "\u202e" not in answer.text
    assert answer.text.startswith("`12x` isn't a ticket number.")
