"""Tickets and their transcripts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import String, Table, and_, bindparam, cast, func, insert, null, or_, update
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import col, select

from storage import counters_repo, dialect
from storage.models import Counter, Ticket, TicketMessage
from storage.session import DbSession, Prepared

OPEN_STATES = ("open", "claimed", "awaiting_confirmation")
_TICKETS: Table = Ticket.__table__  # type: ignore[attr-defined]


def _is_open(state: Any) -> Any:
    # Spelled out rather than IN (...): a `Prepared` statement has no expanding lists.
    return or_(*(state == open_state for open_state in OPEN_STATES))


_NEW_TICKET_COLUMNS = tuple(c.name for c in _TICKETS.columns if c.name != "id")
_MESSAGES: Table = TicketMessage.__table__  # type: ignore[attr-defined]
_LINE_COLUMNS = ("ticket_id", "kind", "text", "author_key", "author_name", "at")


def _first_line_binds() -> tuple[Any, ...]:
    """A new ticket's first transcript line, as bound parameters named apart from the ticket's."""
    return tuple(
        bindparam(f"line_{name}", type_=_MESSAGES.c[name].type)
        for name in _LINE_COLUMNS
        if name != "ticket_id"
    )


def _open_ticket_at_once() -> Prepared:
    """PostgreSQL: the ticket number, the ticket and its first line in one statement. The counter row
    stays locked from here to COMMIT (that is what keeps numbers unique across processes), so the
    fewer round trips after it, the shorter every other escalation waits; in separate statements
    this was three round trips and a reload of the row.

    The place in the queue is not counted here: the whole statement reads the snapshot taken when it
    began, before it waited for the counter, so the tickets whose escalations held the counter
    meanwhile (committed, ahead of this one) would be missing from the count."""
    counters: Table = Counter.__table__  # type: ignore[attr-defined]
    upsert = postgresql.insert(counters).values(name=bindparam("counter"), value=1)
    number = (
        upsert.on_conflict_do_update(index_elements=[counters.c.name], set_={"value": counters.c.value + 1})
        .returning(counters.c.value.label("number"))
        .cte("next_number")
    )
    columns = [name for name in _NEW_TICKET_COLUMNS if name != "number"]
    ticket = (
        insert(_TICKETS)
        .from_select(
            ["number", *columns],
            select(number.c.number, *(bindparam(name, type_=_TICKETS.c[name].type) for name in columns)),
        )
        .returning(_TICKETS.c.id, _TICKETS.c.number)
        .cte("new_ticket")
    )
    line = (
        insert(_MESSAGES)
        .from_select(list(_LINE_COLUMNS), select(ticket.c.id, *_first_line_binds()))
        .cte("first_line")
    )
    return Prepared(select(ticket.c.id, ticket.c.number).add_cte(line))


_OPEN_TICKET_AT_ONCE = _open_ticket_at_once()
# SQLite (no INSERT inside WITH): the same steps one by one, each a cheap in-process statement.
_OPEN_TICKET = Prepared(insert(_TICKETS).returning(_TICKETS.c.id), keys=_NEW_TICKET_COLUMNS)


@dataclass(frozen=True, slots=True)
class OpenedTicket:
    ticket: Ticket
    ahead: int
    """Unclaimed tickets opened before it: the customer's place in the queue."""


