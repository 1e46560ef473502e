"""The public status page (`GET /`) and Statuspage-compatible JSON (`/api/v2/*.json`) on the bot's
aiohttp server, so tools and widgets that read a Statuspage page read ours."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.status.messages import STATUS_LABEL
from bot.status.model import MAINTENANCE_IMPACT, Impact, IncidentStatus, MaintenanceStatus, worst
from bot.status.snapshot import HISTORY_DAYS, Snapshot, load_history
from bot.web import DATABASE
from storage import status_repo
from storage.models import Incident, StatusComponent

PAGE_ID = "supportbot"
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


def page_json(data: Snapshot) -> dict[str, Any]:
    stamps = [c.updated_at for c in data.components] + [i.updated_at for i in data.incidents]
    return {
        "id": PAGE_ID,
        "name": "Status",
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


def incident_json(data: Snapshot, incident: Incident) -> dict[str, Any]:
    names = status_repo.split_names(incident.components)
    components = [c for c in components_json(data) if c["name"] in names and not c["group"]]
    timeline = data.updates.get(incident.id or 0, [])
    monitoring = [u.at for u in timeline if u.status == IncidentStatus.MONITORING]
    maintenance = incident.kind == "maintenance"
    body: dict[str, Any] = {
        "id": str(incident.id),
        "name": incident.title,
        "status": data.window_status(incident).value if maintenance else incident.status,
        "created_at": _iso(incident.created_at),
        "updated_at": _iso(incident.updated_at),
        "monitoring_at": _iso(min(monitoring)) if monitoring else None,
        "resolved_at": _iso(incident.resolved_at),
        "impact": MAINTENANCE_IMPACT if maintenance else incident.impact,
        "shortlink": f"{data.page_url}#incident-{incident.id}",
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
                "affected_components": [
                    {
                        "code": c["id"],
                        "name": c["name"],
                        "old_status": c["status"],
                        "new_status": c["status"],
                    }
                    for c in components
                ],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
            for u in timeline
        ],
        "components": components,
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


def _json(body: dict[str, Any]) -> web.Response:
    response = web.json_response(body)
    # Widgets on other sites read this API from the browser.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "max-age=10"
    return response


# -- the HTML page -------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:760px;margin:0 auto;padding:16px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:28px}
.banner{padding:14px 16px;border-radius:8px;color:#fff;font-weight:600;background:#2e9e5b}
.banner.minor{background:#d9a400}.banner.major{background:#e8590c}.banner.critical{background:#c92a2a}
.banner.maintenance{background:#3b6fd8}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:12px 16px;margin:10px 0}
.row{display:flex;justify-content:space-between;gap:12px;padding:6px 0;border-bottom:1px solid #f0f1f3}
.row:last-child{border-bottom:0}.s-operational{color:#2e9e5b}.s-degraded_performance{color:#b08500}
.s-partial_outage{color:#e8590c}.s-major_outage{color:#c92a2a}.s-under_maintenance{color:#3b6fd8}
.update{margin:6px 0 0;font-size:.95rem}.muted{color:#69707d;font-size:.85rem}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%b %d, %H:%M UTC") if moment else ""


def _incident_html(data: Snapshot, incident: Incident) -> str:
    parts = [f'<div class="card" id="incident-{incident.id}"><strong>{_e(incident.title)}</strong>']
    parts.append(f'<div class="muted">Affects {_e(incident.components.replace(",", ", "))}</div>')
    for update in data.updates.get(incident.id or 0, []):
        parts.append(
            f'<p class="update"><strong>{_e(update.status.replace("_", " ").capitalize())}</strong> - '
            f'{_e(update.body)} <span class="muted">{_stamp(update.at)}</span></p>'
        )
    parts.append("</div>")
    return "".join(parts)


def render_page(data: Snapshot) -> str:
    indicator = data.indicator
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<meta http-equiv='refresh' content='60'>",
        f"<title>Status - {_e(INDICATOR_TEXT[indicator])}</title><style>{_CSS}</style></head><body><main>",
        "<h1>System status</h1>",
        f"<div class='banner {indicator}' id='overall'>{_e(INDICATOR_TEXT[indicator])}</div>",
    ]
    active = data.active
    if active:
        out.append("<h2>Active incidents</h2>")
        out.extend(_incident_html(data, i) for i in active)
    current = _current_windows(data)
    if current:
        out.append("<h2>Maintenance</h2>")
        for window in current:
            state = data.window_status(window).replace("_", " ")
            out.append(
                f"<div class='card'><strong>{_e(window.title)}</strong> "
                f"<span class='muted'>({_e(state)})</span>"
                f"<div class='muted'>{_stamp(window.starts_at)} to {_stamp(window.ends_at)} · "
                f"{_e(window.components.replace(',', ', '))}</div></div>"
            )
    out.append("<h2>Components</h2>")
    groups: dict[str, list[StatusComponent]] = {}
    for component in data.components:
        groups.setdefault(component.group_name or "Other", []).append(component)
    for group, members in groups.items():
        out.append(f"<div class='card'><strong>{_e(group)}</strong>")
        for component in members:
            status = data.status_of(component)
            out.append(
                f"<div class='row'><span>{_e(component.name)}</span>"
                f"<span class='s-{status}'>{_e(STATUS_LABEL[status])}</span></div>"
            )
        out.append("</div>")
    out.append(f"<h2>Past {HISTORY_DAYS} days</h2>")
    for offset in range(HISTORY_DAYS):
        day = (data.now - timedelta(days=offset)).date()
        that_day = [i for i in data.incidents if i.created_at.date() == day]
        out.append(f"<div class='card'><strong>{day.strftime('%b %d, %Y')}</strong>")
        if not that_day:
            out.append("<div class='muted'>No incidents reported.</div>")
        for incident in that_day:
            when = f" (resolved {_stamp(incident.resolved_at)})" if incident.resolved_at else ""
            out.append(
                f"<div class='row'><a href='#incident-{incident.id}'>{_e(incident.title)}</a>"
                f"<span class='muted'>{_e(incident.impact)}{_e(when)}</span></div>"
            )
        out.append("</div>")
    # Every incident linked above (and by the API's shortlink) has its own card with its updates.
    resolved = [i for i in data.incidents if i.resolved_at is not None]
    if resolved:
        out.append("<h2>Resolved incidents</h2>")
        out.extend(_incident_html(data, i) for i in resolved)
    out.append(f"<p class='muted'>Updated {_stamp(data.now)}. This page refreshes itself every minute.</p>")
    out.append("</main></body></html>")
    return "".join(out)


def installer(*, clock: Callable[[], datetime], url: str) -> Callable[[web.Application], None]:
    """Routes for `create_web_app(database, installers)`."""

    async def load(request: web.Request) -> Snapshot:
        async with request.app[DATABASE].transaction() as session:
            return await load_history(session, now=clock(), page_url=url)

    async def page(request: web.Request) -> web.Response:
        data = await load(request)
        response = web.Response(text=render_page(data), content_type="text/html", charset="utf-8")
        # As the JSON: during an incident many people reload at once; ten seconds of caching absorbs it.
        response.headers["Cache-Control"] = "max-age=10"
        return response

    async def summary(request: web.Request) -> web.Response:
        data = await load(request)
        return _json(
            {
                "page": page_json(data),
                "components": components_json(data),
                "incidents": [incident_json(data, i) for i in data.active],
                "scheduled_maintenances": [incident_json(data, w) for w in _current_windows(data)],
                "status": status_json(data),
            }
        )

    async def status(request: web.Request) -> web.Response:
        data = await load(request)
        return _json({"page": page_json(data), "status": status_json(data)})

    async def components(request: web.Request) -> web.Response:
        data = await load(request)
        return _json({"page": page_json(data), "components": components_json(data)})

    async def incidents(request: web.Request) -> web.Response:
        data = await load(request)
        return _json(
            {"page": page_json(data), "incidents": [incident_json(data, i) for i in data.incidents[:50]]}
        )

    async def unresolved(request: web.Request) -> web.Response:
        data = await load(request)
        return _json({"page": page_json(data), "incidents": [incident_json(data, i) for i in data.active]})

    async def maintenances(request: web.Request) -> web.Response:
        data = await load(request)
        return _json(
            {
                "page": page_json(data),
                "scheduled_maintenances": [incident_json(data, w) for w in data.maintenance],
            }
        )

    def install(app: web.Application) -> None:
        app.router.add_get("/", page)
        app.router.add_get("/api/v2/summary.json", summary)
        app.router.add_get("/api/v2/status.json", status)
        app.router.add_get("/api/v2/components.json", components)
        app.router.add_get("/api/v2/incidents.json", incidents)
        app.router.add_get("/api/v2/incidents/unresolved.json", unresolved)
        app.router.add_get("/api/v2/scheduled-maintenances.json", maintenances)

    return install
