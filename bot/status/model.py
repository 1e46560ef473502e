"""The status domain's one vocabulary: component statuses, incident impacts and stages, maintenance
states, and the one severity order. Everything else imports these (storage keeps their string values)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


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


class IncidentStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class MaintenanceStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


# The one order, least to most severe. Maintenance is planned, so it ranks with operational: it
# never makes a page look worse than an outage elsewhere does.
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

# Stages staff move an open incident through (resolving is its own command).
OPEN_STAGES: Final = (IncidentStatus.INVESTIGATING, IncidentStatus.IDENTIFIED, IncidentStatus.MONITORING)


def severity(status: str) -> int:
    """Rank of a component status in SEVERITY_ORDER; an unknown value ranks as operational."""
    try:
        return SEVERITY_ORDER.index(ComponentStatus(status))
    except ValueError:
        return 0


def worst(statuses: list[str] | tuple[str, ...]) -> ComponentStatus:
    """The most severe of these statuses (operational when there are none)."""
    return max(
        (ComponentStatus(s) for s in statuses if s in ComponentStatus.__members__.values()),
        key=severity,
        default=ComponentStatus.OPERATIONAL,
    )
