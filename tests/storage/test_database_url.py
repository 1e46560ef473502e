"""A DATABASE_URL written the way hosting providers hand it out (libpq's `sslmode`) reaches asyncpg
as its own `ssl`, and a database reached that way opens."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.backup import pg_dump_command
from storage.db import Database, create_engine
from tests.conftest import postgres_url

PROVIDED = "postgresql+asyncpg://support:hunter2@db.example.com:5432/app?sslmode=verify-full"


def _asks_asyncpg(url: str) -> dict[str, object]:
    engine = create_engine(url)
    return dict(engine.dialect.create_connect_args(engine.url)[1])


def test_libpqs_sslmode_reaches_asyncpg_as_ssl_with_the_same_mode() -> None:
    asked = _asks_asyncpg(PROVIDED)
    assert asked["ssl"] == "verify-full"
    assert "sslmode" not in asked


def test_asyncpgs_own_ssl_is_passed_as_written() -> None:
    assert _asks_asyncpg(PROVIDED.replace("sslmode=", "ssl="))["ssl"] == "verify-full"


def test_pg_dump_is_given_the_sslmode_it_knows(tmp_path: Path) -> None:
    assert "sslmode=verify-full" in pg_dump_command(PROVIDED, tmp_path / "nightly.dump")


@pytest.mark.postgres
async def test_a_database_named_with_sslmode_opens() -> None:
    # `prefer` opens a server without TLS too, as the test server is.
    url = make_url(postgres_url()).update_query_dict({"sslmode": "prefer"})
    database = Database.from_url(url.render_as_string(hide_password=False))
    try:
        await database.ping()
    finally:
        await database.dispose()
