"""Components, incidents, maintenance windows and customer links: the status model's storage.

Plain reads and writes: what the statuses mean (and what an incident does to its components) is the
domain's, in `bot/status/`; this module stores the strings it is given.

Component lists are stored as comma-separated names (`"api,payments"`); both databases compare them
in Python, which is fine at the scale of a status page (tens of components, hundreds of incidents).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, and_, bindparam, or_, select, update
from sqlmodel import col

from storage import counters_repo, dialect
from storage.models import ComponentStatusChange, Incident, IncidentLink, IncidentUpdate, StatusComponent
from storage.session import DbSession

DEFLECTIONS = "status.deflections"


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


# -- components --------------------------------------------------------------------------------


# Every status question reads the components and the open incidents: statements built once.
_COMPONENTS = select(StatusComponent).order_by(col(StatusComponent.position), col(StatusComponent.id))
_OPEN_INCIDENT = and_(col(Incident.kind) == "incident", col(Incident.resolved_at).is_(None))
_MAINTENANCE_NOT_OVER_AT = and_(col(Incident.kind) == "maintenance", col(Incident.ends_at) > bindparam("at"))
_ACTIVE_INCIDENTS = select(Incident).where(_OPEN_INCIDENT).order_by(col(Incident.id).desc())


async def list_components(session: DbSession) -> list[StatusComponent]:
    result = await session.execute(_COMPONENTS)
    return list(result.scalars())


async def get_component(session: DbSession, *, name: str) -> StatusComponent | None:
    result = await session.execute(select(StatusComponent).where(col(StatusComponent.name) == name))
    return result.scalar_one_or_none()


async def lock_components(session: DbSession, *, names: Sequence[str]) -> list[StatusComponent]:
    """These components, locked until the transaction ends and read fresh (PostgreSQL; SQLite has one
    writer anyway), in id order: a transaction that moves components by what the open incidents
    mean holds them before it reads those incidents, so two at once (resolving two incidents on one
    component) see each other's; and one order, the one a flush updating several (`sync_components`)
    takes too, never deadlocks."""
    result = await session.execute(
        select(StatusComponent)
        .where(col(StatusComponent.name).in_(list(names)))
        .order_by(col(StatusComponent.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def sync_components(
    session: DbSession, *, declared: Sequence[ComponentSpec], at: datetime | None = None
) -> int:
    """Create or refresh the declared components. Status and history are never touched, and a
    component dropped from the file stays (its incidents still refer to it). Returns how many were new.
    `at`: when a new component starts being watched (its uptime history begins then); default now."""
    existing = {c.name: c for c in await list_components(session)}
    created = 0
    for position, spec in enumerate(declared):
        component = existing.get(spec.name)
        if component is None:
            component = StatusComponent(name=spec.name)
            if at is not None:
                component.created_at = component.updated_at = at
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
    if component.status == status:
        return None
    assert component.id is not None, "a stored component"
    change = ComponentStatusChange(
        component_id=component.id,
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


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def _changes_since(query: _Query, since: datetime) -> _Query:
    """`query` narrowed to the status changes at or after `since`, oldest first, and those of one
    moment in the order they were made: the one order both reads below promise."""
    return query.where(col(ComponentStatusChange.at) >= since).order_by(
        col(ComponentStatusChange.at), col(ComponentStatusChange.id)
    )


async def status_changes_since(session: DbSession, *, since: datetime) -> list[ComponentStatusChange]:
    """Every component's status changes at or after `since`, oldest first (the uptime history)."""
    result = await session.execute(_changes_since(select(ComponentStatusChange), since))
    return list(result.scalars())


class StatusMove(NamedTuple):
    """A status change as `status_around` needs it: which component, when, from what to what."""

    component_id: int
    at: datetime
    old_status: str
    new_status: str


async def status_moves_since(session: DbSession, *, since: datetime) -> list[StatusMove]:
    """`status_changes_since` as plain rows: on a long incident's API answer there are thousands,
    and building an ORM object for each cost more than reading them."""
    change = ComponentStatusChange
    columns = select(col(change.component_id), col(change.at), col(change.old_status), col(change.new_status))
    result = await session.execute(_changes_since(columns, since))
    return [StatusMove._make(row) for row in result]


