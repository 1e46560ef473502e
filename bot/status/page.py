"""The public status page (`GET /`) and Statuspage-compatible JSON (`/api/v2/*.json`) on the bot's
aiohttp server, so tools and widgets that read a Statuspage page read ours."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.status import feeds, look
from bot.status.history import PAGE_DAYS, History, IncidentView, by_month, period_start, read_history
from bot.status.look import Branding
from bot.status.messages import STATUS_LABEL
from bot.status.model import MAINTENANCE_IMPACT, Impact, IncidentStatus, MaintenanceStatus, worst
from bot.status.snapshot import HISTORY_DAYS, Snapshot, load_history, with_changes_for
from bot.status.workflows import postmortem_is_current
from bot.web import DATABASE
from storage import status_repo
from storage.models import Incident, StatusComponent

PAGE_ID = "supportbot"
# Which of a snapshot's incidents and windows an answer lists, with their updates.
Shown = Callable[[Snapshot], Sequence[Incident]]
API = "/api/v2/"
# Statuspage's incidents.json and scheduled-maintenances.json: the 50 most recent, newest first.
RECENT = 50
INDICATOR_TEXT: dict[str, str] = {
    Impact.NONE: "All Systems Operational",
    Impact.MINOR: "Minor Service Outage",
    Impact.MAJOR: "Partial System Outage",
    Impact.CRITICAL: "Major Service Outage",
    MAINTENANCE_IMPACT: "Service Under Maintenance",
}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds") if moment is not None else None


# -- Statuspage shapes ----------------------------------------------------------------------------


def page_json(data: Snapshot, *, name: str = "Status") -> dict[str, Any]:
    stamps = [c.updated_at for c in data.components] + [i.updated_at for i in data.incidents]
    # Tools fetch the rest when `updated_at` moves: a window scheduled, begun or over moves it too.
    for window in data.maintenance:
        moments = (window.updated_at, window.starts_at, window.ends_at)
        stamps.extend(m for m in moments if m is not None and m <= data.now)
    return {
        "id": PAGE_ID,
        "name": name,
        "url": data.page_url,
        "time_zone": "Etc/UTC",
        "updated_at": _iso(max(stamps, default=data.now)),
    }


def components_json(data: Snapshot) -> list[dict[str, Any]]:
    groups: dict[str, list[StatusComponent]] = {}
    for component in data.components:
        if component.group_name:
            groups.setdefault(component.group_name, []).append(component)
    group_ids = {name: f"group-{index}" for index, name in enumerate(groups, start=1)}
    found: list[dict[str, Any]] = []
    for component in data.components:
        found.append(
            {
                "id": str(component.id),
                "name": component.name,
                "status": data.status_of(component),
                "created_at": _iso(component.created_at),
                "updated_at": _iso(component.updated_at),
                "position": component.position + 1,
                "description": component.description or None,
                "showcase": True,
                "start_date": component.created_at.date().isoformat(),
                "group_id": group_ids.get(component.group_name),
                "page_id": PAGE_ID,
                "group": False,
                "only_show_if_degraded": False,
            }
        )
    for name, members in groups.items():
        found.append(
            {
                "id": group_ids[name],
                "name": name,
                "status": worst(data.status_of(c) for c in members).value,
                "created_at": _iso(min(c.created_at for c in members)),
                "updated_at": _iso(max(c.updated_at for c in members)),
                "position": min(c.position for c in members) + 1,
                "description": None,
                "showcase": False,
                "start_date": None,
                "group_id": None,
                "page_id": PAGE_ID,
                "group": True,
                "only_show_if_degraded": False,
                "components": [str(c.id) for c in members],
            }
        )
    return found


def _affected(data: Snapshot, component: StatusComponent, at: datetime) -> dict[str, Any]:
    """One of an update's `affected_components`: the component's status just before the update
    and just after it, as Statuspage's say what that update did, not what the component shows now."""
    old, new = data.status_around(component, at)
    return {"code": str(component.id), "name": component.name, "old_status": old, "new_status": new}


