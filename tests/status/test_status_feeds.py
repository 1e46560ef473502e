"""The history feeds, /history.atom and /history.rss, read by a real feed parser and checked against
what Atom 1.0 (RFC 4287) and RSS 2.0 require."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime

import aiohttp
import feedparser

from tests.harness import BotHarness

ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
TRICKY_TITLE = '<b>Checkout</b> & "quotes" ]]> <!-- @everyone'


async def _fetch(url: str) -> tuple[str, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return response.headers["Content-Type"], await response.read()


async def _incidents(bot: BotHarness) -> None:
    await bot.staff_runs(f"/incident open payments major {TRICKY_TITLE}")
    bot.clock.advance(minutes=20)
    await bot.staff_runs("/incident update 1 identified A customer pasted <script>alert(1)</script>")
    bot.clock.advance(minutes=40)
    await bot.staff_runs("/incident resolve 1 Fixed & verified")
    await bot.staff_runs("/incident open api minor Slow API")


async def test_atom_feed_is_valid_and_reads_back_what_staff_typed(bot: BotHarness, page_url: str) -> None:
    await _incidents(bot)

    content_type, body = await _fetch(f"{page_url}/history.atom")

    assert content_type == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Status - incident history"
    newest, oldest = feed.entries
    assert (newest.title, oldest.title) == ("Slow API", TRICKY_TITLE)
    assert oldest.link == "http://127.0.0.1:8080/history#incident-1"
    content = oldest.content[0]
    assert content.type == "text/html"
    assert "<script>" not in content.value
    assert "A customer pasted &lt;script&gt;alert(1)&lt;/script&gt;" in content.value
    assert content.value.index("Resolved") < content.value.index("Investigating"), "newest first"

    # What RFC 4287 requires, checked on the document itself.
    root = ET.fromstring(body)
    assert root.tag == f"{ATOM}feed"
    for element in [root, *root.findall(f"{ATOM}entry")]:
        for required in ("id", "title", "updated"):
            assert element.find(f"{ATOM}{required}") is not None, (element.tag, required)
        assert RFC3339.match(element.findtext(f"{ATOM}updated") or "")
    assert root.find(f"{ATOM}author/{ATOM}name") is not None, "a feed whose entries have no author needs one"
    assert root.find(f"{ATOM}link[@rel='self']").get("href") == "http://127.0.0.1:8080/history.atom"  # type: ignore[union-attr]


async def test_entry_ids_stay_the_same_as_an_incident_changes(bot: BotHarness, page_url: str) -> None:
    await bot.staff_runs("/incident open api minor Slow API")
    _, before = await _fetch(f"{page_url}/history.atom")
    bot.clock.advance(minutes=5)
    await bot.staff_runs("/incident update 1 monitoring Deployed a fix")
    _, after = await _fetch(f"{page_url}/history.atom")

    (first,) = feedparser.parse(before).entries
    (second,) = feedparser.parse(after).entries
    assert first.id == second.id and first.id.startswith("tag:127.0.0.1,2026-11-24:incident/")
    assert second.updated_parsed > first.updated_parsed, "readers see the update as news"
    assert feedparser.parse(after).feed.updated == second.updated


async def test_a_reopened_incident_is_news_again_in_the_feeds(bot: BotHarness, page_url: str) -> None:
    await bot.staff_runs("/incident open api minor Slow API")
    await bot.staff_runs("/incident resolve 1 Fixed")
    _, before = await _fetch(f"{page_url}/history.atom")
    bot.clock.advance(hours=3)
    await bot.staff_runs("/incident update 1 investigating Slow again")
    _, after = await _fetch(f"{page_url}/history.atom")

    (first,) = feedparser.parse(before).entries
    (second,) = feedparser.parse(after).entries
    assert first.id == second.id
    assert second.updated_parsed > first.updated_parsed
    content = second.content[0].value
    assert content.index("Slow again") < content.index("Resolved") < content.index("We are investigating")


async def test_rss_feed_is_valid_rss_2(bot: BotHarness, page_url: str) -> None:
    await _incidents(bot)

    content_type, body = await _fetch(f"{page_url}/history.rss")

    assert content_type == "application/rss+xml; charset=utf-8"
    feed = feedparser.parse(body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "rss20"
    assert feed.entries[0].title == "Slow API"
    tricky = feed.entries[1]
    assert "<script>" not in tricky.description
    assert tricky.guidislink is False

    root = ET.fromstring(body)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    # The document carries exactly what staff typed, escaped. (RSS does not say whether a title is
    # text or HTML, so a reader like feedparser may then treat it as HTML: Atom's type="text" is exact.)
    assert [item.findtext("title") for item in channel.findall("item")] == ["Slow API", TRICKY_TITLE]
    for required in ("title", "link", "description"):
        assert channel.findtext(required), required
    for item in channel.findall("item"):
        published = parsedate_to_datetime(item.findtext("pubDate") or "")
        assert published.utcoffset() is not None and published.year == 2026, "RFC 822 with a zone"
        assert item.find("guid").get("isPermaLink") == "false"  # type: ignore[union-attr]
    assert parsedate_to_datetime(channel.findtext("lastBuildDate") or "").year == 2026


async def test_feeds_without_incidents_are_still_valid(bot: BotHarness, page_url: str) -> None:
    for path, version in (("/history.atom", "atom10"), ("/history.rss", "rss20")):
        _, body = await _fetch(f"{page_url}{path}")
        feed = feedparser.parse(body)
        assert (feed.bozo, feed.version, feed.entries) == (0, version, [])


async def test_an_update_pasted_from_a_terminal_keeps_the_feeds_readable(
    bot: BotHarness, page_url: str
) -> None:
    await bot.staff_runs("/incident open api major Errors on api-7")
    # A log line copied from a terminal keeps its colour codes (ESC, invalid in XML 1.0).
    await bot.staff_runs("/incident update 1 identified Seeing \x1b[31mERROR\x1b[0m conn reset by peer")

    for path in ("/history.atom", "/history.rss"):
        _, body = await _fetch(f"{page_url}{path}")
        feed = feedparser.parse(body)
        assert feed.bozo == 0, (path, feed.get("bozo_exception"))
        (entry,) = feed.entries
        text = entry.content[0].value if "content" in entry else entry.description
        assert "Seeing [31mERROR[0m conn reset by peer" in text
