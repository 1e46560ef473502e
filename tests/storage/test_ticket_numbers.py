"""Ticket numbers stay sequential and unique when several bot processes open tickets at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlmodel import select

from storage import tickets_repo
from storage.db import Database
from storage.models import Ticket


async def _open(database: Database, index: int) -> int:
    now = datetime.now(UTC)
    async with database.transaction() as session:
        opened = await tickets_repo.open_ticket(
            session,
            requester_key=f"slack:U{index}",
            requester_name=f"user {index}",
            platform="slack",
            workspace_id="T1",
            channel_id="C1",
            thread_id=f"{index}.0",
            is_direct=False,
            conversation_key=f"slack:T1:C1:{index}.0",
            summary="help",
            reason="requested",
            priority="normal",
            now=now,
            first_response_due=now,
            first_line=tickets_repo.NewLine(
                kind="customer", text="help", author_name=f"user {index}", at=now
            ),
            author_key=f"slack:U{index}",
        )
        return opened.ticket.number


async def test_two_processes_opening_tickets_at_once_get_distinct_sequential_numbers(
    database: Database,
) -> None:
    second_process = database.another_connection_pool()
    try:
        numbers = await asyncio.gather(*(_open(database if i % 2 else second_process, i) for i in range(40)))
    finally:
        await second_process.dispose()
    assert sorted(numbers) == list(range(1, 41))
    async with database.session() as session:
        stored = (await session.execute(select(Ticket.number))).scalars().all()
    assert sorted(stored) == list(range(1, 41))
