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


async def test_status_moves_are_the_status_changes_as_plain_rows_in_the_same_order(
    database: Database,
) -> None:
    """The API's read and the history page's read must agree: the same changes since the same
    moment, oldest first, and those made at the same moment in the order they were made."""
    async with database.transaction() as session:
        api = await status_repo.add_component(session, name="api", group="", aliases=[], at=NOW)
        web = await status_repo.add_component(session, name="web", group="", aliases=[], at=NOW)
        for component, status, minutes in (
            (api, "degraded_performance", -10),  # before the moment asked about
            (web, "major_outage", 5),
            (api, "major_outage", 5),  # the same moment, made later
            (api, "operational", 0),
            (web, "operational", 20),
        ):
            await status_repo.set_component_status(
                session,
                component=component,
                status=status,
                actor_key="console:S1",
                at=NOW + timedelta(minutes=minutes),
            )
    async with database.session() as session:
        changes = await status_repo.status_changes_since(session, since=NOW)
        moves = await status_repo.status_moves_since(session, since=NOW)

    assert [(c.component_id, c.at, c.old_status, c.new_status) for c in changes] == moves
    assert [(m.component_id, m.at.minute, m.new_status) for m in moves] == [
        (api.id, 0, "operational"),
        (web.id, 5, "major_outage"),
        (api.id, 5, "major_outage"),
        (web.id, 20, "operational"),
    ]
