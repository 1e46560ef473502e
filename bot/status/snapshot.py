"""The status domain's one read model: the whole status picture, read once, for chat answers,
commands and the status page."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.status.components import Known
from bot.status.model import (
    MAINTENANCE_IMPACT,
    STATUS_TO_IMPACT,
    ComponentStatus,
    Impact,
    MaintenanceStatus,
    effective_status,
    maintenance_status,
    worst,
    worst_impact,
)
from storage import status_repo
from storage.models import Incident, IncidentUpdate, StatusComponent
from storage.session import DbSession

HISTORY_DAYS = 14


@dataclass(frozen=True, slots=True)
class StatusChanges:
    """Status changes from some moment on, grouped by component, each one's oldest first: a
    component's status at a moment is a bisection away, however long the history shown (an answer
    asks it for every update of every incident, times each component)."""

    changes: Mapping[int, Sequence[status_repo.StatusMove]] = field(default_factory=dict)

    @classmethod
    def of(cls, changes: Iterable[status_repo.StatusMove]) -> StatusChanges:
        """`changes` oldest first, as `status_repo.status_moves_since` reads them."""
        grouped: dict[int, list[status_repo.StatusMove]] = {}
        for change in changes:
            grouped.setdefault(change.component_id, []).append(change)
        return cls(changes=grouped)

    def around(self, component: StatusComponent, at: datetime) -> tuple[str, str]:
        """The component's own status just before `at` and just after it (the changes made at
        `at` included). Before the first change known, the status that change left; with none
        known, the component's current status."""
        mine = self.changes.get(component.id or 0, ())
        earlier, upto = bisect_left(mine, at, key=_moment), bisect_right(mine, at, key=_moment)
        if earlier:
            before = mine[earlier - 1].new_status
        elif mine:
            before = mine[0].old_status
        else:
            before = component.status
        return before, mine[upto - 1].new_status if upto else before


