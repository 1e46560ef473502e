"""A DATABASE_URL written the way hosting providers hand it out (libpq's `sslmode`) reaches asyncpg
as its own `ssl`, and a database reached that way opens."""

from __future__ import annotations

import logging
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


def test_the_session_attributes_settings_accept_are_asyncpgs() -> None:
    from asyncpg.connect_utils import SessionAttribute

    from bot.settings import _SESSION_ATTRIBUTES

    assert set(_SESSION_ATTRIBUTES) == {attribute.value for attribute in SessionAttribute}


def test_a_prepared_statement_cache_size_is_sqlalchemys_and_never_reaches_pg_dump(tmp_path: Path) -> None:
    """SQLAlchemy's asyncpg dialect takes it; libpq (pg_dump) would refuse the whole URL for it."""
    url = f"{PROVIDED}&prepared_statement_cache_size=0&target_session_attrs=read-write"
    asked = _asks_asyncpg(url)
    assert asked["prepared_statement_cache_size"] == 0
    assert asked["target_session_attrs"] == "read-write"
    dump = pg_dump_command(url, tmp_path / "nightly.dump")
    assert "prepared_statement_cache_size" not in dump
    assert "target_session_attrs=read-write" in dump and "sslmode=verify-full" in dump


@pytest.mark.postgres
async def test_a_database_named_with_those_parameters_opens() -> None:
    parameters = {"prepared_statement_cache_size": "0", "target_session_attrs": "any"}
    url = make_url(postgres_url()).update_query_dict(parameters)
    database = Database.from_url(url.render_as_string(hide_password=False))
    try:
        await database.ping()
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_a_database_named_with_sslmode_opens() -> None:
    # `prefer` opens a server without TLS too, as the test server is.
    url = make_url(postgres_url()).update_query_dict({"sslmode": "prefer"})
    database = Database.from_url(url.render_as_string(hide_password=False))
    try:
        await database.ping()
    finally:
        await database.dispose()


def test_a_sqlite_folder_made_for_the_database_is_logged_once_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/dta/supportbot.db"
    with caplog.at_level(logging.INFO, logger="storage.sqlite.engine.folder"):
        create_engine(url)
        create_engine(url)
        create_engine(f"sqlite+aiosqlite:///{tmp_path}/here.db")

    (made,) = [r for r in caplog.records if r.name == "storage.sqlite.engine.folder"]
    assert made.levelno == logging.INFO
    assert f"created the folder {tmp_path / 'dta'} for the SQLite database" in made.getMessage()