def incident_json(data: Snapshot, incident: Incident) -> dict[str, Any]:
    names = status_repo.split_names(incident.components)
    components = [c for c in components_json(data) if c["name"] in names and not c["group"]]
    affected = [c for c in data.components if c.name in names]
    timeline = data.updates.get(incident.id or 0, [])
    monitoring = [u.at for u in timeline if u.status == IncidentStatus.MONITORING]
    maintenance = incident.kind == "maintenance"
    current_postmortem = postmortem_is_current(incident)
    # The status page has a card for the last days' incidents and the windows not over; the history
    # page (where the feeds link too) for the older ones.
    on_page = (
        data.window_status(incident) is not MaintenanceStatus.COMPLETED
        if maintenance
        else incident.id in {i.id for i in data.incidents}
    )
    body: dict[str, Any] = {
        "id": str(incident.id),
        "name": incident.title,
        "status": data.window_status(incident).value if maintenance else incident.status,
        "created_at": _iso(incident.created_at),
        "updated_at": _iso(incident.updated_at),
        "monitoring_at": _iso(min(monitoring)) if monitoring else None,
        "resolved_at": _iso(incident.resolved_at),
        "impact": MAINTENANCE_IMPACT if maintenance else incident.impact,
        "shortlink": f"{data.page_url}{'' if on_page else 'history'}#incident-{incident.id}",
        "started_at": _iso(incident.starts_at or incident.created_at),
        "page_id": PAGE_ID,
        "incident_updates": [
            {
                "id": str(u.id),
                "status": u.status,
                "body": u.body,
                "incident_id": str(incident.id),
                "created_at": _iso(u.at),
                "updated_at": _iso(u.at),
                "display_at": _iso(u.at),
                "affected_components": [_affected(data, c, u.at) for c in affected],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
            for u in timeline
        ],
        "components": components,
        # Statuspage's: null until staff publish one (`/incident postmortem`), and null again once
        # it is reopened: clients show it as the incident's last word, and this shape cannot say
        # "from the earlier resolution" as the pages do.
        "postmortem_body": incident.postmortem_body if current_postmortem else None,
        "postmortem_published_at": _iso(incident.postmortem_published_at) if current_postmortem else None,
    }
    if maintenance:
        body["scheduled_for"] = _iso(incident.starts_at)
        body["scheduled_until"] = _iso(incident.ends_at)
    return body


def status_json(data: Snapshot) -> dict[str, str]:
    indicator = data.indicator
    return {"indicator": indicator, "description": INDICATOR_TEXT[indicator]}


def _current_windows(data: Snapshot) -> list[Incident]:
    return [w for w in data.maintenance if data.window_status(w) is not MaintenanceStatus.COMPLETED]


def _recent_windows(data: Snapshot) -> list[Incident]:
    """Statuspage's scheduled-maintenances.json: the RECENT latest to start, latest first."""
    return sorted(data.maintenance, key=_start, reverse=True)[:RECENT]


def _start(window: Incident) -> datetime:
    assert window.starts_at is not None
    return window.starts_at


def _windows_in(data: Snapshot, state: MaintenanceStatus) -> list[Incident]:
    return [w for w in data.maintenance if data.window_status(w) is state]


def _json(body: dict[str, Any], *, status: int = 200) -> web.Response:
    response = web.json_response(body, status=status)
    # Widgets on other sites read this API from the browser, its errors too.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "max-age=10"
    return _hardened(response)


def _api_error(error: web.HTTPException, path: str, served: Iterable[str]) -> web.Response:
    """A client error as JSON, `{"error": {"code", "message"}}`: a Statuspage client parses every
    answer of the API, and an HTML or plain-text body breaks it worse than the error does."""
    shown = path if len(path) <= 100 else path[:99] + "…"
    if error.status == 404:
        message = f"There is no {shown}. The API serves {', '.join(f'{API}{p}' for p in served)}."
    elif error.status == 405:
        message = f"{shown} is read-only: ask it with GET. The API serves {API}summary.json and the like."
    else:
        message = f"{error.reason}: {error.text}".strip()
    response = _json({"error": {"code": error.status, "message": message}}, status=error.status)
    if "Allow" in error.headers:
        response.headers["Allow"] = error.headers["Allow"]
    return response


def content_security_policy(*, nonce: str, logo_url: str | None) -> str:
    """What the pages may load: their own `<style>` (the one that carries this response's nonce)
    and images from the logo's site; no script, no plugin, no form, no other style or image, so
    whatever got past the escaping of what staff typed could bring nothing along. Framing stays
    allowed: the pages are read-only, and a wall screen's dashboard shows one in an iframe."""
    images = "'none'"
    if logo_url:
        parts = urlsplit(logo_url)
        images = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src {images}; "
        "base-uri 'none'; form-action 'none'"
    )


