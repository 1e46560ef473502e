"""A customer the bot cannot reach (the bot not allowed where their ticket lives, their DMs closed):
what the team writes them is no answer until it reaches them. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.core.events import Conversation, Platform
from bot.tickets.clocks import check_ticket_clocks
from storage import reports_repo
from tests.fake_adapter import SentMessage
from tests.harness import STAFF_CHANNEL, BotHarness, button
from tests.tickets.conversation import escalated, tickets, transcript

NOT_ALLOWED = DeliveryError("Missing Access", permanent=True, code=DeliveryFailure.NO_ACCESS)


async def _first_replies(bot: BotHarness) -> dict[int, object]:
    """What the reports take for each ticket's first response."""
    now = bot.clock.now
    async with bot.bot.database.session() as session:
        return dict(await reports_repo.first_staff_replies(session, start=now - timedelta(days=1), end=now))


async def _clocks(bot: BotHarness) -> dict[str, int]:
    return await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)


async def test_a_staff_answer_that_never_reached_the_customer_is_no_first_response(bot: BotHarness) -> None:
    _, card = await escalated(bot)
    bot.adapter.fail_channel("community", NOT_ALLOWED)
    bot.clock.advance(minutes=10)
    sent = await bot.says(
        bot.staff, "Which file format was it?", conversation=bot.staff_room, thread=card.ref.message_id
    )
    assert [m.channel_id for m in sent] == [STAFF_CHANNEL]
    assert "I couldn't pass that on to Casey" in sent[0].text

    (ticket,) = await tickets(bot)
    assert ticket.first_responded_at is None, "the customer heard nothing"
    assert (ticket.state, ticket.assignee_key) == ("open", None), "the first-response clock still runs"
    assert await _first_replies(bot) == {}, "the reports do not count it either"
    assert ("staff_unsent", "Which file format was it?") in await transcript(bot, 1), "kept, as unsent"
    bot.clock.advance(hours=4)
    assert (await _clocks(bot))["breached"] == 1, "the team is reminded the customer still waits"

    # Let in again: the next answer that reaches the customer is the first response.
    del bot.adapter.failures["community"]
    sent = await bot.says(
        bot.staff, "Please send us the file", conversation=bot.staff_room, thread=card.ref.message_id
    )
    assert [m.channel_id for m in sent] == ["community"]
    (ticket,) = await tickets(bot)
    assert ticket.first_responded_at == bot.clock.now
    assert (ticket.state, ticket.assignee_name) == ("claimed", "Sam (staff)")
    assert await _first_replies(bot) == {ticket.id: bot.clock.now}


async def test_a_claim_the_customer_was_never_told_about_is_no_first_response(bot: BotHarness) -> None:
    await escalated(bot)
    bot.adapter.fail_channel("community", NOT_ALLOWED)
    await bot.staff_runs("/ticket claim 1")
    (ticket,) = await tickets(bot)
    assert ticket.state == "claimed", "the team member holds it all the same"
    assert ticket.first_responded_at is None
    (answer,) = await bot.staff_runs("/ticket priority 1 high")
    assert "it has had its first answer" not in answer.text


async def test_an_answer_reaching_the_customer_late_counts_from_when_it_reached_them(bot: BotHarness) -> None:
    _, card = await escalated(bot)
    # The platform refuses it past every retry: it stays owed, and goes out once the platform is back.
    bot.bot.dispatcher.outbound.max_attempts = 1
    bot.adapter.fail_channel("community", DeliveryError("503", permanent=False))
    await bot.says(bot.staff, "On it", conversation=bot.staff_room, thread=card.ref.message_id)
    (ticket,) = await tickets(bot)
    assert ticket.first_responded_at is None
    bot.clock.advance(minutes=5)
    assert await bot.bot.dispatcher.pay_owed() == 1
    (ticket,) = await tickets(bot)
    assert ticket.first_responded_at == bot.clock.now


DMS_CLOSED = DeliveryError(
    "Cannot send messages to this user", permanent=True, code=DeliveryFailure.PERSON_UNREACHABLE
)


async def _ticket_in_dms(bot: BotHarness) -> SentMessage:
    """Casey's `/ticket`, where the bot may not post: the ticket lives in her DMs. Its staff card."""
    bot.adapter.fail_channel("community", NOT_ALLOWED)
    sent = await bot.customer_runs("/ticket new my CSV export failed with error 500")
    assert [m.channel_id for m in sent if m.channel_id != STAFF_CHANNEL] == ["D-C1"]
    return next(m for m in sent if m.channel_id == STAFF_CHANNEL)


