"""The status history: the incidents and maintenance of the last days with their updates, and each
component's day-by-day record and uptime, computed from its recorded status changes.

A component's status changes are stored with their times (`ComponentStatusChange`: every
`/component set`, and every change an incident's opening or resolution makes), so the record is
exact from the moment the component was declared; before that there is no data, and the page says so
instead of claiming 100 %."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from bot.status.model import ComponentStatus, MaintenanceStatus, worst
from bot.status.workflows import postmortem_is_current
from storage import status_repo
from storage.models import ComponentStatusChange, Incident, IncidentUpdate, StatusComponent
from storage.session import DbSession

PAGE_DAYS: Final = 90
"""How far back the history page, its uptime bars and its feeds look."""

DOWN: Final = frozenset({ComponentStatus.PARTIAL_OUTAGE, ComponentStatus.MAJOR_OUTAGE})
"""What counts against uptime. Degraded performance and planned maintenance do not (as on Statuspage)."""


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An incident or maintenance window as the pages and feeds show it, its updates newest first."""

    id: int
    kind: str
    title: str
    impact: str
    status: str
    components: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    starts_at: datetime | None
    ends_at: datetime | None
    updates: tuple[IncidentUpdate, ...]
    postmortem_body: str | None = None
    postmortem_published_at: datetime | None = None
    """The postmortem of its latest resolution; None while there is none (`postmortem_is_current`)."""
    earlier_postmortem_body: str | None = None
    earlier_postmortem_published_at: datetime | None = None
    """One published before it was reopened: shown as such, after the updates that followed it."""

    @classmethod
    def of(cls, incident: Incident, updates: Mapping[int, Sequence[IncidentUpdate]]) -> IncidentView:
        assert incident.id is not None, "a stored incident"
        current = postmortem_is_current(incident)
        return cls(
            id=incident.id,
            kind=incident.kind,
            title=incident.title,
            impact=incident.impact,
            status=incident.status,
            components=tuple(status_repo.split_names(incident.components)),
            created_at=incident.created_at,
            updated_at=incident.updated_at,
            resolved_at=incident.resolved_at,
            starts_at=incident.starts_at,
            ends_at=incident.ends_at,
            updates=tuple(updates.get(incident.id, ())),
            postmortem_body=incident.postmortem_body if current else None,
            postmortem_published_at=incident.postmortem_published_at if current else None,
            earlier_postmortem_body=None if current else incident.postmortem_body,
            earlier_postmortem_published_at=None if current else incident.postmortem_published_at,
        )

    @property
    def began(self) -> datetime:
        """When it started for the people affected: a window's start, an incident's opening."""
        return self.starts_at or self.created_at

    @property
    def maintenance(self) -> bool:
        return self.kind == "maintenance"


@dataclass(frozen=True, slots=True)
class DayRecord:
    """One day of one component: the worst status it had that day (UTC), or None without data."""

    day: date
    status: str | None

    @property
    def label(self) -> str:
        when = self.day.strftime("%b %d, %Y")
        if self.status is None:
            return f"{when}: no data"
        return f"{when}: {self.status.replace('_', ' ')}"


@dataclass(frozen=True, slots=True)
class ComponentRecord:
    name: str
    group: str
    days: tuple[DayRecord, ...]
    """Oldest first, one per day of the period, today last."""
    uptime: float | None
    """The share of the observed time it was not in an outage; None when nothing was observed."""
    observed_since: datetime | None

    @property
    def uptime_text(self) -> str:
        if self.uptime is None:
            return "no data"
        # Rounded down: a minute of outage never shows as 100.00 %.
        return f"{int(self.uptime * 10_000) / 100:.2f} % uptime"


@dataclass(frozen=True, slots=True)
class History:
    start: datetime
    now: datetime
    days: int
    components: tuple[ComponentRecord, ...]
    incidents: tuple[IncidentView, ...]
    """Incidents and maintenance windows of the period, the most recently begun first."""

    @property
    def updated_at(self) -> datetime:
        return max((i.updated_at for i in self.incidents), default=self.start)


