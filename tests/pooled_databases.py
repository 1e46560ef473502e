"""Migrated databases for tests, made once per test process and handed out clean.

Running the migrations is most of what a test's fresh database costs (on PostgreSQL ~0.5-1 s of
DDL per test, ~0.2 s on SQLite), and over a thousand tests take one. So each test process migrates
once: SQLite into a template file that every test gets a copy of, PostgreSQL into schemas that
are handed to the next test. A reused schema gets a new name for each test and is emptied after
the renaming, so a connection a finished test left behind (its search_path names the old one)
cannot reach the next test's rows, nor leave rows for it; a schema whose tables a test changed,
or that cannot be emptied, is dropped instead of reused.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from storage import migrate
from storage.db import Database

# What a schema's relations, columns, constraints, triggers and functions look like, to tell whether a
# test left it as the migrations made it (the schema's own name left out: it changes with every test).
_SHAPE = """
SELECT md5(coalesce(string_agg(line, E'\\n' ORDER BY line), '')) FROM (
    SELECT concat_ws(' ', 'relation', c.relkind, c.relname) AS line
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
    UNION ALL
    SELECT concat_ws(' ', 'column', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                     a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT concat_ws(' ', 'constraint', c.conname, c.contype, pg_get_constraintdef(c.oid))
    FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1
    UNION ALL
    SELECT concat_ws(' ', 'trigger', c.relname, t.tgname, t.tgenabled)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND NOT t.tgisinternal
    UNION ALL
    SELECT concat_ws(' ', 'function', p.proname, md5(p.prosrc))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1
    UNION ALL
    SELECT concat_ws(' ', 'type', t.typname, t.typtype)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $1
    UNION ALL
    SELECT concat_ws(' ', 'rule', r.rulename) FROM pg_rules r WHERE r.schemaname = $1
    UNION ALL
    SELECT concat_ws(' ', 'revision', version_num) FROM alembic_version
) shape
"""
# Sessions a finished test left holding locks in its schema (a bot it stopped mid-transaction).
_LOCK_HOLDERS = (
    "SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT l.pid FROM pg_locks l "
    "JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()) holders"
)


class SqliteTemplate:
    """One migrated SQLite file per test process; each test gets a copy."""

    def __init__(self, folder: Path) -> None:
        self._file = folder / "migrated.db"
        self._made = False

    async def copy_to(self, path: Path) -> None:
        if not self._made:
            database = Database.from_url(f"sqlite+aiosqlite:///{self._file}")
            await migrate.upgrade(database.engine)
            await database.dispose()
            if any(self._file.with_name(self._file.name + end).exists() for end in ("-wal", "-journal")):
                raise RuntimeError("the migrated template was left with a journal: copies would miss it")
            self._made = True
        shutil.copyfile(self._file, path)


class PostgresSchemas:
    """Migrated schemas on `url`'s database, one per test at a time, emptied between tests."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dsn = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False) if url else ""
        )
        """The same database for asyncpg itself (empty without TEST_DATABASE_URL)."""
        self._free: list[str] = []
        self._shape: str | None = None

    async def take(self) -> str:
        """A migrated, empty schema under a name no test used before."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        while self._free:
            if await self._reused(self._free.pop(), name):
                return name
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(f'CREATE SCHEMA "{name}"')
        finally:
            await connection.close()
        database = Database.from_url(self.url, schema=name)
        try:
            await migrate.upgrade(database.engine)
        finally:
            await database.dispose()
        if self._shape is None:
            connection = await asyncpg.connect(self.dsn, server_settings={"search_path": name})
            try:
                self._shape = await connection.fetchval(_SHAPE, name)
            finally:
                await connection.close()
        return name

    async def give_back(self, name: str) -> None:
        """Keep the schema for the next test, or drop it when it is not as the migrations made it.
        It is emptied when taken, under its new name: a task the test left running may still write
        to it under this one until then."""
        connection = await asyncpg.connect(self.dsn, server_settings={"search_path": name})
        try:
            await connection.execute("SET lock_timeout = '5s'")
            await connection.execute(_LOCK_HOLDERS, name)
            if await self._as_migrated(connection, name):
                self._free.append(name)
                return
        except (asyncpg.PostgresError, OSError):
            pass  # dropped below, as a schema that cannot be checked
        finally:
            await connection.close()
        await drop_schema(self.dsn, name)

    async def _reused(self, kept: str, name: str) -> bool:
        """Rename a kept schema to `name`, then empty it; False (and dropped) when it cannot be."""
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(f'ALTER SCHEMA "{kept}" RENAME TO "{name}"')
        except asyncpg.PostgresError:
            await connection.close()
            await drop_schema(self.dsn, kept)
            return False
        await connection.close()
        connection = await asyncpg.connect(self.dsn, server_settings={"search_path": name})
        try:
            await connection.execute("SET lock_timeout = '5s'")
            await connection.execute(_LOCK_HOLDERS, name)
            await self._empty(connection, name)
            return True
        except (asyncpg.PostgresError, OSError):
            pass  # dropped below, as a schema that cannot be emptied
        finally:
            await connection.close()
        await drop_schema(self.dsn, name)
        return False

    async def _as_migrated(self, connection: asyncpg.Connection, name: str) -> bool:
        return bool(await connection.fetchval(_SHAPE, name) == self._shape)

    @staticmethod
    async def _empty(connection: asyncpg.Connection, name: str) -> None:
        tables = [
            row[0]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'alembic_version'",
                name,
            )
        ]
        sequences = [
            row[0]
            for row in await connection.fetch(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = $1", name
            )
        ]
        # Foreign keys are not checked while emptying (replica role), so the order does not matter.
        statements = [
            "BEGIN",
            "SET LOCAL session_replication_role = replica",
            *(f'DELETE FROM "{name}"."{table}"' for table in tables),
            *(f'ALTER SEQUENCE "{name}"."{sequence}" RESTART' for sequence in sequences),
            "COMMIT",
        ]
        await connection.execute(";\n".join(statements))

    @property
    def kept(self) -> int:
        """How many schemas wait to be handed to the next test."""
        return len(self._free)

    async def drop_all(self) -> None:
        """At the end of the test process: the schemas still kept for reuse."""
        while self._free:
            await drop_schema(self.dsn, self._free.pop())


async def drop_schema(dsn: str, schema: str) -> None:
    """Drop a test's schema. A connection another engine of the test left behind (a bot process, a
    second pool) may still hold locks in it: end those sessions first, and retry a lost deadlock."""
    for attempt in range(5):
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(_LOCK_HOLDERS, schema)
            await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return
        except asyncpg.PostgresError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
        finally:
            await connection.close()