async def test_a_close_question_that_never_reached_the_customer_never_closes_the_ticket(
    bot: BotHarness,
) -> None:
    card = await _ticket_in_dms(bot)
    bot.adapter.fail_channel("D-C1", DMS_CLOSED)  # Casey closes her DMs
    await bot.staff_runs("/ticket claim 1")
    await bot.staff_runs("/ticket close 1 fixed in 2.4.1")

    in_staff_thread = [m.text for m in bot.staff_posts() if m.ref.thread_id == card.ref.message_id]
    assert in_staff_thread[-1] == (
        "I couldn't ask Casey whether ticket #1 is solved: their direct messages are closed to me, or"
        " I'm not allowed to post where their ticket is, so they haven't seen the question. The ticket"
        " stays open and won't close by itself; reach them another way, then ask again with"
        " `/ticket close 1`."
    )
    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.close_requested_at) == ("claimed", None)

    bot.clock.advance(hours=73)
    assert (await _clocks(bot))["auto_closed"] == 0, "never closed for an answer nobody could give"
    (ticket,) = await tickets(bot)
    assert ticket.state == "claimed"
    told = [m for m in bot.staff_posts() if "I couldn't ask Casey" in m.text]
    assert len(told) == 1, "the team is told once"

    # Her DMs open again: asked again, the question reaches her and its clock runs as usual.
    del bot.adapter.failures["D-C1"]
    await bot.staff_runs("/ticket close 1 fixed in 2.4.1")
    bot.clock.advance(hours=73)
    assert (await _clocks(bot))["auto_closed"] == 1


async def test_a_second_ticket_going_on_in_dms_leaves_them_to_the_ticket_already_there(
    bot: BotHarness,
) -> None:
    """Casey's ticket #1 lives in her DMs; her `/ticket` in another channel the bot may not post in
    goes on there too. The DM stays #1's: what she writes there reaches #1's team, #2 is answered
    there by its number, and she adds to #2 with `/ticket reply 2`."""
    first_card = await _ticket_in_dms(bot)
    sent = await bot.customer_runs("/ticket new the invoices page is blank")
    (told,) = [m for m in sent if m.channel_id == "D-C1"]
    assert "ticket **#2**" in told.text
    assert (
        "You already have ticket **#1** open here, and what you write here goes to it. To add to"
        " ticket **#2**, use `/ticket reply 2 <what to add>`."
    ) in told.text
    second_card = next(m for m in sent if m.channel_id == STAFF_CHANNEL and "#2" in m.text)

    sent = await bot.customer_dms("the export is a CSV of 2 MB")
    assert [(m.channel_id, m.ref.thread_id) for m in sent] == [(STAFF_CHANNEL, first_card.ref.message_id)]

    sent = await bot.says(
        bot.staff, "Which browser?", conversation=bot.staff_room, thread=second_card.ref.message_id
    )
    assert [m.channel_id for m in sent] == ["D-C1"]
    assert sent[0].text.startswith("About ticket #2:"), sent[0].text

    dm = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D-C1", is_direct=True)
    sent = await bot.customer_runs("/ticket reply 2 Firefox 132", conversation=dm)
    assert [
        m.text
        for m in sent
        if m.channel_id == STAFF_CHANNEL and m.ref.thread_id == second_card.ref.message_id
    ]
    (to_casey,) = [m for m in sent if m.channel_id != STAFF_CHANNEL]
    assert (
        to_casey.text == "Added to ticket #2; the team sees it in the ticket."
        and to_casey.delivery.message.private_to
    )
    assert ("customer", "Firefox 132") in await transcript(bot, 2)
    assert ("customer", "Firefox 132") not in await transcript(bot, 1)
    robins_dm = replace(dm, channel_id="D-C2")
    (refused,) = await bot.run(bot.other_customer, "/ticket reply 2 let me in", conversation=robins_dm)
    assert "couldn't find a ticket #2 of yours" in refused.text


async def _closed_by_casey(bot: BotHarness, number: int) -> None:
    """The team asks whether ticket `number` is solved, in Casey's DMs, and she says yes."""
    sent = await bot.staff_runs(f"/ticket close {number}")
    question = next(m for m in sent if m.channel_id == "D-C1" and m.text.endswith("Did this solve it?"))
    await bot.click(bot.customer, button(question, "Yes"), on=question)


async def test_once_the_ticket_holding_the_dms_closes_they_go_to_her_other_ticket_there(
    bot: BotHarness,
) -> None:
    """Casey's #1 holds her DMs and #2 went on there beside it. Once #1 is solved, what she writes in
    her DMs reaches #2's team, as it would had #2 been the only one: no `/ticket reply 2` needed."""
    await _ticket_in_dms(bot)
    sent = await bot.customer_runs("/ticket new the invoices page is blank")
    second_card = next(m for m in sent if m.channel_id == STAFF_CHANNEL and "#2" in m.text)
    await _closed_by_casey(bot, 1)

    sent = await bot.customer_dms("it is blank in Firefox 132 too")
    assert [(m.channel_id, m.ref.thread_id) for m in sent] == [(STAFF_CHANNEL, second_card.ref.message_id)]
    assert ("customer", "it is blank in Firefox 132 too") in await transcript(bot, 2)
    assert [t.state for t in await tickets(bot)] == ["closed", "open"]


