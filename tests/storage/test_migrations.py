"""Migrations build the schema from nothing on both databases, and agree with the models."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage import migrate
from storage.db import Database
from storage.types import UTCDateTime


async def test_upgrade_from_empty_creates_every_table(empty_database: Database) -> None:
    assert await migrate.current_revision(empty_database.engine) is None
    await migrate.upgrade(empty_database.engine)
    assert await migrate.current_revision(empty_database.engine) == migrate.head_revision()
    async with empty_database.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(SQLModel.metadata.tables) <= tables


async def test_upgrade_twice_is_a_no_op(empty_database: Database) -> None:
    await migrate.upgrade(empty_database.engine)
    await migrate.upgrade(empty_database.engine)
    assert await migrate.current_revision(empty_database.engine) == migrate.head_revision()


async def test_migrated_columns_match_the_models(empty_database: Database) -> None:
    await migrate.upgrade(empty_database.engine)

    def columns(connection) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
        inspector = inspect(connection)
        return {t: {c["name"] for c in inspector.get_columns(t)} for t in SQLModel.metadata.tables}

    async with empty_database.engine.connect() as connection:
        found = await connection.run_sync(columns)
    for name, table in SQLModel.metadata.tables.items():
        assert found[name] == {c.name for c in table.columns}, name


async def test_migrated_indexes_match_the_models(empty_database: Database) -> None:
    """An index declared on a model but never migrated exists only in a test's create_all: the
    deployed database would scan the table on every query that needs it."""
    await migrate.upgrade(empty_database.engine)

    def indexes(connection) -> dict[str, set[tuple[str, ...]]]:  # type: ignore[no-untyped-def]
        inspector = inspect(connection)
        return {
            t: {tuple(i["column_names"]) for i in inspector.get_indexes(t)} for t in SQLModel.metadata.tables
        }

    async with empty_database.engine.connect() as connection:
        found = await connection.run_sync(indexes)
    for name, table in SQLModel.metadata.tables.items():
        declared = {tuple(c.name for c in index.columns) for index in table.indexes}
        assert declared <= found[name], name


async def test_an_upgrade_that_fails_half_way_leaves_the_schema_as_it_was(empty_database: Database) -> None:
    """Another program's table where a later migration creates one of ours: the first migrations
    run, that one fails, and none of what ran before it stays (nor an alembic_version)."""
    async with empty_database.engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE their_notes (body TEXT)")
        await connection.exec_driver_sql("CREATE TABLE status_components (whatever TEXT)")

    def tables(connection) -> set[str]:  # type: ignore[no-untyped-def]
        return set(inspect(connection).get_table_names())

    with pytest.raises(DBAPIError, match="status_components"):
        await migrate.upgrade(empty_database.engine)
    async with empty_database.engine.connect() as connection:
        assert await connection.run_sync(tables) == {"their_notes", "status_components"}


async def test_close_questions_asked_before_rounds_were_counted_are_counted_from_transcripts(
    empty_database: Database,
) -> None:
    """So that a button posted before the upgrade (the ticket number alone) answers a ticket asked
    once, and no ticket asked more often (bot/handlers/tickets.py)."""
    await migrate.upgrade(empty_database.engine, "0008_gateway_session_owner")
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    tickets = sa.table(
        "tickets",
        *(sa.column(name) for name in ("id", "number", "state", "priority", "summary", "reason")),
        *(sa.column(name) for name in ("requester_key", "requester_name", "platform", "workspace_id")),
        *(sa.column(name) for name in ("channel_id", "is_direct", "conversation_key", "breached")),
        *(sa.column(name, UTCDateTime()) for name in ("created_at", "updated_at", "first_response_due")),
    )
    lines = sa.table(
        "ticket_messages",
        *(sa.column(name) for name in ("ticket_id", "kind", "author_key", "author_name", "text")),
        sa.column("at", UTCDateTime()),
    )
    asked = "Sam (staff) asked the customer to confirm it is solved"
    transcripts = {1: [], 2: [asked], 3: [asked, "Reopened: Casey says it is not solved", asked]}
    async with empty_database.engine.begin() as connection:
        for number, said in transcripts.items():
            await connection.execute(
                tickets.insert().values(
                    id=number, number=number, state="awaiting_confirmation", priority="normal",
                    summary="export fails", reason="requested", requester_key="console:C1",
                    requester_name="Casey", platform="console", workspace_id="W1", channel_id="c",
                    is_direct=False, conversation_key=f"console:W1:c:{number}", breached=False,
                    created_at=now, updated_at=now, first_response_due=now,
                )
            )  # fmt: skip
            for text in ["export fails", *said]:
                kind = "system" if text != "export fails" else "customer"
                await connection.execute(
                    lines.insert().values(
                        ticket_id=number, kind=kind, author_key="", author_name="", text=text, at=now
                    )
                )
    await migrate.upgrade(empty_database.engine)
    async with empty_database.engine.connect() as connection:
        rounds = await connection.execute(sa.text("SELECT number, close_round FROM tickets ORDER BY number"))
        assert [tuple(row) for row in rounds] == [(1, 0), (2, 1), (3, 2)]


async def test_close_rounds_downgrade_keeps_the_tickets_and_their_transcripts(
    empty_database: Database,
) -> None:
    """On SQLite a rebuilt tickets table would be dropped under its transcript lines (foreign keys
    are on), so the downgrade failed on any database that had a ticket."""
    await migrate.upgrade(empty_database.engine)
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    async with empty_database.engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO tickets (id, number, state, priority, summary, reason, requester_key, "
                "requester_name, platform, workspace_id, channel_id, is_direct, conversation_key, breached, "
                "created_at, updated_at, first_response_due, close_round) VALUES (1, 1, 'open', 'normal', "
                "'export fails', 'requested', 'console:C1', 'Casey', 'console', 'W1', 'c', false, "
                "'console:W1:c:1', false, :now, :now, :now, 0)"
            ).bindparams(sa.bindparam("now", now, type_=UTCDateTime()))
        )
        await connection.execute(
            sa.text(
                "INSERT INTO ticket_messages (ticket_id, kind, author_key, author_name, text, at) "
                "VALUES (1, 'customer', 'console:C1', 'Casey', 'export fails', :now)"
            ).bindparams(sa.bindparam("now", now, type_=UTCDateTime()))
        )

    def downgrade(connection: sa.Connection) -> None:
        command.downgrade(migrate.alembic_config(connection), "0008_gateway_session_owner")

    async with empty_database.engine.begin() as connection:
        await connection.run_sync(downgrade)
    assert await migrate.current_revision(empty_database.engine) == "0008_gateway_session_owner"
    async with empty_database.engine.connect() as connection:
        columns = await connection.run_sync(lambda c: {c["name"] for c in inspect(c).get_columns("tickets")})
        lines = (await connection.execute(sa.text("SELECT text FROM ticket_messages"))).scalars().all()
    assert "close_round" not in columns
    assert lines == ["export fails"]
