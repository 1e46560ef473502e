"""What the reports read: a window's questions, tickets, first replies, reopenings and the questions
asked about incidents, as plain rows (the figures are computed from them in `bot/insights`).

Every query is a plain SELECT over an interval `(start, end]` that runs the same on SQLite and
PostgreSQL; percentiles and shares are computed in Python over the rows, not in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, distinct, func, or_
from sqlalchemy import select as sa_select

from storage.models import Incident, IncidentLink, KBDecision, Ticket, TicketMessage
from storage.session import DbSession
from storage.types import UTCDateTime

_DECISIONS: Table = KBDecision.__table__  # type: ignore[attr-defined]
_TICKETS: Table = Ticket.__table__  # type: ignore[attr-defined]
_MESSAGES: Table = TicketMessage.__table__  # type: ignore[attr-defined]
_INCIDENTS: Table = Incident.__table__  # type: ignore[attr-defined]
_LINKS: Table = IncidentLink.__table__  # type: ignore[attr-defined]

REOPENED_PREFIX = "Reopened:"
"""How a reopening is written in a ticket's transcript (a `system` line, bot/handlers/tickets.py)."""
_IN_CHUNK = 500  # ids per IN list: far below both databases' limits on bound parameters


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """A customer's question and what became of it, without its text."""

    id: int
    at: datetime
    actor_key: str
    platform: str
    conversation_key: str
    band: str
    top_entry_id: str | None
    outcome: str
    reason: str | None
    ticket_id: int | None


@dataclass(frozen=True, slots=True)
class TicketRow:
    """A ticket, without the requester's name or words. `decision_*` describe the question that
    opened it, when a question did (None for a ticket asked for in words, a command or a 🎫)."""

    id: int
    created_at: datetime
    priority: str
    reason: str
    platform: str
    requester_key: str
    conversation_key: str
    state: str
    first_response_due: datetime
    closed_at: datetime | None
    closed_how: str | None
    rating: int | None
    decision_id: int | None
    decision_band: str | None
    decision_top_entry_id: str | None
    decision_outcome: str | None


@dataclass(frozen=True, slots=True)
class IncidentQuestion:
    """Someone asked about an incident's component while it was on (one row per person and channel)."""

    incident_id: int
    title: str
    impact: str
    opened_at: datetime
    resolved_at: datetime | None
    actor_key: str
    asked_at: datetime


_DECISION_COLUMNS = (
    _DECISIONS.c.id,
    _DECISIONS.c.at,
    _DECISIONS.c.actor_key,
    _DECISIONS.c.platform,
    _DECISIONS.c.conversation_key,
    _DECISIONS.c.band,
    _DECISIONS.c.top_entry_id,
    _DECISIONS.c.outcome,
    _DECISIONS.c.reason,
    _DECISIONS.c.ticket_id,
)


async def decisions(session: DbSession, *, start: datetime, end: datetime) -> list[DecisionRow]:
    """Customers' questions asked in `(start, end]`, oldest first (staff trying the bot are left out)."""
    result = await session.execute(
        sa_select(*_DECISION_COLUMNS)
        .where(
            _DECISIONS.c.at > start,
            _DECISIONS.c.at <= end,
            _DECISIONS.c.by_staff == False,  # noqa: E712
        )
        .order_by(_DECISIONS.c.at, _DECISIONS.c.id)
    )
    return [DecisionRow(*tuple(row)) for row in result.all()]


async def answered_recently(
    session: DbSession, *, since: datetime, outcomes: Sequence[str], picked_prefix: str, limit: int
) -> list[DecisionRow]:
    """Customers' questions since `since` the bot answered with an article (an outcome in
    `outcomes`, or a pick: `picked_prefix` + article), newest first, at most `limit`: what a
    lesson's replay asks again to see which it would take away from other articles."""
    result = await session.execute(
        sa_select(*_DECISION_COLUMNS)
        .where(
            _DECISIONS.c.at > since,
            _DECISIONS.c.by_staff == False,  # noqa: E712
            or_(_DECISIONS.c.outcome.in_(list(outcomes)), _DECISIONS.c.outcome.startswith(picked_prefix)),
        )
        .order_by(_DECISIONS.c.at.desc(), _DECISIONS.c.id.desc())
        .limit(limit)
    )
    return [DecisionRow(*tuple(row)) for row in result.all()]


async def question_texts(session: DbSession, *, decision_ids: Sequence[int]) -> dict[int, str]:
    """The words of these questions (only those a report quotes or clusters: the text is the
    heaviest column)."""
    found: dict[int, str] = {}
    ids = list(dict.fromkeys(decision_ids))
    for first in range(0, len(ids), _IN_CHUNK):
        result = await session.execute(
            sa_select(_DECISIONS.c.id, _DECISIONS.c.question).where(
                _DECISIONS.c.id.in_(ids[first : first + _IN_CHUNK])
            )
        )
        rows: Sequence[Any] = result.all()  # (id, question)
        found.update((int(row[0]), str(row[1])) for row in rows)
    return found