def _hardened(response: web.Response) -> web.Response:
    """Headers every status page, feed and API answer carries: a browser takes it for the type it
    says (never sniffs an update's text as HTML), and a link or logo fetch tells another site only
    which site it came from."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response


# -- the HTML page -------------------------------------------------------------------------------


def render_page(
    data: Snapshot,
    *,
    templates: look.Templates,
    branding: Branding,
    fallback: bool = True,
    nonce: str = "",
) -> str:
    """`nonce`: the response's CSP nonce, which the templates put on their `<style>`."""
    indicator = data.indicator
    groups: dict[str, list[dict[str, str]]] = {}
    for component in data.components:
        status = data.status_of(component)
        groups.setdefault(component.group_name or "Other", []).append(
            {"name": component.name, "status": status, "label": STATUS_LABEL[status]}
        )
    days = []
    for offset in range(HISTORY_DAYS):
        day = (data.now - timedelta(days=offset)).date()
        days.append({"date": day, "incidents": [i for i in data.incidents if i.created_at.date() == day]})
    windows = [
        {
            "id": w.id,
            "title": w.title,
            "state": data.window_status(w).value,
            "starts_at": w.starts_at,
            "ends_at": w.ends_at,
            "components": status_repo.split_names(w.components),
        }
        for w in _current_windows(data)
    ]
    return templates.render(
        "status.html",
        branding=branding,
        fallback=fallback,
        indicator=indicator,
        indicator_text=INDICATOR_TEXT[indicator],
        active=[IncidentView.of(i, data.updates) for i in data.active],
        maintenance=windows,
        groups=list(groups.items()),
        days=days,
        # Every incident linked from the days above (and by the API's shortlink) has its own card.
        resolved=[IncidentView.of(i, data.updates) for i in data.incidents if i.resolved_at is not None],
        now=data.now,
        csp_nonce=nonce,
    )


def render_history(
    history: History,
    *,
    templates: look.Templates,
    branding: Branding,
    fallback: bool = True,
    nonce: str = "",
) -> str:
    return templates.render(
        "history.html",
        branding=branding,
        fallback=fallback,
        history=history,
        months=by_month(history.incidents),
        csp_nonce=nonce,
    )


def rehearse(templates: look.Templates, branding: Branding, *, now: datetime, url: str) -> None:
    """Render each page once over an empty status picture, so a template that fails only when
    rendered (an `{% extends %}` or `{% include %}` of a missing file) stops the start, not a
    visitor. Raises look.TemplateError naming the page. (What fails only on data the rehearsal
    lacks falls back to the shipped template when a visitor asks: `look.Templates`.)"""
    empty = Snapshot(components=[], incidents=[], updates={}, maintenance=[], now=now, page_url=url)
    quiet = History(start=period_start(now, PAGE_DAYS), now=now, days=PAGE_DAYS, components=(), incidents=())
    pages: dict[str, Callable[[], str]] = {
        "status.html": lambda: render_page(empty, templates=templates, branding=branding, fallback=False),
        "history.html": lambda: render_history(quiet, templates=templates, branding=branding, fallback=False),
    }
    for name, render in pages.items():
        try:
            render()
        except Exception as error:  # an operator's template can raise anything; say which one
            detail = " ".join(str(error).split())
            raise look.TemplateError(
                f"status page template {name}: {type(error).__name__}: {detail}"
            ) from None


def _days(request: web.Request) -> int:
    """`?days=N` narrows the history; anything but a whole number from 1 to PAGE_DAYS is the
    visitor's mistake (400), never the server's."""
    value = request.query.get("days", str(PAGE_DAYS))
    # Length first: int() refuses (ValueError) a string of more than 4,300 digits.
    if not (len(value) <= 3 and value.isascii() and value.isdigit() and 1 <= int(value) <= PAGE_DAYS):
        raise web.HTTPBadRequest(text=f"days: a whole number from 1 to {PAGE_DAYS}\n")
    return int(value)


