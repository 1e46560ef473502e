"""Status changes with their rules: what opening, updating, resolving and reopening an incident
does to its components, and scheduling maintenance. The handlers call these; storage only stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from bot.status.model import (
    IMPACT_TO_STATUS,
    MAINTENANCE_IMPACT,
    ComponentStatus,
    Impact,
    IncidentStatus,
    MaintenanceStatus,
    impact_rank,
    severity,
    worst,
)
from storage import status_repo
from storage.models import ComponentStatusChange, Incident, IncidentUpdate, StatusComponent
from storage.session import DbSession

REOPEN_WITHIN: Final = timedelta(days=7)
"""How long after its resolution an update reopens an incident (Statuspage lets staff post to a
resolved one). A problem back within a week is usually the same one, and its subscribers follow
its thread; later, a new incident tells the story better than one whose card scrolled away."""


def may_reopen(incident: Incident, *, at: datetime) -> bool:
    """Whether an update at `at` may reopen this resolved incident."""
    return incident.resolved_at is not None and at - incident.resolved_at <= REOPEN_WITHIN


def postmortem_is_current(incident: Incident) -> bool:
    """Whether its postmortem explains its latest resolution. One published before it was reopened
    explains a resolution that did not hold: while it is active again, and once resolved again
    until staff publish the new one, it is not the incident's last word."""
    published, resolved = incident.postmortem_published_at, incident.resolved_at
    return published is not None and resolved is not None and published >= resolved


async def set_component_status(
    session: DbSession,
    *,
    component: StatusComponent,
    status: ComponentStatus,
    actor_key: str,
    at: datetime,
    reason: str = "",
) -> ComponentStatusChange | None:
    """Change a component's status, keeping the history; None when it already had that status."""
    return await status_repo.set_component_status(
        session,
        component=component,
        status=ComponentStatus(status).value,  # refuses a word outside the vocabulary
        actor_key=actor_key,
        at=at,
        reason=reason,
    )


async def open_incident(
    session: DbSession,
    *,
    title: str,
    impact: Impact,
    components: Sequence[StatusComponent],
    actor_key: str,
    at: datetime,
    message: str = "",
) -> Incident:
    """Open an incident, write its first update and degrade its components according to its impact."""
    incident = await status_repo.create_incident(
        session,
        title=title,
        impact=Impact(impact).value,
        status=IncidentStatus.INVESTIGATING.value,
        components=[c.name for c in components],
        first_update=message or f"We are investigating: {title}.",
        actor_key=actor_key,
        at=at,
    )
    target = IMPACT_TO_STATUS[Impact(impact)]
    for component in await status_repo.lock_components(session, names=[c.name for c in components]):
        # An incident never improves a component another incident made worse, nor hides maintenance
        # behind an incident that affects nothing.
        if severity(target) > severity(component.status):
            await set_component_status(
                session,
                component=component,
                status=target,
                actor_key=actor_key,
                at=at,
                reason=f"incident #{incident.id}",
            )
    return incident


async def post_update(
    session: DbSession,
    *,
    incident: Incident,
    status: IncidentStatus,
    body: str,
    actor_key: str,
    at: datetime,
    impact: Impact | None = None,
) -> IncidentUpdate:
    """Append to the timeline. A new `impact` moves the incident's components to what it now means
    (worse or better). Resolving puts components back to what the active incidents left still mean
    for them: operational when none affects them. Any other update of a resolved incident reopens
    it, and its components go back to what its impact means, as when it was opened: only worse."""
    resolves = IncidentStatus(status) is IncidentStatus.RESOLVED
    reopens = not resolves and incident.resolved_at is not None
    changed = impact is not None and Impact(impact).value != incident.impact
    raised = False
    if changed:
        assert impact is not None
        raised = impact_rank(impact) > impact_rank(incident.impact)
        body = f"Impact changed from {incident.impact} to {Impact(impact).value}. {body}"
        incident.impact = Impact(impact).value
    update = await status_repo.add_update(
        session,
        incident=incident,
        status=IncidentStatus(status).value,
        body=body,
        actor_key=actor_key,
        at=at,
        resolves=resolves,
    )
    if resolves or changed or reopens:
        # A minor incident still open on a component leaves it degraded, not at the major outage
        # of the critical one just resolved (or made minor).
        why = "resolved" if resolves else "reopened" if reopens else "impact changed"
        await _follow_active_incidents(
            session,
            incident,
            actor_key=actor_key,
            at=at,
            reason=f"incident #{incident.id} {why}",
            raised=(raised or reopens) and not resolves,
        )
    return update


async def _follow_active_incidents(
    session: DbSession, incident: Incident, *, actor_key: str, at: datetime, reason: str, raised: bool
) -> None:
    """Each of the incident's components to what the active incidents mean for it: worse where it
    shows better than that when the impact was `raised`, else better where it shows worse. Only
    that way: a raised impact never improves what staff marked worse by hand. And an incident
    easing never ends maintenance: only staff set a component under maintenance (no impact means
    it), and only they know when the work is done."""
    # Locked before the incidents are read: of two staff resolving two incidents on one component
    # at once, the second reads after the first commits, so neither leaves it at the other's impact.
    components = await status_repo.lock_components(
        session, names=status_repo.split_names(incident.components)
    )
    still_means: dict[str, list[ComponentStatus]] = {}
    for other in await status_repo.active_incidents(session):
        for name in status_repo.split_names(other.components):
            still_means.setdefault(name, []).append(IMPACT_TO_STATUS[Impact(other.impact)])
    for component in components:
        target = worst(still_means.get(component.name, []))
        if not raised and component.status == ComponentStatus.UNDER_MAINTENANCE:
            continue
        gap = severity(target) - severity(component.status)
        if (gap > 0) if raised else (gap < 0):
            await set_component_status(
                session, component=component, status=target, actor_key=actor_key, at=at, reason=reason
            )


async def end_maintenance(
    session: DbSession, *, window: Incident, note: str, actor_key: str, at: datetime
) -> bool:
    """End a window now: one under way completes early, one not begun is cancelled. Completed,
    neither shows as coming or under way; a cancelled one keeps the hours it was booked for (the
    API says them, as Statuspage does) and, ended before it began, is in no history or clock.
    True when it was cancelled."""
    assert window.starts_at is not None and window.ends_at is not None
    cancelled = window.starts_at > at
    if not cancelled:
        window.ends_at = at
    await status_repo.add_update(
        session,
        incident=window,
        status=MaintenanceStatus.COMPLETED.value,
        body=note or ("Maintenance cancelled." if cancelled else "Maintenance completed."),
        actor_key=actor_key,
        at=at,
        resolves=True,
    )
    return cancelled


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
    """A maintenance window; its status follows the clock (`model.maintenance_status`)."""
    return await status_repo.create_maintenance(
        session,
        title=title,
        impact=MAINTENANCE_IMPACT,
        status=MaintenanceStatus.SCHEDULED.value,
        components=[c.name for c in components],
        starts_at=starts_at,
        ends_at=ends_at,
        first_update=f"Scheduled maintenance: {title}.",
        actor_key=actor_key,
        at=at,
    )
