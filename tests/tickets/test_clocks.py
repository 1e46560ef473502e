"""The ticket clocks through the fake adapter: the first-response target and its reminder, closing a
ticket nobody answered, and maintenance pausing a component's tickets. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.core.events import Actor, Conversation, Platform
from bot.tickets.clocks import PAGE, check_ticket_clocks
from storage.models import Ticket
from tests.harness import STAFF_CHANNEL, BotHarness, button
from tests.tickets.conversation import escalated, tickets


async def _clocks(bot: BotHarness) -> dict[str, int]:
    return await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)


def _dm(bot: BotHarness) -> Conversation:
    return Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D-C1", is_direct=True)


async def test_no_answer_closes_with_a_notice_and_a_reply_reopens(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1 should be fine now")
    bot.clock.advance(hours=71)
    assert (await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound))[
        "auto_closed"
    ] == 0
    bot.clock.advance(hours=2)
    before = len(bot.adapter.sent)
    result = await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)
    assert result["auto_closed"] == 1
    notices = [m.text for m in bot.adapter.sent[before:]]
    assert any("reply here within 14 days and it reopens" in t for t in notices)
    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.closed_how) == ("closed", "no_answer")

    sent = await bot.customer_says("actually it broke again", thread=reply.ref.thread_id)
    assert any("reopened ticket **#1**" in m.text for m in sent)
    (ticket,) = await tickets(bot)
    assert ticket.state == "claimed"


async def test_unclaimed_ticket_past_its_target_is_re_escalated_once(bot: BotHarness) -> None:
    await escalated(bot)
    bot.clock.advance(hours=3, minutes=59)
    outbound = bot.bot.dispatcher.outbound
    assert (await check_ticket_clocks(bot.bot.database, bot.bot.services, outbound))["breached"] == 0
    bot.clock.advance(minutes=2)
    before = len(bot.adapter.sent)
    assert (await check_ticket_clocks(bot.bot.database, bot.bot.services, outbound))["breached"] == 1
    sent = bot.adapter.sent[before:]
    to_staff = next(m for m in sent if m.channel_id == STAFF_CHANNEL)
    assert "past its first-response target" in to_staff.text
    assert [m.id for m in to_staff.delivery.message.mentions] == ["oncall"]
    assert any("We haven't forgotten you" in m.text for m in sent if m.channel_id == "community")
    assert (await check_ticket_clocks(bot.bot.database, bot.bot.services, outbound))["breached"] == 0
    (ticket,) = await tickets(bot)
    assert ticket.breached


async def test_claimed_ticket_is_not_re_escalated(bot: BotHarness) -> None:
    await escalated(bot)
    await bot.staff_runs("/ticket claim 1")
    bot.clock.advance(hours=5)
    assert (await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound))[
        "breached"
    ] == 0


async def test_maintenance_on_the_tickets_component_pauses_its_clock(bot: BotHarness) -> None:
    await bot.staff_runs("/maintenance schedule payments 2026-11-24T09:30Z 2026-11-24T11:30Z DB upgrade")
    await bot.customer_runs("/ticket my CSV export failed")
    async with bot.bot.database.transaction() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        ticket.component = "payments"
    outbound = bot.bot.dispatcher.outbound
    bot.clock.advance(hours=4, minutes=30)  # past the 4-hour target, but 2 hours of it were maintenance
    assert (await check_ticket_clocks(bot.bot.database, bot.bot.services, outbound))["breached"] == 0
    bot.clock.advance(hours=2)
    before = len(bot.adapter.sent)
    assert (await check_ticket_clocks(bot.bot.database, bot.bot.services, outbound))["breached"] == 1
    # 6.5 hours after opening, 4 of target and 2 of maintenance: 30 minutes late, not 2.5 hours.
    (reminder,) = [m.text for m in bot.adapter.sent[before:] if m.channel_id == STAFF_CHANNEL]
    assert "has waited 30 minutes past its first-response target" in reminder


async def test_overlapping_maintenance_windows_pause_the_clock_once_for_their_overlap(
    bot: BotHarness,
) -> None:
    """The database upgrade (09:30-11:30) and the card-network switch (10:30-12:30) both touch
    payments: the component was under maintenance for 3 hours, not 4."""
    await bot.staff_runs("/maintenance schedule payments 2026-11-24T09:30Z 2026-11-24T11:30Z DB upgrade")
    await bot.staff_runs("/maintenance schedule payments 2026-11-24T10:30Z 2026-11-24T12:30Z Card switch")
    await bot.customer_runs("/ticket my card payment failed")
    async with bot.bot.database.transaction() as session:
        (await session.execute(select(Ticket))).scalar_one().component = "payments"
    bot.clock.advance(hours=7, minutes=30)  # 4 hours of target and 3 of maintenance ago
    before = len(bot.adapter.sent)
    assert (await _clocks(bot))["breached"] == 1
    (reminder,) = [m.text for m in bot.adapter.sent[before:] if m.channel_id == STAFF_CHANNEL]
    assert "has waited 30 minutes past its first-response target" in reminder


async def test_a_maintenance_window_cancelled_before_it_began_pauses_no_clock(bot: BotHarness) -> None:
    await bot.staff_runs("/maintenance schedule payments 2026-11-24T10:30Z 2026-11-24T12:30Z DB upgrade")
    await bot.customer_runs("/ticket my card payment failed")
    async with bot.bot.database.transaction() as session:
        (await session.execute(select(Ticket))).scalar_one().component = "payments"
    bot.clock.advance(minutes=30)
    await bot.staff_runs("/maintenance end 1 Postponed to next week")
    bot.clock.advance(hours=3, minutes=35)  # the 4-hour target passed 5 minutes ago; nothing paused it
    assert (await _clocks(bot))["breached"] == 1


async def test_many_tickets_paused_by_maintenance_do_not_hide_one_that_is_late(bot: BotHarness) -> None:
    await bot.staff_runs("/maintenance schedule payments 2026-11-24T09:30Z 2026-11-24T11:30Z DB upgrade")
    for index in range(PAGE + 5):  # more than one page of paused tickets, all older
        customer = Actor(platform=Platform.CONSOLE, id=f"P{index}", display_name=f"P{index}")
        await bot.run(customer, f"/ticket payments problem {index}")
    async with bot.bot.database.transaction() as session:
        for ticket in (await session.execute(select(Ticket))).scalars():
            ticket.component = "payments"
    bot.clock.advance(minutes=10)
    await bot.customer_runs("/ticket my CSV export failed")  # no component: nothing pauses it
    bot.clock.advance(hours=4, minutes=15)
    result = await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)
    assert result["breached"] == 1
    assert [t.number for t in await tickets(bot) if t.breached] == [PAGE + 6]


async def test_the_status_card_says_the_team_was_reminded_only_once_it_was(bot: BotHarness) -> None:
    await bot.staff_runs("/maintenance schedule payments 2026-11-24T09:30Z 2026-11-24T11:30Z DB upgrade")
    await bot.customer_runs("/ticket my card payment failed")
    async with bot.bot.database.transaction() as session:
        (await session.execute(select(Ticket))).scalar_one().component = "payments"
    bot.clock.advance(hours=4, minutes=30)  # past the raw target; maintenance paused the clock
    await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)
    (card,) = await bot.customer_runs("/ticket status 1")
    assert "taking a little longer than usual" in card.text and "reminded" not in card.text

    bot.clock.advance(hours=2)
    await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)
    (card,) = await bot.customer_runs("/ticket status 1")
    assert "the team has been reminded" in card.text


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


async def test_a_customer_who_replied_is_not_told_we_didnt_hear_back(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1 should be fixed")
    await bot.customer_says("no, it still fails with error 500", thread=reply.ref.thread_id)
    bot.clock.advance(hours=73)
    before = len(bot.adapter.sent)
    await _clocks(bot)
    told = [m.text for m in bot.adapter.sent[before:] if m.channel_id == "community"]
    assert not any("we didn't hear back" in t for t in told), told


async def test_raising_the_priority_of_a_waiting_ticket_tells_staff_the_truth(bot: BotHarness) -> None:
    await escalated(bot)
    bot.clock.advance(hours=2)
    (sent,) = await bot.staff_runs("/ticket priority 1 urgent")  # urgent = 15 minutes: 1h45 overdue
    assert "answer due in less than a minute" not in sent.text, sent.text


async def test_the_no_answer_close_says_how_long_a_reply_reopens_it(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1")
    bot.clock.advance(hours=73)
    before = len(bot.adapter.sent)
    await _clocks(bot)
    (notice,) = [m.text for m in bot.adapter.sent[before:] if m.channel_id != STAFF_CHANNEL]
    assert notice.endswith("If you still need help, reply here within 14 days and it reopens.")
    bot.clock.advance(days=14, minutes=1)
    sent = await bot.customer_says("is this still open?", thread=reply.ref.thread_id)
    assert not any("reopened" in m.text for m in sent), "as promised: no longer"


@pytest.mark.parametrize(
    ("after_close", "reopens"), [(timedelta(days=14), True), (timedelta(days=14, seconds=1), False)]
)
async def test_within_14_days_of_the_no_answer_close_includes_the_14th_day(
    bot: BotHarness, after_close: timedelta, reopens: bool
) -> None:
    """The notice promises "within 14 days": what the status says and what a reply does agree, at
    the edge too."""
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1")
    bot.clock.advance(hours=73)
    await _clocks(bot)
    (ticket,) = await tickets(bot)
    assert ticket.closed_at is not None
    bot.clock.now = ticket.closed_at + after_close

    (status,) = await bot.customer_runs("/ticket status 1")
    said = "A reply in its thread reopens it." if reopens else "open a new ticket with `/ticket`"
    assert said in status.text, status.text
    sent = await bot.customer_says("it broke again", thread=reply.ref.thread_id)
    assert any("I've reopened ticket **#1**" in m.text for m in sent) is reopens
    (ticket,) = await tickets(bot)
    assert ticket.state == ("claimed" if reopens else "closed")


async def test_a_thank_you_after_the_no_answer_close_does_not_reopen_it(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1 fixed in 2.4.1")
    bot.clock.advance(hours=73)
    await _clocks(bot)
    sent = await bot.customer_says("thanks, all good now!", thread=reply.ref.thread_id)

    assert [m.text for m in sent if m.channel_id != STAFF_CHANNEL] == [
        "Glad to hear it! Ticket **#1** stays closed; if you need more help, just ask."
    ]
    to_team = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert [m.text for m in to_team] == ["**Casey:**\nthanks, all good now!"], "passed on, unreopened"
    assert not to_team[0].delivery.message.mentions, "nobody is paged for a thank-you"
    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.closed_how) == ("closed", "no_answer")
