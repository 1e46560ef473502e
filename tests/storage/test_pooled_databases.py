"""The tests' reused PostgreSQL schemas: each test gets one as the migrations made it, empty, under
a name no test had, and a schema a test changed is dropped rather than handed on."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import postgres_url
from tests.pooled_databases import PostgresSchemas

pytestmark = pytest.mark.postgres

AUDITED = (
    "INSERT INTO audit_log (at, actor_key, action, allowed, detail) VALUES (now(), 'U1', 'test', true, '')"
)


async def _run(schemas: PostgresSchemas, name: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(schemas.dsn, server_settings={"search_path": name})
    try:
        return await connection.fetch(sql)
    finally:
        await connection.close()


async def _oid(schemas: PostgresSchemas, name: str) -> int:
    connection = await asyncpg.connect(schemas.dsn)
    try:
        return int(await connection.fetchval("SELECT oid FROM pg_namespace WHERE nspname = $1", name))
    finally:
        await connection.close()


async def _exists(schemas: PostgresSchemas, name: str) -> bool:
    connection = await asyncpg.connect(schemas.dsn)
    try:
        return bool(await connection.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", name))
    finally:
        await connection.close()


async def test_the_next_test_gets_the_schema_empty_with_its_numbering_restarted_under_a_new_name() -> None:
    schemas = PostgresSchemas(postgres_url())
    try:
        first = await schemas.take()
        await _run(schemas, first, AUDITED)
        assert len(await _run(schemas, first, "SELECT id FROM audit_log")) == 1
        made = await _oid(schemas, first)
        await schemas.give_back(first)
        assert schemas.kept == 1, "kept for the next test, not dropped"

        second = await schemas.take()
        assert second != first and not await _exists(schemas, first)
        assert await _oid(schemas, second) == made, "the same schema handed on, not a new one migrated"
        assert await _run(schemas, second, "SELECT id FROM audit_log") == []
        await _run(schemas, second, AUDITED)
        assert [row["id"] for row in await _run(schemas, second, "SELECT id FROM audit_log")] == [1]
        await schemas.give_back(second)
    finally:
        await schemas.drop_all()


async def test_rows_a_finished_test_wrote_after_handing_its_schema_back_do_not_reach_the_next() -> None:
    """A task the test left running (a bot it did not stop) writes on after the test's teardown."""
    schemas = PostgresSchemas(postgres_url())
    try:
        first = await schemas.take()
        await schemas.give_back(first)
        await _run(schemas, first, AUDITED)

        second = await schemas.take()
        assert await _run(schemas, second, "SELECT id FROM audit_log") == []
        await schemas.give_back(second)
    finally:
        await schemas.drop_all()


CHANGES = {
    "a column": ("ALTER TABLE audit_log ADD COLUMN left_by_a_test integer",),
    "a type": ("CREATE TYPE left_by_a_test AS ENUM ('open')",),
    "a trigger": (
        "CREATE FUNCTION left_by_a_test() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'refused'; END $$",
        "CREATE TRIGGER left_by_a_test BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION left_by_a_test()",
    ),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
async def test_a_schema_a_test_changed_is_dropped_not_handed_on(change: tuple[str, ...]) -> None:
    schemas = PostgresSchemas(postgres_url())
    try:
        changed = await schemas.take()
        for statement in change:
            await _run(schemas, changed, statement)
        await schemas.give_back(changed)
        assert not await _exists(schemas, changed)

        fresh = await schemas.take()
        await _run(schemas, fresh, AUDITED)  # neither refused nor short of a column
        columns = await _run(
            schemas,
            fresh,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'audit_log'",
        )
        assert "left_by_a_test" not in {row["column_name"] for row in columns}
        await schemas.give_back(fresh)
    finally:
        await schemas.drop_all()