def period_start(now: datetime, days: int) -> datetime:
    """Midnight UTC `days - 1` days ago: the period is `days` whole calendar days, today included."""
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    return datetime.combine(first, time(), tzinfo=UTC)


def component_record(
    component: StatusComponent,
    *,
    changes: Sequence[ComponentStatusChange],
    windows: Sequence[tuple[datetime, datetime]],
    start: datetime,
    now: datetime,
    days: int,
) -> ComponentRecord:
    """`changes`: this component's status changes since `start`, oldest first; `windows`: its
    maintenance windows (start, end)."""
    observed = max(start, component.created_at)
    later = [c for c in changes if observed <= c.at <= now]
    # The status before the first change in the period is that change's old status; without one,
    # the status it has now held all along.
    status = later[0].old_status if later else component.status
    segments: list[tuple[datetime, datetime, str]] = []
    since = observed
    for change in later:
        segments.append((since, change.at, status))
        since, status = change.at, change.new_status
    segments.append((since, now, status))

    records = []
    for offset in range(days):
        day = start.date() + timedelta(days=offset)
        low = max(datetime.combine(day, time(), tzinfo=UTC), observed)
        high = min(datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC), now)
        if high <= low:
            records.append(DayRecord(day=day, status=None))
            continue
        seen = [s for begin, end, s in segments if begin < high and end > low]
        # Some of the day inside the window, not merely touching it: a window cancelled before it
        # began starts and ends at the same moment, and was never maintenance.
        if any(min(end, high) > max(begin, low) for begin, end in windows):
            seen.append(ComponentStatus.UNDER_MAINTENANCE)
        records.append(DayRecord(day=day, status=worst(seen).value))

    total = (now - observed).total_seconds()
    uptime = None
    if total > 0:
        down = sum((end - begin).total_seconds() for begin, end, s in segments if s in DOWN and end > begin)
        uptime = max(0.0, 1 - down / total)
    return ComponentRecord(
        name=component.name,
        group=component.group_name,
        days=tuple(records),
        uptime=uptime,
        observed_since=observed if total > 0 else None,
    )


async def read_history(session: DbSession, *, now: datetime, days: int = PAGE_DAYS) -> History:
    """Everything the history page and its feeds show, read in one session."""
    start = period_start(now, days)
    components = await status_repo.list_components(session)
    changes = await status_repo.status_changes_since(session, since=start)
    incidents = await status_repo.incidents_since(session, since=start)
    windows = [
        w
        for w in await status_repo.maintenance_windows(session, at=now, include_past=True)
        if w.starts_at is not None
        and w.ends_at is not None
        and w.starts_at <= now
        and w.ends_at > start
        # Not one cancelled before it began: no maintenance took place.
        and _window_end(w, now) > w.starts_at
    ]
    ids = [i.id for i in [*incidents, *windows] if i.id is not None]
    updates = await status_repo.updates_for(session, incident_ids=ids)

    records = []
    for component in components:
        spans = [
            (w.starts_at, _window_end(w, now))
            for w in windows
            if component.name in status_repo.split_names(w.components) and w.starts_at is not None
        ]
        records.append(
            component_record(
                component,
                changes=[c for c in changes if c.component_id == component.id],
                windows=spans,
                start=start,
                now=now,
                days=days,
            )
        )
    views = [IncidentView.of(i, updates) for i in [*incidents, *windows]]
    views.sort(key=lambda v: (v.began, v.id), reverse=True)
    return History(start=start, now=now, days=days, components=tuple(records), incidents=tuple(views))


def _window_end(window: Incident, now: datetime) -> datetime:
    """A window marked completed early ended at its last update; otherwise at its scheduled end."""
    assert window.ends_at is not None
    if window.status == MaintenanceStatus.COMPLETED:
        return min(window.updated_at, window.ends_at)
    return min(window.ends_at, now)


def by_month(incidents: Sequence[IncidentView]) -> list[tuple[str, list[IncidentView]]]:
    """Incidents grouped under "December 2026" headings, in the order given."""
    months: dict[str, list[IncidentView]] = {}
    for incident in incidents:
        months.setdefault(incident.began.strftime("%B %Y"), []).append(incident)
    return list(months.items())
