"""What every status answer reads: the open incidents and the maintenance not yet over, in one go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import status_repo
from storage.db import Database

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


async def test_open_incidents_and_maintenance_not_over_are_read_together(database: Database) -> None:
    async with database.transaction() as session:
        opened = [
            await status_repo.create_incident(
                session,
                title=title,
                impact="major",
                status="investigating",
                components=["api"],
                first_update=title,
                actor_key="console:S1",
                at=NOW - timedelta(hours=3),
            )
            for title in ("old outage", "api errors", "slow dashboard")
        ]
        await status_repo.add_update(
            session,
            incident=opened[0],
            status="resolved",
            body="fixed",
            actor_key="console:S1",
            at=NOW,
            resolves=True,
        )
        for title, starts in (("past", -5), ("later", 4), ("now", -1), ("soon", 2)):
            await status_repo.create_maintenance(
                session,
                title=title,
                impact="maintenance",
                status="scheduled",
                components=["api"],
                starts_at=NOW + timedelta(hours=starts),
                ends_at=NOW + timedelta(hours=starts + 2),
                first_update=title,
                actor_key="console:S1",
                at=NOW - timedelta(days=1),
            )
    async with database.session() as session:
        incidents, maintenance = await status_repo.open_incidents_and_maintenance(session, at=NOW)

    assert [i.title for i in incidents] == ["slow dashboard", "api errors"]  # newest first
    assert [w.title for w in maintenance] == ["now", "soon", "later"]  # soonest first
