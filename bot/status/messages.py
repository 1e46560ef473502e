"""How status answers, incident notices and broadcast progress read. Pure functions of the data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.core.clock import ago
from bot.core.events import TimeStyle, timestamp
from bot.status.model import ComponentStatus, Impact, IncidentStatus, MaintenanceStatus
from bot.status.snapshot import Snapshot
from storage.models import Incident, IncidentUpdate, StatusComponent
from storage.outbox_repo import Progress
from storage.status_repo import split_names

# Keyed by the enums, looked up with the stored strings (a StrEnum is its string).
STATUS_LABEL: dict[str, str] = {
    ComponentStatus.OPERATIONAL: "Operational",
    ComponentStatus.DEGRADED_PERFORMANCE: "Degraded performance",
    ComponentStatus.PARTIAL_OUTAGE: "Partial outage",
    ComponentStatus.MAJOR_OUTAGE: "Major outage",
    ComponentStatus.UNDER_MAINTENANCE: "Under maintenance",
}
IMPACT_LABEL: dict[str, str] = {
    Impact.NONE: "Notice",
    Impact.MINOR: "Minor",
    Impact.MAJOR: "Major",
    Impact.CRITICAL: "Critical",
}
OUTAGE_WORD: dict[str, str] = {
    Impact.NONE: "issue",
    Impact.MINOR: "issue",
    Impact.MAJOR: "outage",
    Impact.CRITICAL: "outage",
}


def at(moment: datetime, fmt: str = "%b %d %H:%M UTC") -> str:
    """A time each reader sees in their own zone in chat (`Nov 24, 2026 9:12 AM`); UTC in words
    (`fmt`) where the platform cannot (the console, transcripts, notifications)."""
    return timestamp(moment, TimeStyle.DATETIME, fallback=moment.strftime(fmt))


def when(moment: datetime, now: datetime) -> str:
    """`09:12 UTC (5 minutes ago)`: an absolute time everyone can compare, and how fresh it is
    (kept current by Discord and Slack; as of `now` in plain text)."""
    fmt = "%H:%M UTC" if now - moment < timedelta(days=1) else "%b %d %H:%M UTC"
    return f"{at(moment, fmt)} ({timestamp(moment, TimeStyle.RELATIVE, fallback=ago(moment, now))})"


def incident_line(incident: Incident, snapshot: Snapshot) -> str:
    latest = snapshot.latest(incident)
    impact = IMPACT_LABEL.get(incident.impact, incident.impact)
    line = f"**#{incident.id} {incident.title}** ({impact}, {incident.status})"
    if latest is not None:
        line += f"\nLatest update, {when(latest.at, snapshot.now)}: {latest.body}"
    return line


def status_overview(snapshot: Snapshot) -> tuple[str, str]:
    """`/status`: (title, text), compact: the problems first, then one line for the rest."""
    lines: list[str] = []
    for incident in snapshot.active:
        lines.append(incident_line(incident, snapshot))
    troubled = [c for c in snapshot.components if snapshot.status_of(c) != ComponentStatus.OPERATIONAL]
    for component in troubled:
        lines.append(f"- {component.name}: {STATUS_LABEL[snapshot.status_of(component)]}")
    fine = [c.name for c in snapshot.components if snapshot.status_of(c) == ComponentStatus.OPERATIONAL]
    if fine:
        lines.append(f"Operational: {', '.join(fine)}")
    upcoming = [w for w in snapshot.maintenance if snapshot.window_status(w) is MaintenanceStatus.SCHEDULED]
    for window in upcoming[:3]:
        assert window.starts_at is not None
        lines.append(f"Scheduled maintenance: {window.title} ({window.components}) at {at(window.starts_at)}")
    lines.append(page_line(snapshot.page_url))
    return snapshot.overall, "\n".join(line for line in lines if line)


def component_answer(
    component: StatusComponent, snapshot: Snapshot, *, asked: bool = False, with_page: bool = True
) -> str:
    """One component's state, as an answer to a person; `with_page`: ending with the status page's
    line (an answer about several components has one, at its end)."""
    incidents = snapshot.incidents_for(component.name)
    window = snapshot.in_maintenance(component.name)
    status = STATUS_LABEL[snapshot.status_of(component)]
    if incidents:
        incident = incidents[0]
        word = OUTAGE_WORD.get(incident.impact, "issue")
        lead = "Yes, we know about it." if asked else f"**{component.name}**: {status}."
        text = (
            f"{lead} There is an active {word} affecting **{component.name}**: "
            f"{incident_line(incident, snapshot)}"
        )
        if asked:
            text += "\nI'll tell you here when it's resolved."
    elif window is not None:
        assert window.ends_at is not None
        # A time alone reads as today's: a window that ends another day says which.
        same_day = window.ends_at.date() == snapshot.now.date()
        text = (
            f"**{component.name}** is under scheduled maintenance until "
            f"{at(window.ends_at, '%H:%M UTC' if same_day else '%b %d %H:%M UTC')}: {window.title}. "
            "Some things may be unavailable until then."
        )
    elif component.status != ComponentStatus.OPERATIONAL:
        text = f"**{component.name}**: {status}. We're on it."
    else:
        text = f"**{component.name}** is operational; we don't know of any problem right now."
        if asked:
            text += " If something is broken for you, tell me what you see and I'll bring in a person."
    return "\n".join(line for line in (text, page_line(snapshot.page_url) if with_page else "") if line)


def page_line(page_url: str | None) -> str:
    """The status page's line under an answer: none where no page is served."""
    return f"Status page: {page_url}" if page_url else ""


