"""Two bot processes on one PostgreSQL database act on the same ticket at the same moment: the second
sees what the first did, so the customer is asked to confirm once and the transcript stays true."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import select

from bot.core import dispatch
from bot.core.events import ActionInvoked, MessageReceived
from bot.tickets.clocks import check_ticket_clocks
from storage import tickets_repo
from storage.db import Database
from storage.models import Ticket, TicketMessage
from storage.session import DbSession
from tests.conftest import Processes
from tests.harness import COMMUNITY, STAFF_CHANNEL, button


async def test_two_staff_closing_one_ticket_at_once_ask_the_customer_once(
    processes: Processes, postgres_database: Database
) -> None:
    first, second = processes
    sent = await first.customer_says("can I talk to a human please")
    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    close = button(card, "Close")

    def click(event_id: str) -> ActionInvoked:
        return ActionInvoked(
            actor=first.staff,
            conversation=first.staff_room,
            action_id=close.action_id,
            value=close.value,
            message_id=card.ref.message_id,
            event_id=event_id,
        )

    # Each "process" has a connection ready, as a running bot would, so neither starts late.
    await asyncio.gather(*(postgres_database.ping() for _ in range(4)))
    # Two people press Close on the staff card; each click lands on a different process.
    outcomes = await asyncio.gather(
        first.bot.dispatcher.handle(click("click-a")), second.bot.dispatcher.handle(click("click-b"))
    )
    questions = [
        m
        for m in first.adapter.sent + second.adapter.sent
        if m.text.startswith("Sam (staff) thinks ticket **#1** is solved")
    ]
    assert len(questions) == 1, "the customer was asked to confirm twice"
    refusals = [m.text for m in first.adapter.sent + second.adapter.sent if "already waiting" in m.text]
    assert refusals == ["Ticket #1 is already waiting for the customer to confirm."], outcomes
    async with postgres_database.session() as session:
        (ticket,) = (await session.execute(select(Ticket))).scalars()
        notes = (
            await session.execute(select(TicketMessage.text).where(TicketMessage.kind == "system"))
        ).scalars()
        assert ticket.state == "awaiting_confirmation"
        assert [n for n in notes if "asked the customer to confirm" in n] == [
            "Sam (staff) asked the customer to confirm it is solved"
        ]


async def test_two_processes_escalating_in_one_thread_open_one_ticket(
    processes: Processes, postgres_database: Database
) -> None:
    first, second = processes
    (answer,) = await first.customer_says("my csv export failed")
    more = button(answer, "I still need help")
    thread = answer.delivery.conversation.in_thread(answer.ref.thread_id or answer.ref.message_id)

    def in_thread(event_id: str, text: str) -> MessageReceived:
        return MessageReceived(
            actor=first.customer, conversation=thread, text=text, message_id=event_id, event_id=event_id
        )

    await asyncio.gather(*(postgres_database.ping() for _ in range(4)))
    # "I still need help" lands on one process while "talk to a human" lands on the other.
    click = ActionInvoked(
        actor=first.customer,
        conversation=thread,
        action_id=more.action_id,
        value=more.value,
        message_id=answer.ref.message_id,
        event_id="click-more",
    )
    await asyncio.gather(
        first.bot.dispatcher.handle(click),
        second.bot.dispatcher.handle(in_thread("m-human", "can I talk to a human please")),
    )
    async with postgres_database.session() as session:
        tickets = (await session.execute(select(Ticket))).scalars().all()
    assert [t.number for t in tickets] == [1], "one thread, one ticket"


async def test_two_replies_after_a_no_answer_close_reopen_the_ticket_once(
    processes: Processes, postgres_database: Database
) -> None:
    first, second = processes
    sent = await first.customer_says("can I talk to a human please")
    (reply,) = [m for m in sent if m.channel_id != STAFF_CHANNEL]
    await first.staff_runs("/ticket close 1 should be fine now")
    for harness in (first, second):
        harness.clock.advance(hours=73)
    closed = await check_ticket_clocks(first.bot.database, first.bot.services, first.bot.dispatcher.outbound)
    assert closed["auto_closed"] == 1
    thread = reply.delivery.conversation.in_thread(reply.ref.thread_id or reply.ref.message_id)

    def in_thread(event_id: str, text: str) -> MessageReceived:
        return MessageReceived(
            actor=first.customer, conversation=thread, text=text, message_id=event_id, event_id=event_id
        )

    await asyncio.gather(*(postgres_database.ping() for _ in range(4)))
    # The customer sends two lines in quick succession; each lands on a different process.
    await asyncio.gather(
        first.bot.dispatcher.handle(in_thread("m-1", "it broke again")),
        second.bot.dispatcher.handle(in_thread("m-2", "same error as before")),
    )
    said = [m.text for m in first.adapter.sent + second.adapter.sent]
    assert len([t for t in said if "I've reopened ticket **#1**" in t]) == 1, said
    async with postgres_database.session() as session:
        lines = (
            await session.execute(select(TicketMessage.kind, TicketMessage.text).order_by(TicketMessage.id))
        ).all()
    assert len([text for kind, text in lines if text.startswith("Reopened:")]) == 1, lines
    customer_lines = [text for kind, text in lines if kind == "customer"]
    assert sorted(customer_lines[-2:]) == ["it broke again", "same error as before"]


async def test_an_answer_read_as_another_process_notes_its_card_still_reaches_the_customer(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first process notes the thread of Casey's card just after the second, which took Sam's
    answer under it, found no ticket there: the card is then no longer on its way either. The
    answer is waited on and reaches Casey, rather than being dropped as the team's own talk."""
    first, second = processes
    monkeypatch.setattr(dispatch, "TOO_EARLY_DELAYS", (0.01, 0.01))
    card_out, note_it = asyncio.Event(), asyncio.Event()
    set_staff_thread, by_staff_thread = tickets_repo.set_staff_thread, tickets_repo.by_staff_thread

    async def noted_when_let(session: DbSession, **where: Any) -> None:
        card_out.set()
        await note_it.wait()
        await set_staff_thread(session, **where)

    monkeypatch.setattr(tickets_repo, "set_staff_thread", noted_when_let)
    escalation = asyncio.create_task(first.customer_says("can I talk to a human please"))
    await card_out.wait()
    (card,) = first.staff_posts()

    async def noted_right_after_this_read(session: DbSession, **where: Any) -> Ticket | None:
        found = await by_staff_thread(session, **where)
        if not note_it.is_set():
            note_it.set()
            await escalation  # the first process's note of the card's thread, committed
        return found

    monkeypatch.setattr(tickets_repo, "by_staff_thread", noted_right_after_this_read)
    answer = MessageReceived(
        actor=second.staff,
        conversation=second.staff_room.in_thread(card.ref.message_id),
        text="Which export, CSV or PDF?",
        message_id="u-answer",
        event_id="u-answer",
        in_own_thread=True,
        thread_started_at=second.clock.now,
    )
    sent = await second.send(answer)

    assert [m.text for m in sent if m.channel_id == COMMUNITY] == [
        "**Sam (staff) (support team):**\nWhich export, CSV or PDF?"
    ]
