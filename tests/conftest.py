"""Shared fixtures: a fresh database per test on SQLite and (with TEST_DATABASE_URL) PostgreSQL,
and a bot wired to the fake adapter that tests talk to like a customer or a staff member."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings

from storage.db import Database
from tests.bot_process import fresh_postgres
from tests.harness import BotHarness, make_settings
from tests.pooled_databases import PostgresSchemas, SqliteTemplate, drop_schema

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "")
_POSTGRES = PostgresSchemas(POSTGRES_URL)
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
    """A database with no tables."""
    if kind == "sqlite":
        database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/supportbot.db")
        yield database
        await database.dispose()
        return
    url = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with asyncpg_connection() as connection:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
    database = Database.from_url(url, schema=schema)
    try:
        yield database
    finally:
        await database.dispose()
        await drop_schema(_POSTGRES.dsn, schema)


async def _migrated_database(kind: str, tmp_path: Path, template: SqliteTemplate) -> AsyncIterator[Database]:
    """A migrated, empty database: a copy of this test process's migrated SQLite file, or one of
    its migrated PostgreSQL schemas (`tests/pooled_databases.py`)."""
    if kind == "sqlite":
        await template.copy_to(tmp_path / "supportbot.db")
        database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/supportbot.db")
        yield database
        await database.dispose()
        return
    url = postgres_url()
    schema = await _POSTGRES.take()
    database = Database.from_url(url, schema=schema)
    try:
        yield database
    finally:
        await database.dispose()
        await _POSTGRES.give_back(schema)


def postgres_url() -> str:
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    return POSTGRES_URL


@asynccontextmanager
async def asyncpg_connection() -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(_POSTGRES.dsn)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("migrated"))


@pytest.fixture(scope="session", autouse=True)
def _pooled_schemas_dropped() -> Iterator[None]:
    yield
    asyncio.run(_POSTGRES.drop_all())


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
async def empty_database(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Database]:
    """A database with no tables, on each engine."""
    async for database in _fresh_database(request.param, tmp_path):
        yield database


@pytest.fixture(params=DATABASES)
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: SqliteTemplate
) -> AsyncIterator[Database]:
    """A migrated, empty database, on each engine."""
    async for database in _migrated_database(request.param, tmp_path, sqlite_template):
        yield database


@pytest.fixture
async def sqlite_database(tmp_path: Path, sqlite_template: SqliteTemplate) -> AsyncIterator[Database]:
    async for database in _migrated_database("sqlite", tmp_path, sqlite_template):
        yield database


@pytest.fixture
async def bot(database: Database, tmp_path: object) -> AsyncIterator[BotHarness]:
    """The whole bot on the fake adapter, on each database."""
    harness = await BotHarness.create(make_settings(tmp_path), database=database)
    yield harness
    await harness.close()


@pytest.fixture
async def next_process(database: Database, tmp_path: object) -> AsyncIterator[BotHarness]:
    """The bot started again after `bot` died, on its own connections to the same database."""
    other = database.another_connection_pool()
    harness = await BotHarness.create(make_settings(tmp_path), database=other)
    yield harness
    await harness.close()
    await other.dispose()


@pytest.fixture
async def postgres_database(tmp_path: Path, sqlite_template: SqliteTemplate) -> AsyncIterator[Database]:
    """PostgreSQL only, for what SQLite cannot show (row locks, several connections racing)."""
    async for database in _migrated_database("postgres", tmp_path, sqlite_template):
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