def _moment(change: status_repo.StatusMove) -> datetime:
    return change.at


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Components, incidents (with their timelines) and maintenance windows at `now`.

    `load_snapshot` reads what an answer needs (the open incidents, the windows not over);
    `load_history` adds what the page shows (resolved incidents and past windows)."""

    components: Sequence[StatusComponent]
    incidents: Sequence[Incident]
    updates: dict[int, list[IncidentUpdate]]
    maintenance: Sequence[Incident]
    now: datetime
    page_url: str | None
    """Where the status page is, for links (None: no page is served)."""
    changes: StatusChanges = field(default_factory=StatusChanges)
    """Status changes from some moment on (`with_changes_for`): each says the status it left, so
    from then on a component's status at any moment is known. Only the answers that show what
    each update did to its components read them."""

    @property
    def active(self) -> list[Incident]:
        """The incidents not resolved yet, newest first."""
        return [i for i in self.incidents if i.resolved_at is None]

    def window_status(self, window: Incident) -> MaintenanceStatus:
        return maintenance_status(window, self.now)

    def in_maintenance(self, name: str) -> Incident | None:
        """The maintenance window in progress on this component, if any; of overlapping windows,
        the one that ends last (the component is in maintenance until then)."""
        windows = [
            window
            for window in self.maintenance
            if name in status_repo.split_names(window.components)
            and self.window_status(window) is MaintenanceStatus.IN_PROGRESS
        ]
        return max(windows, key=lambda w: w.ends_at or self.now, default=None)

    def status_of(self, component: StatusComponent) -> str:
        return effective_status(
            component.status, in_maintenance=self.in_maintenance(component.name) is not None
        )

    def status_around(self, component: StatusComponent, at: datetime) -> tuple[str, str]:
        """What the component showed just before `at` and just after it (the changes made at `at`
        included, as an update makes its changes at its own moment), maintenance included; from
        `changes`, so `at` must not be earlier than the first moment they cover."""
        before, after = self.changes.around(component, at)
        windows = [w for w in self.maintenance if component.name in status_repo.split_names(w.components)]
        return (
            effective_status(before, in_maintenance=any(_held(w, at, just_before=True) for w in windows)),
            effective_status(after, in_maintenance=any(_held(w, at, just_before=False) for w in windows)),
        )

    def incidents_for(self, name: str) -> list[Incident]:
        """The active incidents affecting this component."""
        return [i for i in self.active if name in status_repo.split_names(i.components)]

    def latest(self, incident: Incident) -> IncidentUpdate | None:
        timeline = self.updates.get(incident.id or 0) or []
        return timeline[0] if timeline else None

    @property
    def overall(self) -> str:
        """The headline of a chat answer."""
        overall = worst(self.status_of(c) for c in self.components)
        quiet = not self.active
        if overall is ComponentStatus.OPERATIONAL and quiet:
            return "All systems operational"
        if overall is ComponentStatus.MAJOR_OUTAGE:
            return "Major outage"
        if overall is ComponentStatus.PARTIAL_OUTAGE:
            return "Partial outage"
        if overall is ComponentStatus.UNDER_MAINTENANCE and quiet:
            return "Scheduled maintenance in progress"
        return "Some systems are having problems"

    @property
    def indicator(self) -> str:
        """Statuspage's page indicator: the worst impact of the active incidents and of the
        components' statuses, or "maintenance" when only maintenance is under way (a window in
        progress, or a component staff put under maintenance by hand)."""
        level = worst_impact(
            [i.impact for i in self.active]
            + [STATUS_TO_IMPACT.get(c.status, Impact.NONE) for c in self.components]
        )
        if level is Impact.NONE and (
            any(self.window_status(w) is MaintenanceStatus.IN_PROGRESS for w in self.maintenance)
            or any(c.status == ComponentStatus.UNDER_MAINTENANCE for c in self.components)
        ):
            return MAINTENANCE_IMPACT
        return level.value


def _held(window: Incident, at: datetime, *, just_before: bool) -> bool:
    """Whether the window was in progress at `at` (or the instant before it). One ended early ends
    when it was resolved; one cancelled before it began was resolved before its start: never held."""
    if window.starts_at is None or window.ends_at is None:
        return False
    ended = min(window.ends_at, window.resolved_at or window.ends_at)
    if just_before:
        return window.starts_at < at <= ended
    return window.starts_at <= at < ended


async def with_changes_for(session: DbSession, data: Snapshot, shown: Iterable[Incident]) -> Snapshot:
    """The snapshot with the status changes `status_around` needs for the updates of `shown` (the
    incidents and windows an answer lists): those since the earliest of them, not since the first
    window ever, as the table grows with every change and is read on every such request."""
    moments = [u.at for incident in shown for u in data.updates.get(incident.id or 0, [])]
    if not moments:
        return data
    changes = await status_repo.status_moves_since(session, since=min(moments))
    return replace(data, changes=StatusChanges.of(changes))


async def load_snapshot(
    session: DbSession,
    *,
    now: datetime,
    page_url: str | None,
    components: Sequence[StatusComponent] | None = None,
) -> Snapshot:
    """Everything a status answer needs. Pass `components` when the caller has just read them."""
    incidents, maintenance = await status_repo.open_incidents_and_maintenance(session, at=now)
    updates = await status_repo.updates_for(session, incident_ids=[i.id for i in incidents if i.id])
    return Snapshot(
        components=list(components) if components is not None else await status_repo.list_components(session),
        incidents=incidents,
        updates=updates,
        maintenance=maintenance,
        now=now,
        page_url=page_url,
    )


async def load_history(session: DbSession, *, now: datetime, page_url: str) -> Snapshot:
    """What the status page shows: also the incidents of the last HISTORY_DAYS and every window."""
    incidents = await status_repo.incidents_since(session, since=history_start(now))
    maintenance = await status_repo.maintenance_windows(session, at=now, include_past=True)
    ids = [i.id for i in [*incidents, *maintenance] if i.id is not None]
    return Snapshot(
        components=await status_repo.list_components(session),
        incidents=incidents,
        updates=await status_repo.updates_for(session, incident_ids=ids),
        maintenance=maintenance,
        now=now,
        page_url=page_url,
    )


async def known_components(session: DbSession) -> list[Known]:
    return [Known.of(c) for c in await status_repo.list_components(session)]


def history_start(now: datetime) -> datetime:
    return now - timedelta(days=HISTORY_DAYS)
