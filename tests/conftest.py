"""Shared fixtures: a fresh database per test on SQLite and (with TEST_DATABASE_URL) PostgreSQL,
and a bot wired to the fake adapter that tests talk to like a customer or a staff member."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage import migrate
from storage.db import Database
from tests.bot_process import fresh_postgres
from tests.harness import BotHarness, make_settings

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "")
NO_POSTGRES = "TEST_DATABASE_URL is not set (CI sets it; locally: TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test)"

# Property tests: few enough examples that all of them run in seconds on two cores, no deadline
# (a shared CI machine is slow now and then), and in CI the same examples on every run.
hypothesis_settings.register_profile(
    "supportbot", max_examples=60, deadline=None, derandomize=bool(os.environ.get("CI")), print_blob=True
)
# HYPOTHESIS_PROFILE=thorough searches much longer, for a hunt before a release.
hypothesis_settings.register_profile("thorough", max_examples=3000, deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "supportbot"))


async def _fresh_database(kind: str, tmp_path: object) -> AsyncIterator[Database]:
    if kind == "sqlite":
        database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/supportbot.db")
        yield database
        await database.dispose()
        return
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    database = Database.from_url(POSTGRES_URL, schema=schema)
    try:
        yield database
    finally:
        await database.dispose()
        await _drop_schema(admin, schema)
        await admin.dispose()


async def _drop_schema(admin: AsyncEngine, schema: str) -> None:
    """Drop a test's schema. A connection another engine of the test left behind (a bot process, a
    second pool) may still hold locks in it: end those sessions first, and retry a lost deadlock."""
    for attempt in range(5):
        try:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks l JOIN pg_namespace n ON n.nspname = $1 "
                    "WHERE l.pid <> pg_backend_pid() AND l.relation IN "
                    "(SELECT c.oid FROM pg_class c WHERE c.relnamespace = n.oid)",
                    (schema,),
                )
                await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            return
        except DBAPIError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
async def empty_database(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Database]:
    """A database with no tables, on each engine."""
    async for database in _fresh_database(request.param, tmp_path):
        yield database


@pytest.fixture(params=DATABASES)
async def database(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Database]:
    """A migrated, empty database, on each engine."""
    async for database in _fresh_database(request.param, tmp_path):
        await migrate.upgrade(database.engine)
        yield database


@pytest.fixture
async def sqlite_database(tmp_path: object) -> AsyncIterator[Database]:
    async for database in _fresh_database("sqlite", tmp_path):
        await migrate.upgrade(database.engine)
        yield database


@pytest.fixture
async def bot(database: Database, tmp_path: object) -> AsyncIterator[BotHarness]:
    """The whole bot on the fake adapter, on each database."""
    harness = await BotHarness.create(make_settings(tmp_path), database=database)
    yield harness
    await harness.close()


@pytest.fixture
async def postgres_database(tmp_path: object) -> AsyncIterator[Database]:
    """PostgreSQL only, for what SQLite cannot show (row locks, several connections racing)."""
    async for database in _fresh_database("postgres", tmp_path):
        await migrate.upgrade(database.engine)
        yield database


Processes = tuple[BotHarness, BotHarness]


@pytest.fixture
async def processes(postgres_database: Database, tmp_path: Path) -> AsyncIterator[Processes]:
    """Two bots sharing one PostgreSQL database, as two processes behind one app would."""
    first = await BotHarness.create(make_settings(tmp_path), database=postgres_database)
    second = await BotHarness.create(make_settings(tmp_path), database=postgres_database)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@asynccontextmanager
async def postgres_for_processes(prefix: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database's URL for `supportbot run` processes (which take a URL, not a
    test schema), dropped after; skipped without TEST_DATABASE_URL, and a failure in CI, which sets it."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail(NO_POSTGRES)
        pytest.skip(NO_POSTGRES)
    url, drop = await fresh_postgres(POSTGRES_URL, prefix=prefix)
    try:
        yield url
    finally:
        await drop()
