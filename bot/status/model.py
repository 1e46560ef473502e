"""The status domain's one vocabulary: component statuses, incident impacts and stages, maintenance
states, the one severity order, and the pure rules over them. Everything else imports these; the
enums' values are the strings storage keeps."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Final, Protocol


class ComponentStatus(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    UNDER_MAINTENANCE = "under_maintenance"


class Impact(StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


# What Statuspage (and our page) calls the impact of a maintenance window. Not an `Impact`: staff
# never open an incident with it, they schedule maintenance.
MAINTENANCE_IMPACT: Final = "maintenance"


class IncidentStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class MaintenanceStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


_COMPONENT_STATUSES: Final = frozenset(ComponentStatus)
_IMPACTS: Final = frozenset(Impact)

# The one order, least to most severe. Maintenance is planned, so it ranks just above operational:
# it never makes a page look worse than an outage elsewhere does, and any incident outranks it.
SEVERITY_ORDER: Final = (
    ComponentStatus.OPERATIONAL,
    ComponentStatus.UNDER_MAINTENANCE,
    ComponentStatus.DEGRADED_PERFORMANCE,
    ComponentStatus.PARTIAL_OUTAGE,
    ComponentStatus.MAJOR_OUTAGE,
)
IMPACT_ORDER: Final = (Impact.NONE, Impact.MINOR, Impact.MAJOR, Impact.CRITICAL)

# What an incident does to its components while it is open (Statuspage lets staff pick; a default
# keeps the command short, and `/component set` overrides it).
IMPACT_TO_STATUS: Final = {
    Impact.NONE: ComponentStatus.OPERATIONAL,
    Impact.MINOR: ComponentStatus.DEGRADED_PERFORMANCE,
    Impact.MAJOR: ComponentStatus.PARTIAL_OUTAGE,
    Impact.CRITICAL: ComponentStatus.MAJOR_OUTAGE,
}
# And back: the impact a component's status shows on the page (maintenance shows as none).
STATUS_TO_IMPACT: Final[dict[str, Impact]] = {status: impact for impact, status in IMPACT_TO_STATUS.items()}

# Stages staff move an open incident through (resolving is its own command).
OPEN_STAGES: Final = (IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED, IncidentStatus.MONITORING)


def severity(status: str) -> int:
    """Rank of a component status in SEVERITY_ORDER; an unknown value ranks as operational."""
    try:
        return SEVERITY_ORDER.index(ComponentStatus(status))
    except ValueError:
        return 0


def worst(statuses: Iterable[str]) -> ComponentStatus:
    """The most severe of these statuses (operational when there are none)."""
    return max(
        (ComponentStatus(s) for s in statuses if s in _COMPONENT_STATUSES),
        key=severity,
        default=ComponentStatus.OPERATIONAL,
    )


def impact_rank(impact: str) -> int:
    """Rank of an impact in IMPACT_ORDER; anything else (a maintenance window's) ranks as none."""
    try:
        return IMPACT_ORDER.index(Impact(impact))
    except ValueError:
        return 0


def worst_impact(impacts: Iterable[str]) -> Impact:
    """The most severe of these impacts (none when there are none)."""
    return max((Impact(i) for i in impacts if i in _IMPACTS), key=impact_rank, default=Impact.NONE)


def effective_status(status: str, *, in_maintenance: bool) -> str:
    """What a component shows: maintenance, unless something worse is going on."""
    if in_maintenance and status == ComponentStatus.OPERATIONAL:
        return ComponentStatus.UNDER_MAINTENANCE
    return status


class Window(Protocol):
    """What the maintenance rule reads of a window (a stored maintenance row)."""

    @property
    def status(self) -> str: ...
    @property
    def starts_at(self) -> datetime | None: ...
    @property
    def ends_at(self) -> datetime | None: ...


def maintenance_status(window: Window, at: datetime) -> MaintenanceStatus:
    """Scheduled / in progress / completed, from the clock (so nobody has to flip it by hand)."""
    assert window.starts_at is not None and window.ends_at is not None
    if window.status == MaintenanceStatus.COMPLETED or at >= window.ends_at:
        return MaintenanceStatus.COMPLETED
    return MaintenanceStatus.IN_PROGRESS if at >= window.starts_at else MaintenanceStatus.SCHEDULED
