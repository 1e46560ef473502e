"""The operator's look for the status pages: name, logo, accent colour, and templates that replace
ours by name; bad values stop the start with one line that says what to fix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app import StartupError, create_bot, status_page_routes
from bot.settings import SettingsError, load_settings
from bot.web import create_web_app
from storage.db import Database
from tests.browser import chromium_binary
from tests.harness import BotHarness, FakeClock, make_settings
from tests.status.conftest import served


async def _serve(bot: BotHarness, **overrides: Any) -> AsyncIterator[str]:
    settings = bot.bot.settings.model_copy(update=overrides)
    async with served(create_web_app(bot.bot.database, [status_page_routes(settings, bot.clock)])) as url:
        yield url


async def _text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


async def test_name_logo_and_accent_show_on_every_page(bot: BotHarness) -> None:
    async for url in _serve(
        bot,
        status_page_name="Acme <Cloud> & Co",
        status_page_logo_url="https://cdn.example.com/logo.png?a=1&b=2",
        status_page_accent="#ff6600",
    ):
        for path in ("/", "/history"):
            body = await _text(f"{url}{path}")
            assert "Acme &lt;Cloud&gt; &amp; Co" in body and "Acme <Cloud>" not in body
            assert '<img src="https://cdn.example.com/logo.png?a=1&amp;b=2"' in body
            assert "--accent:#ff6600" in body
        async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v2/summary.json") as response:
            assert (await response.json())["page"]["name"] == "Acme <Cloud> & Co"


async def test_an_operator_template_replaces_ours_and_the_rest_fall_back(
    bot: BotHarness, tmp_path: Path
) -> None:
    folder = tmp_path / "look"
    folder.mkdir()
    (folder / "status.html").write_text(
        '{% extends "base.html" %}{% block content %}<p id="mine">Ours is {{ indicator_text }}: '
        "{% for i in active %}{{ i.title }}{% endfor %}</p>{% endblock %}"
    )
    await bot.staff_runs("/incident open api minor <script>x()</script>")
    async for url in _serve(bot, status_page_templates=folder):
        page = await _text(f"{url}/")
        assert '<p id="mine">Ours is Minor Service Outage: &lt;script&gt;x()&lt;/script&gt;</p>' in page
        assert "<header>" in page, "the shipped base.html still frames it"
        history = await _text(f"{url}/history")
        assert "Incident history" in history, "history.html falls back to the shipped one"


async def test_a_template_with_a_syntax_error_stops_the_start_naming_the_file(
    database: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "look"
    folder.mkdir()
    (folder / "history.html").write_text("<h1>History</h1>\n{% for day in history.days %}\n<p>oops</p>\n")
    settings = make_settings(tmp_path, web_enabled=True, web_port=0, status_page_templates=str(folder))

    with pytest.raises(StartupError) as raised:
        await create_bot(settings, adapters={}, clock=FakeClock(), database=database, with_web=True)

    message = str(raised.value)
    assert str(folder / "history.html") in message and "line" in message
    assert "\n" not in message


async def test_a_template_that_fails_when_rendered_stops_the_start_too(
    bot: BotHarness, tmp_path: Path
) -> None:
    (tmp_path / "status.html").write_text('{% extends "layout.html" %}{% block content %}hi{% endblock %}')
    settings = bot.bot.settings.model_copy(update={"status_page_templates": tmp_path})

    with pytest.raises(StartupError) as raised:
        status_page_routes(settings, bot.clock)

    assert str(raised.value) == "status page template status.html: TemplateNotFound: layout.html"


async def test_a_template_that_breaks_only_once_there_is_data_falls_back_to_ours_and_says_where(
    bot: BotHarness, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "look").mkdir()
    (tmp_path / "look" / "status.html").write_text(
        '{% extends "base.html" %}{% block content %}<p id="mine">{{ indicator_text }}</p>\n'
        '{% for i in active %}<p>{{ i.started.strftime("%H:%M") }}</p>{% endfor %}{% endblock %}'
    )
    # Relative, as an operator may well write it in .env.
    async for url in _serve(bot, status_page_templates=Path("look")):
        assert '<p id="mine">All Systems Operational</p>' in await _text(f"{url}/"), "fine while quiet"
        assert not [r for r in caplog.records if r.levelname == "ERROR"]

        await bot.staff_runs("/incident open api minor Elevated error rates")
        caplog.clear()
        page = await _text(f"{url}/")  # 200, not 500
        assert 'id="mine"' not in page and "Elevated error rates" in page, "the shipped page instead"
        await _text(f"{url}/")

    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, "once, not on every visit"
    assert errors[0].startswith(
        f"status page template {tmp_path / 'look' / 'status.html'}, line 2: UndefinedError:"
    )
    assert "showing the shipped status.html instead" in errors[0]


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("STATUS_PAGE_ACCENT", "red", "STATUS_PAGE_ACCENT: 'red' is not a colour; write #RRGGBB"),
        ("STATUS_PAGE_ACCENT", "#12345", "is not a colour"),
        ("STATUS_PAGE_ACCENT", "#ff6600;}body{display:none", "is not a colour"),
        ("STATUS_PAGE_ACCENT", "url(javascript:alert(1))", "is not a colour"),
        ("STATUS_PAGE_LOGO_URL", "javascript:alert(1)", "STATUS_PAGE_LOGO_URL: 'javascript:alert(1)' is not"),
        ("STATUS_PAGE_LOGO_URL", "//cdn.example.com/logo.png", "is not an http(s) URL"),
        ("STATUS_PAGE_LOGO_URL", "data:image/png;base64,AAAA", "is not an http(s) URL"),
        ("STATUS_PAGE_LOGO_URL", "https://cdn.example.com/a logo.png", "is not an http(s) URL"),
        ("STATUS_PAGE_TEMPLATES", "/nonexistent/look", "STATUS_PAGE_TEMPLATES: '/nonexistent/look' is not a"),
    ],
)
def test_bad_look_settings_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(setting, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_accent_written_in_a_dotenv_file_is_read_as_a_colour(tmp_path: Path) -> None:
    # `#` starts a comment in many .env readers; after `=` with no space it is the value.
    env = tmp_path / ".env"
    env.write_text("STATUS_PAGE_ACCENT=#FF6600\nSTATUS_PAGE_NAME=Acme status\n")
    settings = load_settings(_env_file=env)
    assert (settings.status_page_accent, settings.status_page_name) == ("#ff6600", "Acme status")


LOGO = "<svg xmlns='http://www.w3.org/2000/svg' width='40' height='20'><rect width='40' height='20'/></svg>"


@pytest.fixture
async def logo_site() -> AsyncIterator[str]:
    """The operator's logo on a site of its own, as a CDN would serve it."""

    async def logo(_: web.Request) -> web.Response:
        return web.Response(text=LOGO, content_type="image/svg+xml")

    app = web.Application()
    app.router.add_get("/logo.svg", logo)
    async with served(app) as url:
        yield url