def installer(
    *,
    clock: Callable[[], datetime],
    url: str,
    templates: look.Templates | None = None,
    branding: Branding | None = None,
) -> Callable[[web.Application], None]:
    """Routes for `create_web_app(database, installers)`."""
    pages = templates or look.Templates()
    brand = branding or Branding()

    async def load(request: web.Request, shown: Shown | None = None) -> Snapshot:
        """`shown`: the incidents and windows whose updates the answer lists with their components'
        statuses then; only those read the status history, and only from their first update."""
        async with request.app[DATABASE].transaction() as session:
            data = await load_history(session, now=clock(), page_url=url)
            return data if shown is None else await with_changes_for(session, data, shown(data))

    async def read(request: web.Request) -> History:
        days = _days(request)
        async with request.app[DATABASE].transaction() as session:
            return await read_history(session, now=clock(), days=days)

    def cached(response: web.Response) -> web.Response:
        # As the JSON: during an incident many people reload at once; ten seconds of caching absorbs it.
        response.headers["Cache-Control"] = "max-age=10"
        return _hardened(response)

    def html(text: str, nonce: str) -> web.Response:
        response = cached(web.Response(text=text, content_type="text/html", charset="utf-8"))
        policy = content_security_policy(nonce=nonce, logo_url=brand.logo_url)
        response.headers["Content-Security-Policy"] = policy
        return response

    async def page(request: web.Request) -> web.Response:
        data, nonce = await load(request), secrets.token_urlsafe(16)
        return html(render_page(data, templates=pages, branding=brand, nonce=nonce), nonce)

    async def history_page(request: web.Request) -> web.Response:
        history, nonce = await read(request), secrets.token_urlsafe(16)
        return html(render_history(history, templates=pages, branding=brand, nonce=nonce), nonce)

    async def atom(request: web.Request) -> web.Response:
        body = feeds.atom(await read(request), page_url=url, name=brand.name)
        return cached(web.Response(body=body, content_type=feeds.ATOM_TYPE, charset="utf-8"))

    async def rss(request: web.Request) -> web.Response:
        body = feeds.rss(await read(request), page_url=url, name=brand.name)
        return cached(web.Response(body=body, content_type=feeds.RSS_TYPE, charset="utf-8"))

    def page_info(data: Snapshot) -> dict[str, Any]:
        return page_json(data, name=brand.name)

    async def summary(request: web.Request) -> web.Response:
        # As Statuspage's: the unresolved incidents and the windows not over, with their updates.
        data = await load(request, shown=lambda d: [*d.active, *_current_windows(d)])
        return _json(
            {
                "page": page_info(data),
                "components": components_json(data),
                "incidents": [incident_json(data, i) for i in data.active],
                "scheduled_maintenances": [incident_json(data, w) for w in _current_windows(data)],
                "status": status_json(data),
            }
        )

    async def status(request: web.Request) -> web.Response:
        data = await load(request)
        return _json({"page": page_info(data), "status": status_json(data)})

    async def components(request: web.Request) -> web.Response:
        data = await load(request)
        return _json({"page": page_info(data), "components": components_json(data)})

    async def incidents(request: web.Request) -> web.Response:
        # However old: the page's days of history are no limit of the API's list.
        async with request.app[DATABASE].transaction() as session:
            data = await load_history(session, now=clock(), page_url=url)
            recent = await status_repo.recent_incidents(session, limit=RECENT)
            ids = [i.id for i in recent if i.id is not None]
            data = replace(data, updates=await status_repo.updates_for(session, incident_ids=ids))
            data = await with_changes_for(session, data, recent)
        return _json({"page": page_info(data), "incidents": [incident_json(data, i) for i in recent]})

    async def unresolved(request: web.Request) -> web.Response:
        data = await load(request, shown=lambda d: d.active)
        return _json({"page": page_info(data), "incidents": [incident_json(data, i) for i in data.active]})

    async def maintenances(request: web.Request) -> web.Response:
        data = await load(request, shown=_recent_windows)
        return _json(
            {
                "page": page_info(data),
                "scheduled_maintenances": [incident_json(data, w) for w in _recent_windows(data)],
            }
        )

    def maintenances_in(state: MaintenanceStatus) -> Callable[[web.Request], Awaitable[web.Response]]:
        """Statuspage's `upcoming.json` (scheduled) and `active.json` (in progress)."""

        async def windows(request: web.Request) -> web.Response:
            data = await load(request, shown=lambda d: _windows_in(d, state))
            found = [incident_json(data, w) for w in _windows_in(data, state)]
            return _json({"page": page_info(data), "scheduled_maintenances": found})

        return windows

    api: dict[str, Callable[[web.Request], Awaitable[web.Response]]] = {
        "summary.json": summary,
        "status.json": status,
        "components.json": components,
        "incidents.json": incidents,
        "incidents/unresolved.json": unresolved,
        "scheduled-maintenances.json": maintenances,
        "scheduled-maintenances/upcoming.json": maintenances_in(MaintenanceStatus.SCHEDULED),
        "scheduled-maintenances/active.json": maintenances_in(MaintenanceStatus.IN_PROGRESS),
    }

    @web.middleware
    async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every 4xx under /api/ as JSON; the HTML pages keep aiohttp's own."""
        try:
            return await handler(request)
        except web.HTTPException as error:
            if not (400 <= error.status < 500 and request.path.startswith("/api/")):
                raise
            return _api_error(error, request.path, served=api)

    def install(app: web.Application) -> None:
        app.router.add_get("/", page)
        app.router.add_get("/history", history_page)
        app.router.add_get("/history.atom", atom)
        app.router.add_get("/history.rss", rss)
        for path, handler in api.items():
            app.router.add_get(f"{API}{path}", handler)
        app.middlewares.append(api_errors)

    return install
