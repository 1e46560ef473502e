"""Migrations build the schema from nothing on both databases, and agree with the models."""

from __future__ import annotations

from sqlalchemy import inspect
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
