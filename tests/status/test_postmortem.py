"""Staff publish a resolved incident's postmortem: the status page, the history, the feeds and the
API show it (Statuspage's `postmortem_body`, `postmortem_published_at`); nobody is broadcast to."""

from __future__ import annotations

import json

import aiohttp
import feedparser

from bot.core.dispatch import Outcome
from tests.harness import BotHarness
from tests.status.conftest import deliver, received, subscribe

POSTMORTEM = (
    "A config change cut the card processor off for 40 minutes.\n"
    "Config changes now roll out to one region first. <script>alert(1)</script>"
)


async def _text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


async def _api_incident(page_url: str) -> dict:
    (incident,) = json.loads(await _text(f"{page_url}/api/v2/incidents.json"))["incidents"]
    return incident


async def test_a_postmortem_shows_on_the_page_the_history_and_the_api_and_is_not_broadcast(
    bot: BotHarness, page_url: str
) -> None:
    await subscribe(bot, "news")
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.staff_runs("/incident resolve 1 Payments are back")
    await deliver(bot)
    told = len(received(bot, "news"))
    incident = await _api_incident(page_url)
    assert (incident["postmortem_body"], incident["postmortem_published_at"]) == (None, None)

    bot.clock.advance(days=1)
    (reply,) = await bot.staff_runs(f"/incident postmortem 1 {POSTMORTEM}")
    assert reply.text == (
        "Published the postmortem of incident **#1** Card payments failing. Subscribers are not "
        "notified; it shows on the status page: http://127.0.0.1:8080/history#incident-1"
    )
    await deliver(bot)
    assert len(received(bot, "news")) == told, "a postmortem is not broadcast"

    incident = await _api_incident(page_url)
    assert incident["postmortem_body"] == POSTMORTEM
    assert incident["postmortem_published_at"].startswith("2026-11-25T09:")
    assert incident["updated_at"] == incident["postmortem_published_at"], "clients see it changed"
    assert incident["status"] == "resolved" and len(incident["incident_updates"]) == 2
    for path in ("/", "/history"):
        page = await _text(f"{page_url}{path}")
        card = page.split('id="incident-1"', 1)[1].split("</div>\n</div>", 1)[0]
        assert '<strong>Postmortem</strong> <span class="muted">published Nov 25, 09:' in card, path
        assert "Config changes now roll out to one region first. &lt;script&gt;" in card, path
        assert "<script>" not in page, path
    feed = feedparser.parse(await _text(f"{page_url}/history.atom"))
    (entry,) = feed.entries
    assert "Postmortem" in entry.content[0].value and "one region first" in entry.content[0].value


async def test_a_second_postmortem_replaces_the_first_and_says_so(bot: BotHarness, page_url: str) -> None:
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.staff_runs("/incident resolve 1 Payments are back")
    await bot.staff_runs("/incident postmortem 1 A draft")
    (reply,) = await bot.staff_runs(f"/incident postmortem 1 {POSTMORTEM}")
    assert reply.text.startswith(
        "Replaced the postmortem published before for incident **#1** Card payments failing."
    )
    assert (await _api_incident(page_url))["postmortem_body"] == POSTMORTEM
    page = await _text(f"{page_url}/")
    assert "A draft" not in page and page.count("<strong>Postmortem</strong>") == 1


async def test_a_postmortem_waits_until_the_incident_is_resolved(bot: BotHarness) -> None:
    await bot.staff_runs("/incident open payments major Card payments failing")
    (refused,) = await bot.staff_runs("/incident postmortem 1 A config change")
    assert bot.last_outcome is Outcome.USER_ERROR
    assert refused.text == (
        "Incident #1 is not resolved yet: its postmortem is published once it is over "
        "(`/incident resolve 1`)."
    )
    await bot.staff_runs("/incident resolve 1 Payments are back")
    await bot.staff_runs("/incident postmortem 1 A config change")
    await bot.staff_runs("/incident update 1 investigating Failing again")
    (refused,) = await bot.staff_runs("/incident postmortem 1 A config change, and more")
    assert "is not resolved yet" in refused.text, "reopened, it is not over"


async def test_a_postmortem_too_long_unknown_or_from_a_customer_is_refused(bot: BotHarness) -> None:
    await bot.staff_runs("/maintenance schedule api 2026-11-25T02:00Z 2026-11-25T03:00Z Upgrade")
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.staff_runs("/incident resolve 2 Payments are back")
    cases = {
        f"/incident postmortem 2 {'x' * 6_001}": "The postmortem is 6,001 characters; keep it to 6,000",
        "/incident postmortem 1 A window is no incident": "There is no incident #1.",
        "/incident postmortem 2": "I need the incident number and the postmortem's text.",
    }
    for line, expected in cases.items():
        (answer,) = await bot.staff_runs(line)
        assert bot.last_outcome is Outcome.USER_ERROR, line[:40]
        assert expected in answer.text, answer.text
    (refused,) = await bot.customer_runs("/incident postmortem 2 Nothing happened")
    assert "for the support team only" in refused.text
    (fits,) = await bot.staff_runs(f"/incident postmortem 2 {'x' * 6_000}")
    assert fits.text.startswith("Published the postmortem of incident **#2**")


def _card(page: str) -> str:
    return page.split('id="incident-1"', 1)[1].split("</div>\n</div>", 1)[0]


async def test_a_reopened_incident_shows_its_postmortem_as_the_earlier_resolutions(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.staff_runs("/incident resolve 1 Payments are back")
    bot.clock.advance(days=1)
    await bot.staff_runs("/incident postmortem 1 A config change; it is rolled back")
    bot.clock.advance(days=1)
    await bot.staff_runs("/incident update 1 investigating Failing again")

    # Active again, the page's reader sees the new failure first and the old explanation as old.
    incident = await _api_incident(page_url)
    assert incident["status"] == "investigating"
    assert (incident["postmortem_body"], incident["postmortem_published_at"]) == (None, None), (
        "a widget shows postmortem_body as the incident's final word, and JSON has no label"
    )
    for path in ("/", "/history"):
        card = _card(await _text(f"{page_url}{path}"))
        assert "<strong>Postmortem</strong>" not in card, path
        assert "<strong>Postmortem from the earlier resolution</strong>" in card, path
        assert card.index("Failing again") < card.index("it is rolled back"), path
    (entry,) = feedparser.parse(await _text(f"{page_url}/history.atom")).entries
    body = entry.content[0].value
    assert "Postmortem from the earlier resolution" in body
    assert body.index("Failing again") < body.index("it is rolled back")

    # Resolved again, it still predates this resolution, until staff publish the new one.
    await bot.staff_runs("/incident resolve 1 Payments are back, for good")
    assert (await _api_incident(page_url))["postmortem_body"] is None
    assert "Postmortem from the earlier resolution" in _card(await _text(f"{page_url}/"))
    await bot.staff_runs("/incident postmortem 1 Two config changes; both are rolled back")
    assert (await _api_incident(page_url))["postmortem_body"] == "Two config changes; both are rolled back"
    card = _card(await _text(f"{page_url}/"))
    assert "<strong>Postmortem</strong>" in card and "earlier resolution" not in card
