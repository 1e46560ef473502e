"""Migrations build the schema from nothing on both databases, and agree with the models."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage import migrate
from storage.db import Database


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