async def test_the_pages_content_security_policy_lets_in_their_look_and_nothing_else(
    bot: BotHarness, logo_site: str
) -> None:
    chromium = chromium_binary()
    from playwright.async_api import ConsoleMessage, async_playwright

    complaints: list[str] = []

    def complain(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            complaints.append(message.text)

    await bot.staff_runs("/incident open payments major Card payments failing")
    async for url in _serve(bot, status_page_logo_url=f"{logo_site}/logo.svg", status_page_accent="#ff6600"):
        async with aiohttp.ClientSession() as session:
            for path in ("/", "/history", "/api/v2/summary.json"):
                async with session.get(f"{url}{path}") as response:
                    assert response.headers["X-Content-Type-Options"] == "nosniff", path
                    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
                    if path != "/api/v2/summary.json":
                        policy = response.headers["Content-Security-Policy"]
                        assert "default-src 'none'" in policy and "unsafe-inline" not in policy, path

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = await browser.new_page()
                page.on("console", complain)
                for path in ("/", "/history"):
                    await page.goto(f"{url}{path}")
                    header = "getComputedStyle(document.querySelector('header')).borderTopColor"
                    assert await page.evaluate(header) == "rgb(255, 102, 0)", f"{path}: no style"
                    logo = await page.evaluate("document.querySelector('header img').naturalWidth")
                    assert logo == 40, f"{path}: the operator's logo did not load"
                    assert not complaints, f"{path}: {complaints}"
                # What got past the escaping could bring no style (nor script) of its own.
                hidden = await page.evaluate(
                    "() => { const s = document.createElement('style');"
                    " s.textContent = 'body{display:none}'; document.head.append(s);"
                    " return getComputedStyle(document.body).display }"
                )
                assert hidden == "block" and complaints, "an injected style applied"
            finally:
                await browser.close()