def _ticket_select() -> Select[Any]:
    return sa_select(
        _TICKETS.c.id,
        _TICKETS.c.created_at,
        _TICKETS.c.priority,
        _TICKETS.c.reason,
        _TICKETS.c.platform,
        _TICKETS.c.requester_key,
        _TICKETS.c.conversation_key,
        _TICKETS.c.state,
        _TICKETS.c.first_response_due,
        _TICKETS.c.closed_at,
        _TICKETS.c.closed_how,
        _TICKETS.c.rating,
        _TICKETS.c.decision_id,
        _DECISIONS.c.band,
        _DECISIONS.c.top_entry_id,
        _DECISIONS.c.outcome,
    ).select_from(_TICKETS.outerjoin(_DECISIONS, _DECISIONS.c.id == _TICKETS.c.decision_id))


async def tickets_opened(session: DbSession, *, start: datetime, end: datetime) -> list[TicketRow]:
    """Tickets opened in `(start, end]`, oldest first."""
    statement = _ticket_select().where(_TICKETS.c.created_at > start, _TICKETS.c.created_at <= end)
    result = await session.execute(statement.order_by(_TICKETS.c.created_at, _TICKETS.c.id))
    return [TicketRow(*tuple(row)) for row in result.all()]


async def tickets_closed(session: DbSession, *, start: datetime, end: datetime) -> list[TicketRow]:
    """Tickets closed in `(start, end]` and still closed (a reopening clears the close)."""
    statement = _ticket_select().where(
        _TICKETS.c.state == "closed", _TICKETS.c.closed_at > start, _TICKETS.c.closed_at <= end
    )
    result = await session.execute(statement.order_by(_TICKETS.c.closed_at, _TICKETS.c.id))
    return [TicketRow(*tuple(row)) for row in result.all()]


async def first_staff_replies(session: DbSession, *, start: datetime, end: datetime) -> dict[int, datetime]:
    """For tickets opened in `(start, end]`: when a person of the team first wrote to the customer
    (a `staff` line of the transcript). The bot's own lines (`bot`, `system`: a claim notice, a
    reminder) and internal notes are not a response."""
    result = await session.execute(
        sa_select(_MESSAGES.c.ticket_id, func.min(_MESSAGES.c.at))
        .select_from(_MESSAGES.join(_TICKETS, _TICKETS.c.id == _MESSAGES.c.ticket_id))
        .where(
            _MESSAGES.c.kind == "staff",
            _TICKETS.c.created_at > start,
            _TICKETS.c.created_at <= end,
        )
        .group_by(_MESSAGES.c.ticket_id)
    )
    rows: Sequence[Any] = result.all()  # (ticket id, first reply)
    return {int(row[0]): _as_utc(row[1]) for row in rows}


async def reopened(session: DbSession, *, start: datetime, end: datetime) -> int:
    """How many tickets were reopened in `(start, end]` (each once, however often)."""
    result = await session.execute(
        sa_select(func.count(distinct(_MESSAGES.c.ticket_id))).where(
            _MESSAGES.c.kind == "system",
            _MESSAGES.c.text.like(f"{REOPENED_PREFIX}%"),
            _MESSAGES.c.at > start,
            _MESSAGES.c.at <= end,
        )
    )
    return int(result.scalar_one() or 0)


async def incident_questions(session: DbSession, *, start: datetime, end: datetime) -> list[IncidentQuestion]:
    """Who asked about which incident in `(start, end]` (maintenance windows are not incidents)."""
    result = await session.execute(
        sa_select(
            _INCIDENTS.c.id,
            _INCIDENTS.c.title,
            _INCIDENTS.c.impact,
            _INCIDENTS.c.created_at,
            _INCIDENTS.c.resolved_at,
            _LINKS.c.actor_key,
            _LINKS.c.created_at,
        )
        .select_from(_LINKS.join(_INCIDENTS, _INCIDENTS.c.id == _LINKS.c.incident_id))
        .where(
            _INCIDENTS.c.kind == "incident",
            _LINKS.c.created_at > start,
            _LINKS.c.created_at <= end,
        )
        .order_by(_INCIDENTS.c.created_at, _INCIDENTS.c.id, _LINKS.c.created_at)
    )
    return [IncidentQuestion(*tuple(row)) for row in result.all()]


async def incidents_during(session: DbSession, *, start: datetime, end: datetime) -> int:
    """Incidents that were on at some point in `(start, end]`, asked about or not."""
    result = await session.execute(
        sa_select(func.count()).where(
            _INCIDENTS.c.kind == "incident",
            _INCIDENTS.c.created_at <= end,
            or_(_INCIDENTS.c.resolved_at.is_(None), _INCIDENTS.c.resolved_at > start),
        )
    )
    return int(result.scalar_one() or 0)


def _as_utc(value: datetime) -> datetime:
    """An aggregate's datetime: MIN() over a UTC column comes back without the column's type on
    SQLite (a string) and naive or aware on PostgreSQL."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    processed = UTCDateTime().process_result_value(value, None)
    assert processed is not None
    return processed