def _and_page(text: str, page_url: str | None) -> str:
    return f"{text} · {page_url}" if page_url else text


def incident_notice(
    incident: Incident, update: IncidentUpdate | None, *, page_url: str | None
) -> tuple[str, str]:
    """The first message of an incident in a subscribed channel: (title, text)."""
    title = f"[{IMPACT_LABEL.get(incident.impact, incident.impact)}] {incident.title}"
    body = update.body if update is not None else ""
    text = (
        f"**Status:** {incident.status} · **Affects:** {', '.join(split_names(incident.components))}\n"
        f"{body}\n{_and_page(f'Incident #{incident.id}', page_url)}"
    )
    return title, text


CARD_UPDATE_CHARS = 600


def incident_card(
    incident: Incident, timeline: Sequence[IncidentUpdate], *, page_url: str | None, now: datetime
) -> tuple[str, str]:
    """The first notice as edited after each update: the current state and the latest word."""
    state = "Resolved" if incident.status == IncidentStatus.RESOLVED else incident.status.capitalize()
    title = f"[{state}] {incident.title}"
    latest = timeline[0] if timeline else None
    lines = [
        f"**Status:** {incident.status} · **Impact:** {incident.impact} · "
        f"**Affects:** {', '.join(split_names(incident.components))}"
    ]
    if latest is not None:
        # The card is edited in place, and an edit is one message (Discord: 2,000 characters): a
        # long update is shortened here; it is posted whole in the thread.
        body = (
            latest.body
            if len(latest.body) <= CARD_UPDATE_CHARS
            else latest.body[: CARD_UPDATE_CHARS - 1] + "…"
        )
        lines.append(f"Latest ({when(latest.at, now)}): {body}")
    lines.append(_and_page(f"Incident #{incident.id} · {len(timeline)} update(s) in the thread", page_url))
    return title, "\n".join(lines)


def update_notice(incident: Incident, update: IncidentUpdate, *, reopened: bool = False) -> tuple[str, str]:
    """An update in the incident's thread; `reopened`: the first since it was resolved."""
    title = f"{'Reopened' if reopened else 'Update on'} #{incident.id}: {incident.title}"
    return title, f"**{update.status.capitalize()}**: {update.body}"


def resolved_for_customer(incident: Incident, component: str, *, page_url: str | None) -> str:
    word = OUTAGE_WORD.get(incident.impact, "issue")
    said = (
        f"Good news: the **{component}** {word} you asked about is resolved "
        f"(#{incident.id} {incident.title}). Thanks for your patience."
    )
    return f"{said} Details: {page_url}" if page_url else said


def maintenance_notice(window: Incident) -> tuple[str, str]:
    assert window.starts_at is not None and window.ends_at is not None
    title = f"[Maintenance] {window.title}"
    text = (
        f"**Affects:** {', '.join(split_names(window.components))}\n"
        f"From {at(window.starts_at)} to {at(window.ends_at)}."
    )
    return title, text


def maintenance_started_notice(window: Incident) -> tuple[str, str]:
    assert window.ends_at is not None
    title = f"[Maintenance started] {window.title}"
    return title, f"**Affects:** {', '.join(split_names(window.components))}\nUntil {at(window.ends_at)}."


def maintenance_ended_notice(window: Incident, *, cancelled: bool, note: str) -> tuple[str, str]:
    assert window.ends_at is not None
    title = f"[Maintenance {'cancelled' if cancelled else 'completed'}] {window.title}"
    text = f"**Affects:** {', '.join(split_names(window.components))}\n" + (
        "It will not take place." if cancelled else f"Ended at {at(window.ends_at)}."
    )
    return title, f"{text}\n{note}" if note else text


def progress_line(progress: Progress, *, finished: bool) -> str:
    failed = f", {progress.failed:,} failed" if progress.failed else ""
    if finished:
        return f"Broadcast finished: delivered {progress.sent:,} / {progress.total:,}{failed}."
    return f"Broadcasting: delivered {progress.sent:,} / {progress.total:,}{failed}…"
