"""The public status page and the Statuspage-shaped API show what staff announced."""

from __future__ import annotations

import aiohttp

from tests.browser import chromium_binary
from tests.harness import BotHarness


async def _get(url: str) -> dict:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        return await response.json()


async def test_api_has_statuspage_shapes(bot: BotHarness, page_url: str) -> None:
    status = await _get(f"{page_url}/api/v2/status.json")
    assert status["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert set(status["page"]) == {"id", "name", "url", "time_zone", "updated_at"}

    await bot.staff_runs("/incident open payments,api major Card payments failing")
    await bot.staff_runs("/maintenance schedule dashboard 2026-11-25T02:00Z 2026-11-25T03:00Z Upgrade")

    summary = await _get(f"{page_url}/api/v2/summary.json")
    assert summary["status"] == {"indicator": "major", "description": "Partial System Outage"}
    by_name = {c["name"]: c for c in summary["components"]}
    assert by_name["payments"]["status"] == "partial_outage"
    assert by_name["dashboard"]["status"] == "operational"
    platform = by_name["Platform"]
    assert platform["group"] is True and platform["status"] == "partial_outage"
    assert by_name["api"]["group_id"] == platform["id"] and by_name["api"]["id"] in platform["components"]
    (incident,) = summary["incidents"]
    assert incident["name"] == "Card payments failing"
    assert (incident["status"], incident["impact"]) == ("investigating", "major")
    assert {c["name"] for c in incident["components"]} == {"api", "payments"}
    assert incident["incident_updates"][0]["status"] == "investigating"
    (maintenance,) = summary["scheduled_maintenances"]
    assert maintenance["status"] == "scheduled"
    assert maintenance["scheduled_for"].startswith("2026-11-25T02:00:00")

    await bot.staff_runs("/incident resolve 1 Fixed")
    unresolved = await _get(f"{page_url}/api/v2/incidents/unresolved.json")
    assert unresolved["incidents"] == []
    everything = await _get(f"{page_url}/api/v2/incidents.json")
    assert everything["incidents"][0]["status"] == "resolved"
    assert everything["incidents"][0]["resolved_at"] is not None
    components = await _get(f"{page_url}/api/v2/components.json")
    assert {c["status"] for c in components["components"]} == {"operational"}
    windows = await _get(f"{page_url}/api/v2/scheduled-maintenances.json")
    assert [w["name"] for w in windows["scheduled_maintenances"]] == ["Upgrade"]


async def test_a_reopened_incident_is_unresolved_again_everywhere_with_all_its_updates(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/incident open payments major Card payments failing")
    bot.clock.advance(minutes=30)
    await bot.staff_runs("/incident resolve 1 Payments are back")
    bot.clock.advance(hours=5)
    await bot.staff_runs("/incident update 1 identified Failing again after the rollback")

    (unresolved,) = (await _get(f"{page_url}/api/v2/incidents/unresolved.json"))["incidents"]
    (listed,) = (await _get(f"{page_url}/api/v2/incidents.json"))["incidents"]
    for incident in (unresolved, listed):
        assert (incident["status"], incident["resolved_at"]) == ("identified", None)
        updates = [(u["status"], u["body"]) for u in incident["incident_updates"]]
        assert updates == [
            ("identified", "Failing again after the rollback"),
            ("resolved", "Payments are back"),
            ("investigating", "We are investigating: Card payments failing."),
        ]
    summary = await _get(f"{page_url}/api/v2/summary.json")
    assert summary["status"]["indicator"] == "major"
    assert {c["name"]: c["status"] for c in summary["components"]}["payments"] == "partial_outage"
    assert [i["id"] for i in summary["incidents"]] == [unresolved["id"]]

    async with aiohttp.ClientSession() as session, session.get(f"{page_url}/") as response:
        page = await response.text()
    active = page.split("<h2>Active incidents</h2>", 1)[1].split("<h2>", 1)[0]
    assert "Card payments failing" in active and "Failing again after the rollback" in active
    assert "Resolved incidents" not in page
    assert "(resolved " not in page, "the day's list no longer says it is over"


async def test_a_component_put_under_maintenance_by_hand_shows_as_maintenance(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/component set api under_maintenance")
    (overview,) = await bot.customer_runs("/status")
    assert overview.delivery.message.title == "Scheduled maintenance in progress"

    status = await _get(f"{page_url}/api/v2/status.json")
    assert status["status"] == {"indicator": "maintenance", "description": "Service Under Maintenance"}


async def test_the_page_says_it_changed_when_maintenance_is_scheduled_starts_and_ends(
    bot: BotHarness, page_url: str
) -> None:
    """Tools poll `page.updated_at` and fetch the rest only when it moves."""
    bot.clock.advance(hours=1)
    await bot.staff_runs("/maintenance schedule api 2026-11-24T12:00Z 2026-11-24T13:00Z Database upgrade")
    scheduled = (await _get(f"{page_url}/api/v2/status.json"))["page"]["updated_at"]
    assert scheduled.startswith("2026-11-24T10:00:00")

    bot.clock.advance(hours=2, minutes=30)
    started = await _get(f"{page_url}/api/v2/summary.json")
    assert started["status"]["indicator"] == "maintenance"
    assert started["page"]["updated_at"].startswith("2026-11-24T12:00:00")

    bot.clock.advance(hours=1)
    ended = (await _get(f"{page_url}/api/v2/status.json"))["page"]["updated_at"]
    assert ended.startswith("2026-11-24T13:00:00")


async def test_page_escapes_what_staff_typed(bot: BotHarness, page_url: str) -> None:
    await bot.staff_runs("/incident open api minor <script>alert(1)</script> errors")
    async with aiohttp.ClientSession() as session, session.get(f"{page_url}/") as response:
        body = await response.text()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; errors" in body
    assert "<meta name='viewport'" in body and "http-equiv='refresh'" in body


async def test_an_incident_opened_by_command_shows_in_a_real_browser(bot: BotHarness, page_url: str) -> None:
    chromium = chromium_binary()
    from playwright.async_api import async_playwright

    await bot.staff_runs("/incident open payments critical Checkout is down")
    await bot.staff_runs("/incident update 1 identified Card processor outage")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            await page.goto(f"{page_url}/")
            assert await page.locator("#overall").inner_text() == "Major Service Outage"
            incident = page.locator("#incident-1")
            assert "Checkout is down" in await incident.inner_text()
            assert "Card processor outage" in await incident.inner_text()
            row = page.locator(".row", has_text="payments")
            assert "Major outage" in await row.first.inner_text()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, "no sideways scrolling on a phone"
        finally:
            await browser.close()


async def test_past_incident_links_and_shortlinks_lead_somewhere(bot: BotHarness, page_url: str) -> None:
    await bot.staff_runs("/incident open api minor Slow API")
    await bot.staff_runs("/incident resolve 1 Fixed")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{page_url}/api/v2/incidents.json") as response:
            (incident,) = (await response.json())["incidents"]
        async with session.get(f"{page_url}/") as response:
            page = await response.text()
            assert response.headers["Cache-Control"] == "max-age=10"  # many reload at once
    anchor = incident["shortlink"].rpartition("#")[2]
    assert f"href='#{anchor}'" in page
    assert f'id="{anchor}"' in page, "the history row and the API shortlink point at no element"


async def test_shortlinks_of_maintenance_and_older_incidents_lead_somewhere(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/incident open api minor Slow API")
    await bot.staff_runs("/incident resolve 1 Fixed")
    bot.clock.advance(days=20)  # older than the status page's 14 days
    await bot.staff_runs("/maintenance schedule api 2026-12-15T02:00Z 2026-12-15T03:00Z Database upgrade")

    (incident,) = (await _get(f"{page_url}/api/v2/incidents.json"))["incidents"]
    (window,) = (await _get(f"{page_url}/api/v2/scheduled-maintenances.json"))["scheduled_maintenances"]
    for shown in (incident, window):
        address, _, anchor = shown["shortlink"].partition("#")
        path = address.removeprefix("http://127.0.0.1:8080")  # the deployment's address, in settings
        async with aiohttp.ClientSession() as session, session.get(f"{page_url}{path}") as response:
            page = await response.text()
        assert f"id='{anchor}'" in page or f'id="{anchor}"' in page, f"{shown['name']}: {shown['shortlink']}"


async def test_a_statuspage_client_finds_upcoming_and_active_maintenance(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs(
        "/maintenance schedule dashboard 2026-11-24T08:30Z 2026-11-24T10:00Z Database upgrade"
    )
    await bot.staff_runs("/maintenance schedule api 2026-11-25T02:00Z 2026-11-25T03:00Z New load balancer")

    active = await _get(f"{page_url}/api/v2/scheduled-maintenances/active.json")
    upcoming = await _get(f"{page_url}/api/v2/scheduled-maintenances/upcoming.json")
    assert [(w["name"], w["status"]) for w in active["scheduled_maintenances"]] == [
        ("Database upgrade", "in_progress")
    ]
    assert [(w["name"], w["status"]) for w in upcoming["scheduled_maintenances"]] == [
        ("New load balancer", "scheduled")
    ]
    assert active["page"]["id"] == upcoming["page"]["id"]

    bot.clock.advance(hours=17, minutes=30)  # the load balancer's window has begun; the upgrade is over
    active = await _get(f"{page_url}/api/v2/scheduled-maintenances/active.json")
    upcoming = await _get(f"{page_url}/api/v2/scheduled-maintenances/upcoming.json")
    assert [w["name"] for w in active["scheduled_maintenances"]] == ["New load balancer"]
    assert upcoming["scheduled_maintenances"] == []


async def test_the_api_lists_the_fifty_most_recent_incidents_however_old(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/incident open api minor Slow API")
    await bot.staff_runs("/incident resolve 1 Fixed")
    await bot.staff_runs("/maintenance schedule api 2026-11-24T10:00Z 2026-11-24T11:00Z First upgrade")
    await bot.staff_runs("/maintenance schedule api 2026-11-25T10:00Z 2026-11-25T11:00Z Second upgrade")
    bot.clock.advance(days=30)  # a quiet month: the page's 14 days show nothing, the API's lists do

    incidents = await _get(f"{page_url}/api/v2/incidents.json")
    assert [(i["name"], i["status"]) for i in incidents["incidents"]] == [("Slow API", "resolved")]
    windows = await _get(f"{page_url}/api/v2/scheduled-maintenances.json")
    assert [w["name"] for w in windows["scheduled_maintenances"]] == ["Second upgrade", "First upgrade"]

    for number in range(2, 53):
        await bot.staff_runs(f"/incident open api minor Blip {number}")
    incidents = await _get(f"{page_url}/api/v2/incidents.json")
    assert len(incidents["incidents"]) == 50
    assert incidents["incidents"][0]["name"] == "Blip 52" and incidents["incidents"][-1]["name"] == "Blip 3"


async def test_a_pasted_link_or_log_line_does_not_widen_the_page_on_a_phone(
    bot: BotHarness, page_url: str
) -> None:
    chromium = chromium_binary()
    from playwright.async_api import async_playwright

    dashboard = "https://grafana.example.com/d/checkout/" + "a1b2c3" * 40
    await bot.staff_runs("/incident open payments major Checkout_failing_with_ERR_CARD_PROCESSOR_TIMEOUT_x5")
    await bot.staff_runs(f"/incident update 1 identified Errors on {dashboard}")
    await bot.staff_runs(
        "/maintenance schedule api 2026-11-25T02:00Z 2026-11-25T03:00Z " + "eu-west-1/rds/" * 10
    )

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            for path in ("/", "/history"):
                await page.goto(f"{page_url}{path}")
                assert dashboard in await page.locator("#incident-1").inner_text()
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"{path}: {width}px wide, the status is off the side of the screen"
        finally:
            await browser.close()


async def test_maintenance_cancelled_before_it_begins_is_no_longer_coming(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/maintenance schedule api 2026-11-25T02:00Z 2026-11-25T03:00Z New load balancer")
    (reply,) = await bot.staff_runs("/maintenance end 1 Postponed to next week")
    assert reply.text.startswith("Cancelled maintenance **#1**: New load balancer")
    upcoming = await _get(f"{page_url}/api/v2/scheduled-maintenances/upcoming.json")
    assert upcoming["scheduled_maintenances"] == []
    (window,) = (await _get(f"{page_url}/api/v2/scheduled-maintenances.json"))["scheduled_maintenances"]
    assert window["status"] == "completed"
    assert window["incident_updates"][0]["body"] == "Postponed to next week"
    bot.clock.advance(hours=17, minutes=30)  # when it would have begun
    status = await _get(f"{page_url}/api/v2/status.json")
    assert status["status"]["indicator"] == "none"


async def test_a_cancelled_window_keeps_when_it_was_booked_and_never_shows_as_held(
    bot: BotHarness, page_url: str
) -> None:
    """Booked for 02:00-03:00 tomorrow and cancelled at 10:00 today: the API still says when it was
    booked (as Statuspage does), and neither the history nor its feed says maintenance took place
    at 10:00, nor, once its booked hours have passed, then."""
    await bot.staff_runs("/maintenance schedule api 2026-11-25T02:00Z 2026-11-25T03:00Z New load balancer")
    bot.clock.advance(hours=1)
    await bot.staff_runs("/maintenance end 1 Postponed to next week")
    (window,) = (await _get(f"{page_url}/api/v2/scheduled-maintenances.json"))["scheduled_maintenances"]
    assert (window["status"], window["scheduled_for"], window["scheduled_until"]) == (
        "completed",
        "2026-11-25T02:00:00.000+00:00",
        "2026-11-25T03:00:00.000+00:00",
    )
    for hours in (0, 18):
        bot.clock.advance(hours=hours)
        async with aiohttp.ClientSession() as session:
            for path in ("/history", "/history.atom"):
                async with session.get(f"{page_url}{path}") as response:
                    assert "New load balancer" not in await response.text(), (path, hours)


async def test_a_statuspage_client_asking_for_what_is_not_there_gets_a_json_error(
    bot: BotHarness, page_url: str
) -> None:
    async with aiohttp.ClientSession() as session:
        for method, path, status in (
            ("GET", "/api/v2/incidents/999.json", 404),
            ("GET", "/api/v2/nothing-here.json", 404),
            ("GET", "/api/v1/summary.json", 404),
            ("POST", "/api/v2/summary.json", 405),
        ):
            async with session.request(method, f"{page_url}{path}") as response:
                assert response.status == status, path
                assert response.content_type == "application/json", path
                assert response.headers["Access-Control-Allow-Origin"] == "*", "widgets can read it"
                error = (await response.json())["error"]
                assert error["code"] == status, path
                assert "/api/v2/summary.json" in error["message"], "it says what there is"
        async with session.get(f"{page_url}/no-such-page") as response:
            assert response.status == 404 and response.content_type != "application/json"


async def test_each_update_says_what_it_did_to_its_components_as_they_were_then(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/incident open api major API slow")
    bot.clock.advance(minutes=10)
    await bot.staff_runs("/incident update 1 identified impact=critical Every call fails")
    bot.clock.advance(minutes=10)
    await bot.staff_runs("/incident update 1 monitoring A fix is out")
    bot.clock.advance(minutes=10)
    await bot.staff_runs("/incident resolve 1 Fixed")

    (incident,) = (await _get(f"{page_url}/api/v2/incidents.json"))["incidents"]
    told = [
        (u["status"], [(c["name"], c["old_status"], c["new_status"]) for c in u["affected_components"]])
        for u in reversed(incident["incident_updates"])
    ]
    assert told == [
        ("investigating", [("api", "operational", "partial_outage")]),
        ("identified", [("api", "partial_outage", "major_outage")]),
        ("monitoring", [("api", "major_outage", "major_outage")]),
        ("resolved", [("api", "major_outage", "operational")]),
    ]


async def test_an_update_during_maintenance_shows_the_component_under_maintenance_then(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/maintenance schedule dashboard 2026-11-24T10:00Z 2026-11-24T13:00Z Upgrade")
    bot.clock.advance(hours=2)
    await bot.staff_runs("/maintenance end 1 Done early")

    (window,) = (await _get(f"{page_url}/api/v2/scheduled-maintenances.json"))["scheduled_maintenances"]
    told = [
        [(c["name"], c["old_status"], c["new_status"]) for c in u["affected_components"]]
        for u in reversed(window["incident_updates"])
    ]
    assert told == [
        [("dashboard", "operational", "operational")],
        [("dashboard", "under_maintenance", "operational")],
    ]
