"""Components, incidents, maintenance windows and customer links: the status model's storage.

Component lists are stored as comma-separated names (`"api,payments"`); both databases compare them
in Python, which is fine at the scale of a status page (tens of components, hundreds of incidents).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage import counters_repo
from storage.models import ComponentStatusChange, Incident, IncidentLink, IncidentUpdate, StatusComponent
from storage.session import DbSession

COMPONENT_STATUSES = (
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
)
IMPACTS = ("none", "minor", "major", "critical")
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
MAINTENANCE_STATUSES = ("scheduled", "in_progress", "completed")
DEFLECTIONS = "status.deflections"

# What an incident does to its components while it is open (Statuspage lets staff pick; a default
# keeps the command short, and `/component set` overrides it).
IMPACT_TO_STATUS = {
    "none": "operational",
    "minor": "degraded_performance",
    "major": "partial_outage",
    "critical": "major_outage",
}
_SEVERITY = {status: rank for rank, status in enumerate(COMPONENT_STATUSES[:4])}


def split_names(value: str) -> list[str]:
    return [name for name in value.split(",") if name]


def join_names(names: Iterable[str]) -> str:
    return ",".join(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """A component as declared in `components.yml`."""

    name: str
    aliases: tuple[str, ...] = ()
    group: str = ""
    description: str = ""


def _dialect(session: DbSession) -> str:
    return session.bind.dialect.name if session.bind else "sqlite"


# -- components --------------------------------------------------------------------------------


# Every status question reads the components and the open incidents: statements built once.
_COMPONENTS = select(StatusComponent).order_by(StatusComponent.position, StatusComponent.id)
_ACTIVE_INCIDENTS = (
    select(Incident)
    .where(Incident.kind == "incident", Incident.status != "resolved")
    .order_by(Incident.id.desc())  # type: ignore[union-attr]
)


async def list_components(session: DbSession) -> list[StatusComponent]:
    result = await session.execute(_COMPONENTS)
    return list(result.scalars())


async def get_component(session: DbSession, *, name: str) -> StatusComponent | None:
    result = await session.execute(select(StatusComponent).where(StatusComponent.name == name))
    return result.scalar_one_or_none()


async def sync_components(session: DbSession, *, declared: Sequence[ComponentSpec]) -> int:
    """Create or refresh the declared components. Status and history are never touched, and a
    component dropped from the file stays (its incidents still refer to it). Returns how many were new."""
    existing = {c.name: c for c in await list_components(session)}
    created = 0
    for position, spec in enumerate(declared):
        component = existing.get(spec.name)
        if component is None:
            component = StatusComponent(name=spec.name)
            session.add(component)
            created += 1
        component.aliases = join_names(spec.aliases)
        component.group_name = spec.group
        component.description = spec.description
        component.position = position
    await session.flush()
    return created


async def add_component(
    session: DbSession, *, name: str, group: str, aliases: Sequence[str], at: datetime
) -> StatusComponent:
    position = len(await list_components(session))
    component = StatusComponent(
        name=name,
        group_name=group,
        aliases=join_names(aliases),
        position=position,
        created_at=at,
        updated_at=at,
    )
    session.add(component)
    await session.flush()
    return component


async def set_component_status(
    session: DbSession,
    *,
    component: StatusComponent,
    status: str,
    actor_key: str,
    at: datetime,
    reason: str = "",
) -> ComponentStatusChange | None:
    """Change the status and keep the history; None when it already had that status."""
    if status not in COMPONENT_STATUSES:
        raise ValueError(f"unknown component status {status!r}")
    if component.status == status:
        return None
    change = ComponentStatusChange(
        component_id=component.id,  # type: ignore[arg-type]
        old_status=component.status,
        new_status=status,
        at=at,
        actor_key=actor_key,
        reason=reason[:200],
    )
    component.status = status
    component.updated_at = at
    session.add(change)
    await session.flush()
    return change


async def component_history(session: DbSession, *, component_id: int) -> list[ComponentStatusChange]:
    result = await session.execute(
        select(ComponentStatusChange)
        .where(ComponentStatusChange.component_id == component_id)
        .order_by(ComponentStatusChange.id)
    )
    return list(result.scalars())


# -- incidents ---------------------------------------------------------------------------------


async def open_incident(
    session: DbSession,
    *,
    title: str,
    impact: str,
    components: Sequence[StatusComponent],
    actor_key: str,
    at: datetime,
    message: str = "",
) -> Incident:
    """Open an incident, write its first update and degrade its components according to its impact."""
    incident = Incident(
        kind="incident",
        title=title,
        impact=impact,
        status="investigating",
        components=join_names(c.name for c in components),
        created_by=actor_key,
        created_at=at,
        updated_at=at,
    )
    session.add(incident)
    await session.flush()
    body = message or f"We are investigating: {title}."
    session.add(
        IncidentUpdate(incident_id=incident.id, status="investigating", body=body, at=at, actor_key=actor_key)  # type: ignore[arg-type]
    )
    target = IMPACT_TO_STATUS[impact]
    for component in components:
        # An incident never improves a component another incident made worse.
        if component.status == "under_maintenance" or _SEVERITY[target] > _SEVERITY.get(component.status, 0):
            await set_component_status(
                session,
                component=component,
                status=target,
                actor_key=actor_key,
                at=at,
                reason=f"incident #{incident.id}",
            )
    await session.flush()
    return incident


async def get_incident(session: DbSession, *, incident_id: int, kind: str = "incident") -> Incident | None:
    incident = await session.get(Incident, incident_id)
    if incident is None or incident.kind != kind:
        return None
    return incident


async def add_update(
    session: DbSession, *, incident: Incident, status: str, body: str, actor_key: str, at: datetime
) -> IncidentUpdate:
    """Append to the timeline. Resolving puts components back to operational unless another active
    incident still affects them."""
    if status not in INCIDENT_STATUSES:
        raise ValueError(f"unknown incident status {status!r}")
    update_row = IncidentUpdate(
        incident_id=incident.id,  # type: ignore[arg-type]
        status=status,
        body=body,
        at=at,
        actor_key=actor_key,
    )
    session.add(update_row)
    incident.status = status
    incident.updated_at = at
    if status == "resolved":
        incident.resolved_at = at
        await session.flush()
        still_affected: set[str] = set()
        for other in await active_incidents(session):
            still_affected.update(split_names(other.components))
        for name in split_names(incident.components):
            component = await get_component(session, name=name)
            if component is not None and name not in still_affected and component.status != "operational":
                await set_component_status(
                    session,
                    component=component,
                    status="operational",
                    actor_key=actor_key,
                    at=at,
                    reason=f"incident #{incident.id} resolved",
                )
    await session.flush()
    return update_row


async def active_incidents(session: DbSession) -> list[Incident]:
    result = await session.execute(_ACTIVE_INCIDENTS)
    return list(result.scalars())


async def active_incidents_for(session: DbSession, *, component: str) -> list[Incident]:
    return [i for i in await active_incidents(session) if component in split_names(i.components)]


async def incidents_since(session: DbSession, *, since: datetime) -> list[Incident]:
    """Incidents opened or still open since `since`, newest first (the page's history)."""
    result = await session.execute(
        select(Incident)
        .where(Incident.kind == "incident")
        .where(
            (Incident.created_at >= since)
            | (Incident.resolved_at.is_(None))
            | (Incident.resolved_at >= since)
        )  # type: ignore[union-attr]
        .order_by(Incident.created_at.desc())  # type: ignore[attr-defined]
    )
    return list(result.scalars())


async def updates_for(session: DbSession, *, incident_ids: Sequence[int]) -> dict[int, list[IncidentUpdate]]:
    """Timelines, newest update first."""
    found: dict[int, list[IncidentUpdate]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return found
    result = await session.execute(
        select(IncidentUpdate)
        .where(IncidentUpdate.incident_id.in_(incident_ids))  # type: ignore[attr-defined]
        .order_by(IncidentUpdate.id.desc())  # type: ignore[union-attr]
    )
    for row in result.scalars():
        found[row.incident_id].append(row)
    return found


# -- maintenance ---------------------------------------------------------------------------------


def maintenance_status(window: Incident, at: datetime) -> str:
    """scheduled / in_progress / completed, from the clock (so nobody has to flip it by hand)."""
    assert window.starts_at is not None and window.ends_at is not None
    if window.status == "completed" or at >= window.ends_at:
        return "completed"
    return "in_progress" if at >= window.starts_at else "scheduled"


async def schedule_maintenance(
    session: DbSession,
    *,
    title: str,
    components: Sequence[StatusComponent],
    starts_at: datetime,
    ends_at: datetime,
    actor_key: str,
    at: datetime,
) -> Incident:
    window = Incident(
        kind="maintenance",
        title=title,
        impact="maintenance",
        status="scheduled",
        components=join_names(c.name for c in components),
        created_by=actor_key,
        created_at=at,
        updated_at=at,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    session.add(window)
    await session.flush()
    session.add(
        IncidentUpdate(
            incident_id=window.id,  # type: ignore[arg-type]
            status="scheduled",
            body=f"Scheduled maintenance: {title}.",
            at=at,
            actor_key=actor_key,
        )
    )
    await session.flush()
    return window


_ALL_MAINTENANCE = select(Incident).where(Incident.kind == "maintenance").order_by(Incident.starts_at)
# Every status answer asks this: built once. Past windows stay in the table for the history, and are
# not loaded each time.
_MAINTENANCE_NOT_OVER = (
    select(Incident)
    .where(
        Incident.kind == "maintenance",
        Incident.status != "completed",
        Incident.ends_at > bindparam("at"),  # type: ignore[operator]
    )
    .order_by(Incident.starts_at)
)


async def maintenance_windows(
    session: DbSession, *, at: datetime, component: str | None = None, include_completed: bool = False
) -> list[Incident]:
    """Maintenance windows (soonest first), optionally only those touching `component`."""
    statement = _ALL_MAINTENANCE if include_completed else _MAINTENANCE_NOT_OVER
    result = await session.execute(statement, {} if include_completed else {"at": at})
    windows = []
    for window in result.scalars():
        if component is not None and component not in split_names(window.components):
            continue
        if not include_completed and maintenance_status(window, at) == "completed":
            continue
        windows.append(window)
    return windows


async def maintenance_active(session: DbSession, *, component: str, at: datetime) -> bool:
    """True while a maintenance window covers `component` at `at`.

    The ticket first-response clock calls this: a ticket about a component under maintenance does not
    count as waiting."""
    windows = await maintenance_windows(session, at=at, component=component)
    return any(maintenance_status(w, at) == "in_progress" for w in windows)


async def maintenance_overlap(
    session: DbSession, *, component: str, start: datetime, end: datetime
) -> timedelta:
    """How much of [start, end) fell inside maintenance of `component` (to pause an SLA clock)."""
    windows = await maintenance_windows(session, at=start, component=component, include_completed=True)
    total = timedelta()
    for window in windows:
        assert window.starts_at is not None and window.ends_at is not None
        low, high = max(start, window.starts_at), min(end, window.ends_at)
        if high > low:
            total += high - low
    return total


# -- customers linked to incidents ---------------------------------------------------------------


async def link_customer(
    session: DbSession,
    *,
    incident_id: int,
    conversation_key: str,
    platform: str,
    workspace_id: str,
    channel_id: str,
    thread_id: str | None,
    is_direct: bool,
    actor_key: str,
    component: str,
    at: datetime,
) -> bool:
    """Remember that this conversation asked about the incident; False if it already had."""
    values = {
        "incident_id": incident_id,
        "conversation_key": conversation_key,
        "platform": platform,
        "workspace_id": workspace_id,
        "channel_id": channel_id,
        "thread_id": thread_id,
        "is_direct": is_direct,
        "actor_key": actor_key,
        "component": component,
        "created_at": at,
    }
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    statement = insert(IncidentLink).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement.returning(IncidentLink.id))
    return result.scalar_one_or_none() is not None


async def links_to_notify(session: DbSession, *, incident_id: int) -> list[IncidentLink]:
    result = await session.execute(
        select(IncidentLink)
        .where(IncidentLink.incident_id == incident_id, IncidentLink.notified_at.is_(None))  # type: ignore[union-attr]
        .order_by(IncidentLink.id)
    )
    return list(result.scalars())


async def mark_links_notified(session: DbSession, *, link_ids: Sequence[int], at: datetime) -> None:
    """Count the deflections once, as the resolve notices are queued (in the same transaction)."""
    if not link_ids:
        return
    await session.execute(
        update(IncidentLink).where(IncidentLink.id.in_(link_ids)).values(notified_at=at)  # type: ignore[union-attr]
    )
    for _ in link_ids:
        await counters_repo.next_value(session, name=DEFLECTIONS)


async def deflections(session: DbSession) -> int:
    from storage.models import Counter

    counter = await session.get(Counter, DEFLECTIONS)
    return counter.value if counter else 0
