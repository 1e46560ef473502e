"""Opening a ticket writes the ticket, its first line and the customer's place in the queue together."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlmodel import select

from storage import tickets_repo
from storage.db import Database
from storage.models import Ticket
from storage.session import DbSession


async def _open(database: Database, customer: str, *, at: datetime) -> tickets_repo.OpenedTicket:
    async with database.transaction() as session:
        return await _open_in(session, customer, at=at)


async def _open_in(session: DbSession, customer: str, *, at: datetime) -> tickets_repo.OpenedTicket:
    return await tickets_repo.open_ticket(
        session,
        requester_key=f"slack:{customer}",
        requester_name=customer,
        platform="slack",
        workspace_id="T1",
        channel_id="C1",
        thread_id=f"{customer}.0",
        is_direct=False,
        conversation_key=f"slack:T1:C1:{customer}.0",
        summary="my export failed",
        reason="requested",
        priority="high",
        now=at,
        first_response_due=at + timedelta(minutes=30),
        first_line=tickets_repo.NewLine(
            kind="customer", text="my export failed", author_name=customer, at=at
        ),
        author_key=f"slack:{customer}",
        decision_id=7,
    )


async def test_a_new_ticket_is_written_whole_with_its_first_line_and_place_in_the_queue(
    database: Database,
) -> None:
    at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    first = await _open(database, "ana", at=at)
    second = await _open(database, "bo", at=at + timedelta(seconds=5))
    async with database.transaction() as session:
        claimed = await tickets_repo.get_by_number(session, number=first.ticket.number)
        assert claimed is not None
        claimed.state = "claimed"
    third = await _open(database, "cy", at=at + timedelta(seconds=9))

    assert [o.ticket.number for o in (first, second, third)] == [1, 2, 3]
    assert [o.ahead for o in (first, second, third)] == [0, 1, 1], (
        "a claimed ticket is no longer in the queue"
    )
    async with database.session() as session:
        stored = (await session.execute(select(Ticket).where(Ticket.number == 2))).scalar_one()
        lines = await tickets_repo.transcript(session, ticket=stored)
    returned = second.ticket
    assert (returned.id, returned.priority, returned.decision_id) == (stored.id, "high", 7)
    assert returned.first_response_due == stored.first_response_due == at + timedelta(seconds=5, minutes=30)
    assert [(line.kind, line.author_name, line.text, line.at) for line in lines] == [
        ("customer", "bo", "my export failed", at + timedelta(seconds=5))
    ]


async def test_the_opened_ticket_is_the_sessions_own_so_a_change_to_it_is_kept(database: Database) -> None:
    at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    async with database.transaction() as session:
        opened = await _open_in(session, "ana", at=at)
        opened.ticket.assignee_name = "Dana"
    async with database.session() as session:
        stored = (await session.execute(select(Ticket))).scalar_one()
    assert stored.assignee_name == "Dana"


async def _until_blocked_by(database: Database, backend: int) -> None:
    """Until some transaction waits for a lock the transaction on `backend` holds."""
    for _ in range(200):
        async with database.session() as session:
            blocked = await session.execute(
                text("SELECT 1 FROM pg_stat_activity WHERE :backend = ANY(pg_blocking_pids(pid))"),
                {"backend": backend},
            )
            if blocked.first() is not None:
                return
        await asyncio.sleep(0.01)
    raise AssertionError("nothing waited for the first escalation's ticket number")


async def test_a_customer_who_waited_for_a_number_counts_the_ticket_opened_meanwhile(
    postgres_database: Database,
) -> None:
    at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    async with postgres_database.transaction() as session:
        first = await _open_in(session, "ana", at=at)
        ((backend,),) = (await session.execute(text("SELECT pg_backend_pid()"))).all()
        # Bo escalates while Ana's escalation holds the ticket counter; Bo's waits for it.
        second = asyncio.create_task(_open(postgres_database, "bo", at=at + timedelta(seconds=1)))
        await _until_blocked_by(postgres_database, backend)
    # Ana's ticket is committed now, and Bo's escalation goes on.
    bo = await second

    assert (first.ticket.number, bo.ticket.number) == (1, 2)
    assert bo.ahead == 1, "Ana's ticket, open and unclaimed, is ahead of Bo's"
