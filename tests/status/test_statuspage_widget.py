"""A real consumer of Statuspage's public API reads ours: Atlassian's own status widget
(@statuspage/status-widget 1.0.5, Apache-2.0, `dist/index.js` kept unchanged in
tests/data/statuspage-widget/), embedded on another site and run in Chromium, fetches our
/api/v2/summary.json across origins and shows our status as it shows a Statuspage page's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.browser import chromium_binary
from tests.harness import BotHarness
from tests.status.conftest import served

WIDGET = Path(__file__).resolve().parent.parent / "data" / "statuspage-widget" / "index.js"


@pytest.fixture
async def other_site(page_url: str) -> AsyncIterator[str]:
    """A customer's own site, on another origin, with the widget pointed at our page."""

    async def page(_: web.Request) -> web.Response:
        body = (
            "<!doctype html><html><body>"
            f'<statuspage-widget id="basic" src="{page_url}"></statuspage-widget>'
            f'<statuspage-widget id="badge" src="{page_url}" appearance="badge" title="Acme">'
            "</statuspage-widget>"
            '<script src="/widget.js"></script></body></html>'
        )
        return web.Response(text=body, content_type="text/html")

    async def script(_: web.Request) -> web.FileResponse:
        return web.FileResponse(WIDGET)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/widget.js", script)
    async with served(app) as url:
        yield url


async def test_atlassians_status_widget_on_another_site_shows_our_status(
    bot: BotHarness, page_url: str, other_site: str
) -> None:
    chromium = chromium_binary()
    from playwright.async_api import async_playwright

    await bot.staff_runs("/incident open payments major Card payments failing")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(other_site)
            # Playwright's locators reach into the widget's shadow DOM.
            basic = page.locator("#basic .status-text")
            await basic.wait_for(timeout=10_000)
            assert await basic.inner_text() == "Partial System Outage"
            assert "major" in (await page.locator("#basic .status-indicator").get_attribute("class") or "")
            assert await page.locator("#basic a").get_attribute("href") == page_url
            badge = page.locator("#badge .status-indicator")
            await badge.wait_for(timeout=10_000)
            # (The badge's CSS lowercases what it shows: compare the text it was given.)
            assert (await badge.text_content() or "").strip() == "Partial System Outage"
            assert (await page.locator("#badge .status-text").text_content() or "").strip() == "Acme"
        finally:
            await browser.close()
