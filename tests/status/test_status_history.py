"""The incident history page: 90 days of incidents with their updates, and one uptime bar per
component and day, coloured by that day's worst status."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest

from tests.browser import chromium_binary
from tests.harness import BotHarness


class Bars(HTMLParser):
    """Each component's name, uptime text and day bars (class, title), read from the page's markup."""

    def __init__(self) -> None:
        super().__init__()
        self.components: dict[str, dict[str, object]] = {}
        self._current: dict[str, object] | None = None
        self._capture: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if "component" in classes:
            self._current = {"days": [], "uptime": "", "name": ""}
        elif self._current is not None and tag == "strong" and not self._current["name"]:
            self._capture = "name"
        elif self._current is not None and "uptime" in classes:
            self._capture = "uptime"
        elif self._current is not None and tag == "span" and found.get("title"):
            days = self._current["days"]
            assert isinstance(days, list)
            days.append((classes[0].removeprefix("b-"), found["title"]))

    def handle_data(self, data: str) -> None:
        if self._current is not None and self._capture:
            self._current[self._capture] = data
            if self._capture == "name":
                self.components[data] = self._current
            self._capture = None


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def _bars(page_url: str, query: str = "") -> dict[str, dict[str, object]]:
    status, body = await _get(f"{page_url}/history{query}")
    assert status == 200
    parser = Bars()
    parser.feed(body)
    return parser.components


async def test_a_day_with_an_outage_shows_its_worst_status_and_costs_uptime(
    bot: BotHarness, page_url: str
) -> None:
    # The components were declared on Nov 24 at 09:00 (the bot's start); the outage is the next day.
    bot.clock.advance(days=1)
    await bot.staff_runs("/incident open payments major Card payments failing")
    bot.clock.advance(hours=2)
    await bot.staff_runs("/incident resolve 1 Fixed")
    bot.clock.advance(days=1, hours=1)  # Nov 26, 12:00: 51 hours observed, 2 of them down

    components = await _bars(page_url)

    payments = components["payments"]
    days = payments["days"]
    assert isinstance(days, list) and len(days) == 90
    assert days[-3:] == [
        ("operational", "Nov 24, 2026: operational"),
        ("partial_outage", "Nov 25, 2026: partial outage"),
        ("operational", "Nov 26, 2026: operational"),
    ]
    assert payments["uptime"] == "96.07 % uptime"  # 1 - 2/51, rounded down
    assert components["api"]["uptime"] == "100.00 % uptime"


async def test_days_before_the_component_was_declared_say_no_data(bot: BotHarness, page_url: str) -> None:
    bot.clock.advance(hours=1)  # the components were declared an hour ago, when the bot started
    components = await _bars(page_url)

    days = components["dashboard"]["days"]
    assert isinstance(days, list)
    assert days[:-1] == [("none", title) for _, title in days[:-1]], "no claim of 100 % without data"
    assert days[0][1].endswith(": no data")
    assert days[-1] == ("operational", "Nov 24, 2026: operational")
    _, body = await _get(f"{page_url}/history")
    assert "no data before Nov 24, 09:00 UTC" in body


async def test_a_status_set_by_hand_and_maintenance_colour_their_days(bot: BotHarness, page_url: str) -> None:
    bot.clock.advance(days=1)
    await bot.staff_runs("/component set webhooks degraded_performance")
    bot.clock.advance(hours=1)
    await bot.staff_runs("/component set webhooks operational")
    await bot.staff_runs("/maintenance schedule dashboard 2026-11-26T02:00Z 2026-11-26T03:00Z Upgrade")
    bot.clock.advance(days=1)

    components = await _bars(page_url)

    assert [status for status, _ in components["webhooks"]["days"][-3:]] == [  # type: ignore[index]
        "operational",
        "degraded_performance",
        "operational",
    ]
    assert components["webhooks"]["uptime"] == "100.00 % uptime", "degraded is not down"
    assert components["dashboard"]["days"][-1][0] == "under_maintenance"  # type: ignore[index]


async def test_history_lists_incidents_with_their_updates_and_escapes_them(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/incident open api minor <img src=x onerror=alert(1)> timeouts")
    bot.clock.advance(minutes=30)
    await bot.staff_runs("/incident update 1 identified A customer wrote: <script>x()</script> & more")

    status, body = await _get(f"{page_url}/history")

    assert status == 200
    assert "<img src=x" not in body and "<script>x()" not in body
    assert "&lt;img src=x onerror=alert(1)&gt; timeouts" in body
    assert "A customer wrote: &lt;script&gt;x()&lt;/script&gt; &amp; more" in body
    assert body.index("Identified") < body.index("Investigating"), "newest update first"
    assert "November 2026" in body


async def test_history_of_the_last_week_only(bot: BotHarness, page_url: str) -> None:
    await bot.staff_runs("/incident open api minor Old trouble")
    await bot.staff_runs("/incident resolve 1 Fixed")
    bot.clock.advance(days=10)

    assert "Old trouble" in (await _get(f"{page_url}/history"))[1]
    status, body = await _get(f"{page_url}/history?days=7")
    assert status == 200
    assert "Old trouble" not in body
    components = await _bars(page_url, "?days=7")
    assert components and all(len(c["days"]) == 7 for c in components.values())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    [
        "/history?days=0",
        "/history?days=91",
        "/history?days=-1",
        "/history?days=abc",
        "/history?days=%D9%A1%D9%A5",  # Arabic-Indic digits: int() reads them, we do not
        "/history?days=1e3",
        "/history?days=" + "9" * 5000,
        "/history.atom?days=x",
        "/history.rss?days=",
        "/history/",
        "/history/../../etc/passwd",
        "/history%00",
        "/history.json",
    ],
)
async def test_odd_paths_and_queries_are_refused_not_crashed(
    bot: BotHarness, page_url: str, path: str
) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{page_url}{path}") as response:
        assert 400 <= response.status < 500, (path, response.status)


async def test_history_in_a_real_browser(bot: BotHarness, page_url: str, tmp_path: Path) -> None:
    chromium = chromium_binary()
    from playwright.async_api import Request, async_playwright

    bot.clock.advance(days=1)
    await bot.staff_runs("/incident open payments critical Checkout is down")
    bot.clock.advance(hours=1)
    await bot.staff_runs("/incident resolve 1 Card processor back")

    requested: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone

            def record(request: Request) -> None:
                requested.append(request.url)

            page.on("request", record)
            await page.goto(f"{page_url}/history")
            payments = page.locator(".component", has_text="payments")
            bars = payments.locator(".bars span")
            assert await bars.count() == 90
            worst = bars.nth(89)
            assert await worst.get_attribute("title") == "Nov 25, 2026: major outage"
            colour = await worst.evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(201, 42, 42)", "a major outage day is red"
            assert await bars.nth(0).evaluate("e => e.getBoundingClientRect().width") > 0
            incident = page.locator("#incident-1")
            assert "Checkout is down" in await incident.inner_text()
            assert "Card processor back" in await incident.inner_text()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, "no sideways scrolling on a phone"
            await page.screenshot(path=str(tmp_path / "history.png"), full_page=True)
            assert (tmp_path / "history.png").stat().st_size > 0
        finally:
            await browser.close()
    outside = [url for url in requested if not url.startswith(page_url)]
    assert outside == [], "the page needs nothing from another site"


async def test_a_maintenance_window_cancelled_before_it_began_colours_no_day(
    bot: BotHarness, page_url: str
) -> None:
    """Booked for tomorrow night and cancelled this morning: the dashboard was never under
    maintenance, so today's bar stays operational."""
    bot.clock.advance(hours=1)
    await bot.staff_runs("/maintenance schedule dashboard 2026-11-25T02:00Z 2026-11-25T03:00Z Upgrade")
    (reply,) = await bot.staff_runs("/maintenance end 1 Postponed")
    assert reply.text.startswith("Cancelled maintenance **#1**")
    bot.clock.advance(hours=1)

    components = await _bars(page_url)

    assert components["dashboard"]["days"][-1] == ("operational", "Nov 24, 2026: operational")  # type: ignore[index]
