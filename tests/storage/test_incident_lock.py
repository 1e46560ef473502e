"""Staff updating or resolving an incident lock its row, so that of two doing it at once the second
sees what the first did. The lock is PostgreSQL's FOR NO KEY UPDATE: rows that only point at the
incident (a customer linked to it as they ask about it) are written meanwhile, without waiting. (A
resolve waits for them: tests/status/test_maintenance_races.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from storage import status_repo
from storage.db import Database

pytestmark = pytest.mark.postgres

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


async def _open_incident(database: Database) -> int:
    async with database.transaction() as session:
        incident = await status_repo.create_incident(
            session,
            title="Card payments failing",
            impact="major",
            status="investigating",
            components=["payments"],
            first_update="We are investigating.",
            actor_key="console:S1",
            at=AT,
        )
    assert incident.id is not None
    return incident.id


@asynccontextmanager
async def _being_updated(database: Database) -> AsyncIterator[int]:
    """An incident's number while a staff member's command holds it locked."""
    incident_id = await _open_incident(database)
    async with database.transaction() as staff:
        assert await status_repo.get_incident(staff, incident_id=incident_id, for_update=True)
        yield incident_id


async def test_a_customer_asking_about_an_incident_does_not_wait_for_staff_updating_it(
    postgres_database: Database,
) -> None:
    database = postgres_database
    async with _being_updated(database) as incident_id, database.transaction() as customer:
        # Waiting longer means the customer's row waits for the staff member's whole command.
        await customer.execute(text("SET LOCAL lock_timeout = '2s'"))
        linked = await status_repo.link_customer(
            customer,
            incident_id=incident_id,
            conversation_key="console:W1:community:m1",
            platform="console",
            workspace_id="W1",
            channel_id="community",
            thread_id="m1",
            is_direct=False,
            actor_key="console:C1",
            component="payments",
            at=AT,
        )
    assert linked is status_repo.Linked.NEW


async def test_a_second_staff_member_updating_the_same_incident_still_waits_for_the_first(
    postgres_database: Database,
) -> None:
    database = postgres_database
    async with _being_updated(database) as incident_id:
        with pytest.raises(DBAPIError, match="lock timeout"):
            async with database.transaction() as second:
                await second.execute(text("SET LOCAL lock_timeout = '200ms'"))
                await status_repo.get_incident(second, incident_id=incident_id, for_update=True)
