"""The web server's health endpoint checks the database."""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.web import WebServer, create_web_app
from storage.db import Database


async def test_healthz_reports_the_database(database: Database) -> None:
    async with TestClient(TestServer(create_web_app(database))) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        assert await response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_fails_when_the_database_is_gone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/../nope/x.db")
    await broken.dispose()
    broken = Database.from_url("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    async with TestClient(TestServer(create_web_app(broken))) as client:
        response = await client.get("/healthz")
        assert response.status == 503
        assert (await response.json())["database"] == "unreachable"
    await broken.dispose()


async def test_the_address_logged_for_an_ipv6_host_is_one_a_browser_opens(
    sqlite_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """`WEB_HOST=::1` was logged as `http://::1:8080`, which no browser or curl takes for a port."""
    server = WebServer(create_web_app(sqlite_database), host="::1", port=0)
    with caplog.at_level(logging.INFO, logger="bot.web"):
        await server.start()
    try:
        assert f"web server on http://[::1]:{server.port}" in caplog.messages
    finally:
        await server.stop()
