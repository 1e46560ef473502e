"""Links to the status page in answers: PUBLIC_URL when a team sets it, else the address the bot's
own web server listens on, so moving WEB_PORT moves the links too."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp

from bot.app import create_bot
from bot.core.events import Platform
from storage.db import Database
from tests.fake_adapter import FakeAdapter
from tests.harness import BotHarness, FakeClock, make_settings
from tests.status.conftest import deliver, subscribe


def test_without_public_url_links_follow_the_web_servers_port(tmp_path: Path) -> None:
    assert make_settings(tmp_path, public_url="", web_port=18931).status_page_url == "http://127.0.0.1:18931/"
    assert make_settings(tmp_path, public_url="").status_page_url == "http://127.0.0.1:8080/"


def test_a_server_on_every_interface_is_linked_on_this_machine(tmp_path: Path) -> None:
    assert (
        make_settings(tmp_path, public_url="", web_host="0.0.0.0", web_port=9000).status_page_url
        == "http://127.0.0.1:9000/"
    )
    assert (
        make_settings(tmp_path, public_url="", web_host="::1", web_port=9000).status_page_url
        == "http://[::1]:9000/"
    )
    for every_interface, here in [
        ("", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        *((ipv6, "[::1]") for ipv6 in ("::", "0:0:0:0:0:0:0:0", "::0")),
    ]:
        linked = make_settings(
            tmp_path, public_url="", web_host=every_interface, web_port=9000
        ).status_page_url
        assert linked == f"http://{here}:9000/", every_interface
    assert make_settings(
        tmp_path, public_url="", web_host="status.internal", web_port=9000
    ).status_page_url == ("http://status.internal:9000/")


def test_public_url_wins_when_set(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, web_port=18931, public_url="https://status.example.com/")
    assert settings.status_page_url == "https://status.example.com/"


async def test_with_web_port_0_links_carry_the_port_the_server_was_given(
    database: Database, tmp_path: Path
) -> None:
    # WEB_PORT=0 lets the system pick a free port; links saying ":0" lead nowhere.
    adapter = FakeAdapter()
    clock = FakeClock()
    bot = await create_bot(
        make_settings(tmp_path, public_url="", web_enabled=True, web_port=0),
        adapters={Platform.CONSOLE: adapter},
        clock=clock,
        database=database,
    )
    await bot.start()
    try:
        assert bot.web is not None and bot.web.port != 0
        page = f"http://127.0.0.1:{bot.web.port}/"

        [reply] = await BotHarness(bot, adapter, clock).customer_runs("/status")
        assert f"Status page: {page}" in reply.text

        async with aiohttp.ClientSession() as http, http.get(f"{page}api/v2/status.json") as answer:
            assert (await answer.json())["page"]["url"] == page
    finally:
        await bot.stop()


async def test_a_server_on_every_ipv6_interface_is_linked_where_it_answers(
    database: Database, tmp_path: Path
) -> None:
    """A server on `::` and a fixed port takes IPv6 only (asyncio sets IPV6_V6ONLY), so a link to
    127.0.0.1 was refused; ::1 answers it."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.bind(("::", 0))
        port = probe.getsockname()[1]
    bot = await create_bot(
        make_settings(tmp_path, public_url="", web_enabled=True, web_host="::", web_port=port),
        adapters={Platform.CONSOLE: FakeAdapter()},
        clock=FakeClock(),
        database=database,
    )
    await bot.start()
    try:
        page = bot.settings.status_page_url
        async with aiohttp.ClientSession() as http, http.get(f"{page}api/v2/status.json") as answer:
            assert answer.status == 200, page
    finally:
        await bot.stop()


async def test_with_no_status_page_served_answers_and_notices_link_nowhere(
    database: Database, tmp_path: Path
) -> None:
    """WEB_ENABLED=false and no PUBLIC_URL: nothing serves a status page, so no answer, incident
    notice or "resolved" message points customers at one."""
    settings = make_settings(tmp_path, web_enabled=False, public_url="")
    bot = await BotHarness.create(settings, database=database)
    try:
        await subscribe(bot, "news")
        [overview] = await bot.customer_runs("/status")
        [one] = await bot.customer_runs("/status api")
        await bot.staff_runs("/incident open api major API returning errors")
        [asked] = await bot.customer_says("is the api down?")
        bot.clock.advance(minutes=5)
        await bot.staff_runs("/incident resolve 1 Fixed")
        await deliver(bot)
        told = [message.text for message in bot.adapter.sent]
    finally:
        await bot.close()
    for text in (overview.text, one.text, asked.text, *told):
        assert "Status page:" not in text and "http" not in text, text
    assert any("API returning errors" in text for text in told), "the incident notice went out"
    assert any(text.startswith("Good news") for text in told), "the asker heard it is resolved"
