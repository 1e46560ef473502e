"""Apply alembic migrations from code, on the engine the bot already has (works inside a running loop)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.sqlite.ownership import foreign_tables

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


class SchemaRefused(Exception):
    """A database this version must not bring to its schema; the upgrade changed nothing."""


class UnknownSchema(SchemaRefused):
    """The database's schema revision is none of this version's migrations: a newer version upgraded
    it (a deploy rolled back since), or it is another program's alembic database."""


class AnotherProgramsDatabase(SchemaRefused):
    """A SQLite file with tables and no schema of ours: DATABASE_URL names another program's database."""


def known_revisions() -> set[str]:
    """Every schema revision this version has a migration for."""
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _upgrade(connection: Connection, target: str) -> None:
    # Alembic would raise its own CommandError ("Can't locate revision"), which says nothing of why.
    revision = _current(connection)
    if revision is not None and revision not in known_revisions():
        raise UnknownSchema(
            f"the database is at schema {revision}, which this supportbot does not know "
            "(made by a newer version? run that one, or restore a backup made before it)"
        )
    theirs = _another_programs(connection) if revision is None else None
    command.upgrade(alembic_config(connection), target)
    if theirs is not None:
        # Raised after the migrations, which roll back with it, so that where a table of theirs has
        # one of our names the migration's own error ("table tickets already exists") names it.
        raise theirs


def _another_programs(connection: Connection) -> AnotherProgramsDatabase | None:
    """A SQLite file with tables and no schema of ours. PostgreSQL is left out: one database there
    may well hold several programs' tables."""
    if connection.dialect.name != "sqlite":
        return None
    theirs = foreign_tables(lambda sql: connection.exec_driver_sql(sql).fetchall())
    if not theirs:
        return None
    shown = ", ".join(theirs[:3]) + (", ..." if len(theirs) > 3 else "")
    return AnotherProgramsDatabase(
        f"another program's database (its tables: {shown}); name a file of supportbot's own, "
        "new or made by it"
    )


def _ours_or_new(connection: Connection) -> None:
    # No alembic_version means no revision: the tables alone tell (reading a revision can fail).
    if (theirs := _another_programs(connection)) is not None:
        raise theirs


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, target: str = "head") -> None:
    """Bring the schema to `target`. Safe to run on every start and from several processes. Raises
    SchemaRefused, changing nothing, on a schema of no migration this version has or on another
    program's SQLite database."""
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Two processes starting together must not both create the tables.
            await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        elif engine.dialect.name == "sqlite":
            # sqlite3 begins a transaction only before INSERT/UPDATE/DELETE, so each CREATE TABLE
            # ahead of the first one would stand on its own, and an upgrade that fails half-way
            # would leave its tables in the file (another program's database, named by mistake).
            # An explicit BEGIN makes the whole upgrade one transaction (sqlite3 adds none inside
            # it, and commits or rolls back with it); IMMEDIATE takes the write lock first, so a
            # second process waits here, then finds the schema already at head.
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        await connection.run_sync(_upgrade, target)


async def check_ours_or_new(engine: AsyncEngine) -> None:
    """Raises AnotherProgramsDatabase for a SQLite file that holds tables and no schema of ours."""
    async with engine.connect() as connection:
        await connection.run_sync(_ours_or_new)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)