async def open_ticket(
    session: DbSession,
    *,
    requester_key: str,
    requester_name: str,
    platform: str,
    workspace_id: str,
    channel_id: str,
    thread_id: str | None,
    is_direct: bool,
    conversation_key: str,
    summary: str,
    reason: str,
    priority: str,
    now: datetime,
    first_response_due: datetime,
    first_line: NewLine,
    author_key: str,
    component: str | None = None,
    decision_id: int | None = None,
    first_message_id: str | None = None,
    staff_card_queued_at: datetime | None = None,
) -> OpenedTicket:
    """A new ticket with the next number, its first transcript line (`first_line`, said by
    `author_key`) and its place in the queue. `staff_card_queued_at`: when the caller decided to
    post its staff card (see `Ticket.staff_card_queued_at`), written with it rather than after."""
    # Built first, so every column the call does not name gets the model's own default.
    ticket = Ticket(
        number=0,  # the counter's, below
        state="open",
        priority=priority,
        summary=summary,
        reason=reason,
        requester_key=requester_key,
        requester_name=requester_name,
        platform=platform,
        workspace_id=workspace_id,
        channel_id=channel_id,
        thread_id=thread_id,
        first_message_id=first_message_id,
        is_direct=is_direct,
        conversation_key=conversation_key,
        component=component,
        decision_id=decision_id,
        created_at=now,
        updated_at=now,
        first_response_due=first_response_due,
        staff_card_queued_at=staff_card_queued_at,
    )
    values = {name: getattr(ticket, name) for name in _NEW_TICKET_COLUMNS if name != "number"}
    line = {
        "kind": first_line.kind,
        "text": first_line.text,
        "author_key": author_key,
        "author_name": first_line.author_name[:200],
        "at": first_line.at,
    }
    if dialect.name(session) == "postgresql":
        params = {"counter": "ticket", **values, **{f"line_{name}": value for name, value in line.items()}}
        ((ticket_id, number),) = await _OPEN_TICKET_AT_ONCE.rows(session, params)
    else:
        number = await counters_repo.next_value(session, name="ticket")
        ((ticket_id,),) = await _OPEN_TICKET.rows(session, {**values, "number": number})
        await _ADD_MESSAGE.rows(session, {"ticket_id": ticket_id, **line})
    # A statement of its own, after the number: it sees every ticket numbered before this one.
    ((ahead,),) = await _UNCLAIMED_AHEAD.rows(session, {"ticket_id": ticket_id})
    ticket.id, ticket.number = ticket_id, number
    # Known in full from what was written: joined to the session as if loaded, without reading it back.
    make_transient_to_detached(ticket)
    session.add(ticket)
    return OpenedTicket(ticket, int(ahead))


_BY_NUMBER = select(Ticket).where(Ticket.number == bindparam("number"))
_BY_NUMBER_LOCKED = _BY_NUMBER.with_for_update().execution_options(populate_existing=True)


async def get_by_number(session: DbSession, *, number: int, for_update: bool = False) -> Ticket | None:
    """`for_update` locks the row until the transaction ends (PostgreSQL; SQLite has one writer
    anyway) and reads its latest committed state, so two processes changing one ticket at once take
    turns and the second sees what the first did."""
    statement = _BY_NUMBER_LOCKED if for_update else _BY_NUMBER
    result = await session.execute(statement, {"number": number})
    ticket: Ticket | None = result.scalar_one_or_none()
    return ticket


