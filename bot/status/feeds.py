"""The status history as feeds: `/history.atom` (Atom 1.0, RFC 4287) and `/history.rss` (RSS 2.0),
at the paths Statuspage uses, so feed readers and chat integrations subscribed to one read ours.

Built with ElementTree, which escapes every text and attribute: incident titles and updates are
whatever staff typed, often pasted from a customer's report."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Final
from urllib.parse import urlsplit

from bot.status.history import History, IncidentView
from bot.status.look import humanise, stamp

ATOM_TYPE: Final = "application/atom+xml"
RSS_TYPE: Final = "application/rss+xml"
MAX_ENTRIES: Final = 100

_ATOM: Final = "http://www.w3.org/2005/Atom"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def rfc822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def entry_id(page_url: str, incident: IncidentView) -> str:
    """A tag URI (RFC 4151) that never changes for an incident: readers use it to tell new from seen."""
    host = urlsplit(page_url).hostname or "localhost"
    kind = "maintenance" if incident.maintenance else "incident"
    return f"tag:{host},{incident.created_at:%Y-%m-%d}:{kind}/{incident.id}"


def entry_link(page_url: str, incident: IncidentView) -> str:
    return f"{page_url}history#incident-{incident.id}"


def entry_html(incident: IncidentView) -> str:
    """The entry's body: its postmortem, then its updates, newest first, as (escaped) HTML."""
    parts = []
    if incident.maintenance:
        parts.append(
            f"<p><small>Scheduled {stamp(incident.starts_at)} to {stamp(incident.ends_at)}</small></p>"
        )
    if incident.components:
        parts.append(f"<p><small>Affects {html.escape(', '.join(incident.components))}</small></p>")
    if incident.postmortem_body:
        parts.append(_paragraph(incident.postmortem_published_at, "Postmortem", incident.postmortem_body))
    for update in incident.updates:
        parts.append(_paragraph(update.at, humanise(update.status), update.body))
    if incident.earlier_postmortem_body:
        # Published before it was reopened: under the updates that followed, and said to be old.
        at, body = incident.earlier_postmortem_published_at, incident.earlier_postmortem_body
        parts.append(_paragraph(at, "Postmortem from the earlier resolution", body))
    return "".join(parts)


def _paragraph(at: datetime | None, heading: str, body: str) -> str:
    heading, body = html.escape(heading), html.escape(body)
    return f"<p><small>{stamp(at)}</small><br><strong>{heading}</strong> - {body}</p>"


def _entries(history: History) -> list[IncidentView]:
    newest = sorted(history.incidents, key=lambda i: (i.updated_at, i.id), reverse=True)
    return newest[:MAX_ENTRIES]


# Characters XML 1.0 forbids, which ElementTree writes as they are: one (ESC, from a log line pasted
# with its colours) makes the whole feed unreadable to every reader.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attributes.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def _xml(root: ET.Element) -> bytes:
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text


def atom(history: History, *, page_url: str, name: str) -> bytes:
    feed = ET.Element("feed", {"xmlns": _ATOM, "xml:lang": "en"})
    _sub(feed, "id", f"{page_url}history.atom")
    _sub(feed, "title", f"{name} - incident history")
    _sub(feed, "updated", rfc3339(history.updated_at))
    _sub(feed, "link", rel="self", type=ATOM_TYPE, href=f"{page_url}history.atom")
    _sub(feed, "link", rel="alternate", type="text/html", href=f"{page_url}history")
    author = _sub(feed, "author")
    _sub(author, "name", name)
    for incident in _entries(history):
        entry = _sub(feed, "entry")
        _sub(entry, "id", entry_id(page_url, incident))
        _sub(entry, "title", incident.title)
        _sub(entry, "published", rfc3339(incident.created_at))
        _sub(entry, "updated", rfc3339(incident.updated_at))
        _sub(entry, "link", rel="alternate", type="text/html", href=entry_link(page_url, incident))
        _sub(entry, "content", entry_html(incident), type="html")
    return _xml(feed)


def rss(history: History, *, page_url: str, name: str) -> bytes:
    root = ET.Element("rss", {"version": "2.0", "xmlns:atom": _ATOM})
    channel = _sub(root, "channel")
    _sub(channel, "title", f"{name} - incident history")
    _sub(channel, "link", f"{page_url}history")
    _sub(channel, "description", f"Incidents and maintenance of the last {history.days} days")
    _sub(channel, "language", "en")
    _sub(channel, "lastBuildDate", rfc822(history.updated_at))
    _sub(channel, "atom:link", rel="self", type=RSS_TYPE, href=f"{page_url}history.rss")
    for incident in _entries(history):
        item = _sub(channel, "item")
        _sub(item, "title", incident.title)
        _sub(item, "link", entry_link(page_url, incident))
        _sub(item, "guid", entry_id(page_url, incident), isPermaLink="false")
        _sub(item, "pubDate", rfc822(incident.created_at))
        _sub(item, "description", entry_html(incident))
    return _xml(root)