async def component_history(session: DbSession, *, component_id: int) -> list[ComponentStatusChange]:
    result = await session.execute(
        select(ComponentStatusChange)
        .where(col(ComponentStatusChange.component_id) == component_id)
        .order_by(col(ComponentStatusChange.id))
    )
    return list(result.scalars())


# -- incidents ---------------------------------------------------------------------------------


async def create_incident(
    session: DbSession,
    *,
    title: str,
    impact: str,
    status: str,
    components: Sequence[str],
    first_update: str,
    actor_key: str,
    at: datetime,
) -> Incident:
    """Store a new incident and the first entry of its timeline."""
    incident = Incident(
        kind="incident",
        title=title,
        impact=impact,
        status=status,
        components=join_names(components),
        created_by=actor_key,
        created_at=at,
        updated_at=at,
    )
    return await _add_with_first_update(session, incident, first_update)


async def _add_with_first_update(session: DbSession, incident: Incident, body: str) -> Incident:
    session.add(incident)
    await session.flush()
    assert incident.id is not None, "assigned by the flush"
    session.add(
        IncidentUpdate(
            incident_id=incident.id,
            status=incident.status,
            body=body,
            at=incident.created_at,
            actor_key=incident.created_by,
        )
    )
    await session.flush()
    return incident


# FOR NO KEY UPDATE (`key_share`) on PostgreSQL, not FOR UPDATE: it still makes a second staff
# member's command wait, but not an insert of a row that points at the incident (a customer linked
# to it, a broadcast about it), whose foreign key check takes FOR KEY SHARE on it.
_INCIDENT_LOCKED = (
    select(Incident)
    .where(col(Incident.id) == bindparam("id"))
    .with_for_update(key_share=True)
    .execution_options(populate_existing=True)
)
# FOR UPDATE, to resolve it: it waits for the customers being linked to it at that moment (their
# FOR KEY SHARE), so that `links_to_notify` then reads them and they are told it is resolved.
_INCIDENT_LOCKED_TO_RESOLVE = _INCIDENT_LOCKED.with_for_update()
_INCIDENT_KEY_SHARED = (
    select(col(Incident.resolved_at))
    .where(col(Incident.id) == bindparam("id"))
    .with_for_update(read=True, key_share=True)
)


async def get_incident(
    session: DbSession,
    *,
    incident_id: int,
    kind: str = "incident",
    for_update: bool = False,
    to_resolve: bool = False,
) -> Incident | None:
    """`for_update` locks the row until the transaction ends (PostgreSQL; SQLite has one writer
    anyway) and reads its latest committed state, so of two staff ending one maintenance window, or
    resolving one incident, at once the second sees it is over and the subscriptions hear it once.
    `to_resolve` (with `for_update`) also waits for customers being linked to it right now."""
    incident: Incident | None
    if for_update:
        locked = _INCIDENT_LOCKED_TO_RESOLVE if to_resolve else _INCIDENT_LOCKED
        incident = (await session.execute(locked, {"id": incident_id})).scalar_one_or_none()
    else:
        incident = await session.get(Incident, incident_id)
    if incident is None or incident.kind != kind:
        return None
    return incident


async def add_update(
    session: DbSession,
    *,
    incident: Incident,
    status: str,
    body: str,
    actor_key: str,
    at: datetime,
    resolves: bool = False,
) -> IncidentUpdate:
    """Append to the timeline and move the incident to `status`; `resolves` also stamps it resolved
    (an incident without `resolved_at` is active), and any other update of a resolved one clears
    that stamp: the incident is reopened, its timeline kept."""
    assert incident.id is not None, "a stored incident"
    update_row = IncidentUpdate(
        incident_id=incident.id,
        status=status,
        body=body,
        at=at,
        actor_key=actor_key,
    )
    session.add(update_row)
    incident.status = status
    incident.updated_at = at
    incident.resolved_at = at if resolves else None
    await session.flush()
    return update_row


async def publish_postmortem(session: DbSession, *, incident: Incident, body: str, at: datetime) -> bool:
    """Publish (or replace) the incident's postmortem; True when it replaced one."""
    replaced = incident.postmortem_published_at is not None
    incident.postmortem_body = body
    incident.postmortem_published_at = at
    incident.updated_at = at  # readers of the API and the feeds see that it changed
    await session.flush()
    return replaced