async def test_with_two_tickets_left_in_the_dms_the_customer_is_told_how_to_pick(bot: BotHarness) -> None:
    """#2 and #3 went on in Casey's DMs beside #1. Once #1 is solved, her DMs cannot tell which of
    the two she means: nothing goes to either, and she is told how to add to each."""
    await _ticket_in_dms(bot)
    await bot.customer_runs("/ticket new the invoices page is blank")
    await bot.customer_runs("/ticket new the logo upload fails")
    await _closed_by_casey(bot, 1)

    (told,) = await bot.customer_dms("it is blank in Firefox 132 too")
    assert told.channel_id == "D-C1"
    assert told.text == (
        "You have tickets **#2** and **#3** open here, so I can't tell which one this is for, and I"
        " haven't passed it on. To add to one, use `/ticket reply <number> <what to add>`."
    )
    assert not [line for n in (2, 3) for line in await transcript(bot, n) if "Firefox" in line[1]]
    assert len(await tickets(bot)) == 3, "nor does it open a fourth"


async def test_a_reminder_that_cannot_reach_the_customer_is_reported_in_the_team_thread(
    bot: BotHarness,
) -> None:
    """Casey's ticket lives in her DMs, which she has closed since. Past its target the team is
    reminded as usual, and told in the ticket's thread, once, that "we haven't forgotten you" never
    reached her: she does not know the team is late, nor that it knows."""
    card = await _ticket_in_dms(bot)
    bot.adapter.fail_channel("D-C1", DMS_CLOSED)
    bot.clock.advance(hours=4, minutes=1)
    before = len(bot.adapter.sent)

    assert (await _clocks(bot))["breached"] == 1

    in_staff_thread = [m.text for m in bot.adapter.sent[before:] if m.ref.thread_id == card.ref.message_id]
    assert len(in_staff_thread) == 2 and "past its first-response target" in in_staff_thread[0]
    assert in_staff_thread[1] == (
        "I couldn't tell Casey that ticket #1 is taking longer than we aim for: their direct messages"
        " are closed to me, or I'm not allowed to post where their ticket is. Reach them another way."
    )
    assert not [m for m in bot.adapter.sent[before:] if m.channel_id == "D-C1"]


CHANNEL_GONE = DeliveryError("channel_not_found", permanent=True, code=DeliveryFailure.CHANNEL_GONE)


async def test_a_no_answer_close_that_cannot_reach_the_customer_is_reported_in_the_team_thread(
    bot: BotHarness,
) -> None:
    """Casey's ticket lives in her DMs. The team asks whether it is solved; she says nothing and
    closes her DMs. When the ticket closes for want of an answer, the team hears in its thread that
    it closed, then that Casey was not told: she does not know her reply would reopen it."""
    card = await _ticket_in_dms(bot)
    await bot.staff_runs("/ticket claim 1")
    await bot.staff_runs("/ticket close 1 fixed in 2.4.1")
    bot.adapter.fail_channel("D-C1", DMS_CLOSED)
    bot.clock.advance(hours=73)
    before = len(bot.adapter.sent)

    assert (await _clocks(bot))["auto_closed"] == 1

    in_staff_thread = [m.text for m in bot.adapter.sent[before:] if m.ref.thread_id == card.ref.message_id]
    assert in_staff_thread == [
        "Ticket #1 closed: Casey didn't answer the close question.",
        "I couldn't tell Casey that ticket #1 is closed: their direct messages are closed to me, or I'm"
        " not allowed to post where their ticket is, so they don't know that a reply within 14 days"
        " reopens it. Reach them another way if they may still need help.",
    ]
    assert not [m for m in bot.adapter.sent[before:] if m.channel_id == "D-C1"]
    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.closed_how) == ("closed", "no_answer")


async def test_a_no_answer_close_whose_channel_is_gone_is_reported_in_the_team_thread(
    bot: BotHarness,
) -> None:
    """Casey's ticket lives in a thread of #community, which is deleted while the team waits for her
    answer: the close notice goes nowhere, and the team hears so in the ticket's thread."""
    _, card = await escalated(bot)
    await bot.staff_runs("/ticket close 1")
    bot.adapter.fail_channel("community", CHANNEL_GONE)
    bot.clock.advance(hours=73)
    before = len(bot.adapter.sent)

    assert (await _clocks(bot))["auto_closed"] == 1

    in_staff_thread = [m.text for m in bot.adapter.sent[before:] if m.ref.thread_id == card.ref.message_id]
    assert len(in_staff_thread) == 2 and in_staff_thread[1].startswith(
        "I couldn't tell Casey that ticket #1 is closed"
    )