_BY_ID_LOCKED = (
    select(Ticket)
    .where(Ticket.id == bindparam("ticket_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def get_by_id(session: DbSession, *, ticket_id: int, for_update: bool = False) -> Ticket | None:
    """`for_update` as for `get_by_number`."""
    if for_update:
        result = await session.execute(_BY_ID_LOCKED, {"ticket_id": ticket_id})
        locked: Ticket | None = result.scalar_one_or_none()
        return locked
    ticket: Ticket | None = await session.get(Ticket, ticket_id)
    return ticket


async def lock_conversation(session: DbSession, *, conversation_key: str) -> None:
    """Serialise ticket creation per conversation until this transaction ends (PostgreSQL advisory
    lock; SQLite has a single writer, so there is nothing to do)."""
    if dialect.name(session) == "postgresql":
        await session.execute(
            sql_text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": conversation_key}
        )


# The statements below run on every ticket event or escalation: built once, with bound parameters,
# because building a statement (and its cache key) cost more than running it.
_OPEN_IN_CONVERSATION = (
    select(Ticket)
    .where(Ticket.conversation_key == bindparam("conversation_key"), col(Ticket.state).in_(OPEN_STATES))
    .order_by(col(Ticket.id).desc())
    .limit(1)
)


_ANY_OPEN_IN_CONVERSATION = Prepared(
    select(_TICKETS.c.id)
    .where(_TICKETS.c.conversation_key == bindparam("conversation_key"), _is_open(_TICKETS.c.state))
    .limit(1),
    kind="read",
)


async def open_in_conversation(session: DbSession, *, conversation_key: str) -> Ticket | None:
    """The ticket a person is holding in this conversation (thread or DM), if any."""
    params = {"conversation_key": conversation_key}
    if not await _ANY_OPEN_IN_CONVERSATION.rows(session, params):
        return None  # the usual case (a new thread): answered without loading anything
    result = await session.execute(_OPEN_IN_CONVERSATION, params)
    return result.scalar_one_or_none()


def _held_or_reopenable(*columns: Any) -> Any:
    # A ticket closed for lack of an answer reopens only while it is the conversation's newest: once
    # a later ticket there has been closed (say, confirmed solved), the old one stays closed.
    newest = (
        select(func.max(_TICKETS.c.id))
        .where(_TICKETS.c.conversation_key == bindparam("conversation_key"))
        .scalar_subquery()
    )
    return (
        select(*columns)
        .where(
            col(Ticket.conversation_key) == bindparam("conversation_key"),
            or_(
                _is_open(Ticket.state),
                and_(
                    col(Ticket.state) == "closed",
                    col(Ticket.closed_how) == "no_answer",
                    col(Ticket.closed_at) >= bindparam("closed_since"),
                    col(Ticket.id) == newest,
                ),
            ),
        )
        .order_by(col(Ticket.id).desc())
        .limit(1)
    )


# Asked for every message (the held-ticket guard): built once. Nearly every conversation holds no
# ticket, so a one-column Core query answers first (about half the cost of loading through the ORM);
# only when it finds one is the ticket loaded, locked and checked again.
_ANY_HELD = Prepared(_held_or_reopenable(_TICKETS.c.id), kind="read")
_HELD_LOCKED = (
    _held_or_reopenable(Ticket)
    # The handler changes what it finds (relays, reopens): lock the row so a close or claim in
    # another process waits, and read it as that one left it (PostgreSQL; SQLite has one writer).
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def held_or_reopenable(
    session: DbSession, *, conversation_key: str, closed_since: datetime
) -> Ticket | None:
    """The open ticket in this conversation, else one closed there for lack of an answer since
    `closed_since` (a reply reopens it)."""
    params = {"conversation_key": conversation_key, "closed_since": closed_since}
    if not await _ANY_HELD.rows(session, params):
        return None
    result = await session.execute(_HELD_LOCKED, params)
    return result.scalar_one_or_none()


# A Core UPDATE on the table: the ORM-enabled `update(Ticket)` also works out which loaded objects to
# refresh, which cost three times the statement here, where none is loaded.
_STAFF_THREAD_ROW = (
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("ticket_id"))
    .values(
        staff_platform=bindparam("to_platform"),
        staff_channel_id=bindparam("to_channel"),
        staff_thread_id=bindparam("to_thread"),
        staff_card_queued_at=null(),  # noted: no longer on its way
    )
)
# Nobody reads it back in the transaction that records it (after an escalation's posts): it waits
# for the claim's clearing and goes with it, whatever that finds.
_SET_STAFF_THREAD = Prepared(_STAFF_THREAD_ROW, kind="deferred", if_last=_STAFF_THREAD_ROW)


async def set_staff_thread(
    session: DbSession, *, ticket_id: int, platform: str, channel_id: str, thread_id: str
) -> None:
    """Remember where the team discusses a ticket, its card no longer on its way. One UPDATE: it runs
    after every staff card, and loading the ticket first only to change its columns cost a query more."""
    await _SET_STAFF_THREAD.rows(
        session,
        {"ticket_id": ticket_id, "to_platform": platform, "to_channel": channel_id, "to_thread": thread_id},
    )


_CARD_ON_ITS_WAY = Prepared(
    select(_TICKETS.c.id)
    .where(
        or_(
            _TICKETS.c.staff_card_queued_at >= bindparam("since"),
            and_(
                _TICKETS.c.staff_platform == bindparam("platform"),
                _TICKETS.c.staff_channel_id == bindparam("channel_id"),
                _TICKETS.c.staff_thread_id == bindparam("thread_id"),
            ),
        )
    )
    .limit(1),
    kind="read",
)


async def card_on_its_way(
    session: DbSession, *, since: datetime, platform: str, channel_id: str, thread_id: str
) -> bool:
    """Whether a staff card decided on since `since` has its thread still not noted (committed, so
    by any process), or was noted at this thread after `by_staff_thread` found none there: one
    statement, so one moment. At READ COMMITTED each statement sees the latest commits, and a note
    (which clears the mark) committed between that lookup and a read of the mark alone was seen by
    neither: the answer under that card was dropped as talk. Two ranges of indexes, nearly always
    empty."""
    where = {"platform": platform, "channel_id": channel_id, "thread_id": thread_id}
    return bool(await _CARD_ON_ITS_WAY.rows(session, {"since": since, **where}))


async def by_staff_thread(
    session: DbSession, *, platform: str, channel_id: str, thread_id: str
) -> Ticket | None:
    """The ticket discussed in this staff thread, locked like `held_or_reopenable` (a reply changes it)."""
    result = await session.execute(
        select(Ticket)
        .where(
            Ticket.staff_platform == platform,
            Ticket.staff_channel_id == channel_id,
            Ticket.staff_thread_id == thread_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def open_from_message(
    session: DbSession, *, platform: str, channel_id: str, message_id: str
) -> Ticket | None:
    """The open ticket opened from this message (see `Ticket.first_message_id`), if any."""
    result = await session.execute(
        select(Ticket).where(
            Ticket.platform == platform,
            Ticket.channel_id == channel_id,
            Ticket.first_message_id == message_id,
            col(Ticket.state).in_(OPEN_STATES),
        )
    )
    return result.scalars().first()


_OPEN_FOR_REQUESTER = (
    select(Ticket)
    .where(Ticket.requester_key == bindparam("requester_key"), col(Ticket.state).in_(OPEN_STATES))
    .order_by(col(Ticket.number))
)


async def open_for_requester(session: DbSession, *, requester_key: str) -> Sequence[Ticket]:
    result = await session.execute(_OPEN_FOR_REQUESTER, {"requester_key": requester_key})
    return result.scalars().all()


# Whoever holds a ticket is its assignee in every open state: a claim, a staff answer or a close
# question sets it, and a reopened ticket keeps it (state "claimed").
_HELD_BY = (
    select(Ticket)
    .where(Ticket.assignee_key == bindparam("assignee_key"), col(Ticket.state).in_(OPEN_STATES))
    .order_by(col(Ticket.first_response_due), col(Ticket.number))
)


async def held_by(session: DbSession, *, assignee_key: str) -> Sequence[Ticket]:
    """The open tickets this team member holds, earliest first-response target first (as the queue)."""
    result = await session.execute(_HELD_BY, {"assignee_key": assignee_key})
    return result.scalars().all()


async def open_queue(session: DbSession, *, limit: int = 25) -> Sequence[Ticket]:
    result = await session.execute(
        select(Ticket)
        .where(col(Ticket.state).in_(OPEN_STATES))
        .order_by(col(Ticket.first_response_due))
        .limit(limit)
    )
    return result.scalars().all()


@dataclass(frozen=True, slots=True)
class OpenCounts:
    by_state: dict[str, int]
    past_target: int
    """Still waiting for a first response, and marked past its target by the ticket clocks."""


async def open_counts(session: DbSession) -> OpenCounts:
    """How many tickets are open, by state, and how many of them wait past their target."""
    result = await session.execute(
        select(Ticket.state, func.count()).where(col(Ticket.state).in_(OPEN_STATES)).group_by(Ticket.state)
    )
    by_state: Sequence[Any] = result.all()  # (state, count)
    late = await session.execute(
        select(func.count())
        .select_from(_TICKETS)
        .where(
            _TICKETS.c.state == "open",
            _TICKETS.c.breached == True,  # noqa: E712
            _TICKETS.c.first_responded_at.is_(None),
        )
    )
    return OpenCounts(
        by_state={str(state): int(n) for state, n in by_state}, past_target=int(late.scalar_one())
    )


_UNCLAIMED_AHEAD = Prepared(
    select(func.count())
    .select_from(_TICKETS)
    .where(_TICKETS.c.state == "open", _TICKETS.c.id < bindparam("ticket_id")),
    kind="read",
)


async def unclaimed_ahead_of(session: DbSession, *, ticket: Ticket) -> int:
    """How many unclaimed tickets were opened before this one: the customer's place in the queue."""
    ((ahead,),) = await _UNCLAIMED_AHEAD.rows(session, {"ticket_id": ticket.id})
    return int(ahead)


# Transcript lines are written on most ticket events: a Core INSERT built once, as no caller needs
# the row back (the ORM's build-add-flush cost four times the statement).
_ADD_MESSAGE = Prepared(
    insert(_MESSAGES), keys=("ticket_id", "kind", "text", "author_key", "author_name", "at")
)


_ADD_MESSAGE_WITH_ID = Prepared(
    insert(_MESSAGES).returning(_MESSAGES.c.id),
    keys=("ticket_id", "kind", "text", "author_key", "author_name", "at"),
)


async def add_message(
    session: DbSession,
    *,
    ticket: Ticket,
    kind: str,
    text: str,
    author_key: str = "",
    author_name: str = "",
    at: datetime,
    with_id: bool = False,
) -> int | None:
    """Write a line of the transcript; with `with_id`, its id (for a caller that changes it later)."""
    rows = await (_ADD_MESSAGE_WITH_ID if with_id else _ADD_MESSAGE).rows(
        session,
        {
            "ticket_id": ticket.id,
            "kind": kind,
            "text": text,
            "author_key": author_key,
            "author_name": author_name[:200],
            "at": at,
        },
    )
    ticket.updated_at = at
    return int(rows[0][0]) if with_id else None


UNSENT_STAFF: Final = "staff_unsent"
"""The kind of a team member's answer that never reached the customer (their DMs closed, the bot not
allowed where the ticket lives): kept in the transcript, but no `staff` line, so no response."""


async def answer_reached_customer(
    session: DbSession, *, ticket_id: int, at: datetime, by_key: str = "", by_name: str = ""
) -> None:
    """The customer got the team's first word at `at` (an answer, or the notice that someone has the
    ticket): it stops the first-response clock; an answer's writer (`by_key`) takes the ticket if
    nobody holds it yet. Nothing changes for a ticket answered before."""
    await session.execute(
        update(_TICKETS)
        .where(_TICKETS.c.id == ticket_id, _TICKETS.c.first_responded_at.is_(None))
        .values(first_responded_at=at)
    )
    if by_key:
        await session.execute(
            update(_TICKETS)
            .where(_TICKETS.c.id == ticket_id, _TICKETS.c.state == "open")
            .values(state="claimed", assignee_key=by_key, assignee_name=by_name[:200])
        )


async def answer_not_delivered(session: DbSession, *, line_id: int) -> None:
    """A team member's answer (its transcript line) could not reach the customer."""
    await session.execute(
        update(_MESSAGES)
        .where(_MESSAGES.c.id == line_id, _MESSAGES.c.kind == "staff")
        .values(kind=UNSENT_STAFF)
    )


class TranscriptLine(Protocol):
    """A stored line or a just-written `NewLine`: read-only, so frozen dataclasses satisfy it."""

    @property
    def kind(self) -> str: ...
    @property
    def author_name(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class NewLine:
    """A transcript line just written, for a caller that needs it back without reading it."""

    kind: str
    text: str
    author_name: str
    at: datetime


_LAST_LINES = (
    select(_MESSAGES.c.kind, _MESSAGES.c.author_name, _MESSAGES.c.text, _MESSAGES.c.at)
    .where(_MESSAGES.c.ticket_id == bindparam("ticket_id"))
    .order_by(_MESSAGES.c.id.desc())
    .limit(bindparam("limit"))
)


async def transcript(session: DbSession, *, ticket: Ticket, limit: int = 1000) -> list[TranscriptLine]:
    """The ticket's last `limit` transcript lines, oldest first."""
    result = await session.execute(_LAST_LINES, {"ticket_id": ticket.id, "limit": limit})
    return list(reversed(result.all()))


async def due_for_breach(
    session: DbSession, *, now: datetime, limit: int = 100, after: tuple[datetime, int] | None = None
) -> Sequence[Ticket]:
    """Unclaimed tickets past their first-response target, not yet marked, in target order; `after`
    (the last one's target and id) pages on, so tickets the caller skips (paused by maintenance)
    never hide the ones behind them. Locked so that two bot processes never re-escalate the same
    ticket twice (PostgreSQL; SQLite has one writer anyway)."""
    statement = select(Ticket).where(
        Ticket.state == "open",
        Ticket.breached == False,  # noqa: E712
        col(Ticket.first_responded_at).is_(None),
        col(Ticket.first_response_due) <= now,
    )
    if after is not None:
        due, ticket_id = after
        statement = statement.where(
            or_(
                col(Ticket.first_response_due) > due,
                and_(col(Ticket.first_response_due) == due, col(Ticket.id) > ticket_id),
            )
        )
    statement = (
        statement.order_by(col(Ticket.first_response_due), col(Ticket.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(statement)).scalars().all()


async def unconfirmed_since(session: DbSession, *, before: datetime, limit: int = 100) -> Sequence[Ticket]:
    """Tickets whose customer has not answered "Did this solve it?" since `before`."""
    statement = (
        select(Ticket)
        .where(Ticket.state == "awaiting_confirmation", col(Ticket.close_requested_at) <= before)
        .order_by(col(Ticket.close_requested_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(statement)).scalars().all()


async def suggest_open(
    session: DbSession, *, typed: str, requester_key: str | None = None, limit: int = 25
) -> Sequence[Ticket]:
    """Open tickets for an autocomplete: a requester's own (or, with None, the whole queue, oldest
    first-response target first), whose number starts with `typed` digits or whose summary contains
    `typed` words."""
    statement = select(Ticket).where(col(Ticket.state).in_(OPEN_STATES))
    if requester_key is not None:
        statement = statement.where(Ticket.requester_key == requester_key)
    wanted = typed.strip().removeprefix("#").strip()
    if wanted.isdigit():
        statement = statement.where(cast(Ticket.number, String).startswith(wanted, autoescape=True))
    elif wanted:
        statement = statement.where(col(Ticket.summary).icontains(wanted, autoescape=True))
    order = col(Ticket.number) if requester_key is not None else col(Ticket.first_response_due)
    return (await session.execute(statement.order_by(order).limit(limit))).scalars().all()