async def active_incidents(session: DbSession) -> list[Incident]:
    result = await session.execute(_ACTIVE_INCIDENTS)
    return list(result.scalars())


async def incidents_since(session: DbSession, *, since: datetime) -> list[Incident]:
    """Incidents opened or still open since `since`, newest first (the page's history)."""
    result = await session.execute(
        select(Incident)
        .where(col(Incident.kind) == "incident")
        .where(
            (col(Incident.created_at) >= since)
            | (col(Incident.resolved_at).is_(None))
            | (col(Incident.resolved_at) >= since)
        )
        .order_by(col(Incident.created_at).desc())
    )
    return list(result.scalars())


async def recent_incidents(session: DbSession, *, limit: int) -> list[Incident]:
    """The `limit` incidents opened last, newest first, however long ago (Statuspage's list)."""
    result = await session.execute(
        select(Incident)
        .where(col(Incident.kind) == "incident")
        .order_by(col(Incident.created_at).desc(), col(Incident.id).desc())
        .limit(limit)
    )
    return list(result.scalars())


async def updates_for(session: DbSession, *, incident_ids: Sequence[int]) -> dict[int, list[IncidentUpdate]]:
    """Timelines, newest update first."""
    found: dict[int, list[IncidentUpdate]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return found
    result = await session.execute(
        select(IncidentUpdate)
        .where(col(IncidentUpdate.incident_id).in_(incident_ids))
        .order_by(col(IncidentUpdate.id).desc())
    )
    for row in result.scalars():
        found[row.incident_id].append(row)
    return found


# -- maintenance ---------------------------------------------------------------------------------


async def create_maintenance(
    session: DbSession,
    *,
    title: str,
    impact: str,
    status: str,
    components: Sequence[str],
    starts_at: datetime,
    ends_at: datetime,
    first_update: str,
    actor_key: str,
    at: datetime,
) -> Incident:
    """Store a maintenance window (an incident row of kind "maintenance") and its first entry."""
    window = Incident(
        kind="maintenance",
        title=title,
        impact=impact,
        status=status,
        components=join_names(components),
        created_by=actor_key,
        created_at=at,
        updated_at=at,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    return await _add_with_first_update(session, window, first_update)


_ALL_MAINTENANCE = (
    select(Incident).where(col(Incident.kind) == "maintenance").order_by(col(Incident.starts_at))
)
# Windows whose start or end falls in (since, until], ended by the clock (not by a command, which
# marks them completed and tells the subscriptions itself).
_MAINTENANCE_TURNING = (
    select(Incident)
    .where(
        col(Incident.kind) == "maintenance",
        col(Incident.status) != "completed",
        or_(
            and_(col(Incident.starts_at) > bindparam("since"), col(Incident.starts_at) <= bindparam("until")),
            and_(col(Incident.ends_at) > bindparam("since"), col(Incident.ends_at) <= bindparam("until")),
        ),
    )
    .order_by(col(Incident.starts_at), col(Incident.id))
)


async def maintenance_turning(session: DbSession, *, since: datetime, until: datetime) -> list[Incident]:
    """Maintenance windows that began or ended by the clock in (since, until]."""
    result = await session.execute(_MAINTENANCE_TURNING, {"since": since, "until": until})
    return list(result.scalars())


# Every status answer asks this: built once. Past windows stay in the table for the history, and are
# not loaded each time.
_MAINTENANCE_NOT_OVER = select(Incident).where(_MAINTENANCE_NOT_OVER_AT).order_by(col(Incident.starts_at))


# What every status answer reads, in one statement: both kinds live in one table, and a round trip
# (with the ORM's work around it) cost more than reading the few rows of the other kind.
_OPEN_OR_NOT_OVER = (
    select(Incident)
    .where(or_(_OPEN_INCIDENT, _MAINTENANCE_NOT_OVER_AT))
    .order_by(col(Incident.starts_at), col(Incident.id))
)


async def open_incidents_and_maintenance(
    session: DbSession, *, at: datetime
) -> tuple[list[Incident], list[Incident]]:
    """`active_incidents()` and `maintenance_windows(at=at)` at once: the open incidents, newest
    first, and the maintenance windows not over at `at`, soonest first."""
    rows = list((await session.execute(_OPEN_OR_NOT_OVER, {"at": at})).scalars())
    incidents = sorted((r for r in rows if r.kind == "incident"), key=lambda r: r.id or 0, reverse=True)
    return incidents, [r for r in rows if r.kind == "maintenance"]


async def maintenance_windows(
    session: DbSession, *, at: datetime, component: str | None = None, include_past: bool = False
) -> list[Incident]:
    """Maintenance windows not over at `at` (with `include_past`, all of them), soonest first;
    optionally only those touching `component`."""
    statement = _ALL_MAINTENANCE if include_past else _MAINTENANCE_NOT_OVER
    result = await session.execute(statement, {} if include_past else {"at": at})
    return [
        window
        for window in result.scalars()
        if component is None or component in split_names(window.components)
    ]


async def maintenance_overlap(
    session: DbSession, *, component: str, start: datetime, end: datetime
) -> timedelta:
    """How much of [start, end) fell inside maintenance of `component` (to pause an SLA clock)."""
    windows = await maintenance_windows(session, at=start, component=component, include_past=True)
    total = timedelta()
    reached = start  # soonest first: time up to here is counted already, so an overlap counts once
    for window in windows:
        assert window.starts_at is not None and window.ends_at is not None
        # One cancelled before it began was resolved before its start: it paused nothing.
        ended = min(window.ends_at, window.resolved_at or window.ends_at)
        low, high = max(reached, window.starts_at), min(end, ended)
        if high > low:
            total += high - low
            reached = high
    return total


# -- customers linked to incidents ---------------------------------------------------------------


class Linked(enum.Enum):
    """What asking about an incident did."""

    NEW = "new"
    """Linked: told when it resolves."""
    ALREADY = "already"
    """Linked before and not told yet: told once, when it resolves."""
    RESOLVED = "resolved"
    """Resolved after the question read it and before the link: nothing linked, nobody will tell."""


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
) -> Linked:
    """Remember that this conversation asked about the incident, to tell it when it resolves.
    Told already (the incident was reopened since), they are told again when it resolves again,
    where they asked this time. `Linked.RESOLVED` when it is resolved by now: the caller read it as
    ongoing, and must read it again before answering."""
    # FOR KEY SHARE on the incident, held until the customer's transaction ends: a staff update
    # does not wait for it, but a resolve (FOR UPDATE) does, and then reads this link, even one
    # that only clears `notified_at` (an UPDATE takes no key share of its own). A resolve that
    # committed before the lock was taken has read the links already: the row read under the lock
    # says so (on PostgreSQL a locking read sees the last committed version).
    locked = await session.execute(_INCIDENT_KEY_SHARED, {"id": incident_id})
    if locked.scalar_one_or_none() is not None:
        return Linked.RESOLVED
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
    statement = dialect.insert(session, IncidentLink).values(**values)
    where = ("platform", "workspace_id", "channel_id", "thread_id", "is_direct", "component")
    statement = statement.on_conflict_do_update(
        index_elements=["incident_id", "conversation_key"],
        set_={**{name: statement.excluded[name] for name in where}, "notified_at": None},
        where=col(IncidentLink.notified_at).is_not(None),
    )
    result = await session.execute(statement.returning(col(IncidentLink.id)))
    return Linked.NEW if result.scalar_one_or_none() is not None else Linked.ALREADY


async def links_to_notify(session: DbSession, *, incident_id: int) -> list[IncidentLink]:
    result = await session.execute(
        select(IncidentLink)
        .where(col(IncidentLink.incident_id) == incident_id, col(IncidentLink.notified_at).is_(None))
        .order_by(col(IncidentLink.id))
    )
    return list(result.scalars())


async def mark_links_notified(session: DbSession, *, link_ids: Sequence[int], at: datetime) -> None:
    """Count the deflections once, as the resolve notices are queued (in the same transaction)."""
    if not link_ids:
        return
    await session.execute(
        update(IncidentLink).where(col(IncidentLink.id).in_(link_ids)).values(notified_at=at)
    )
    for _ in link_ids:
        await counters_repo.next_value(session, name=DEFLECTIONS)


async def deflections(session: DbSession) -> int:
    from storage.models import Counter

    counter = await session.get(Counter, DEFLECTIONS)
    return counter.value if counter else 0
