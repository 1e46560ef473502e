"""Privacy requests in storage: every row about one person found, erased; old people's text purged.

A person is their actor key, `platform:user_id` (`slack:U0123ABCD`). These columns identify one
(`PERSON`, with the display name beside it as `NAME`):

- `audit_log.actor_key`: who did or tried something;
- `tickets.requester_key` / `requester_name` (who opened it), `assignee_key` / `assignee_name` (the
  team member holding it);
- `ticket_messages.author_key` / `author_name`: who wrote a transcript line;
- `kb_decisions.actor_key`: who asked the question;
- `status_subscriptions.created_by`, `status_incident_links.actor_key` (a customer told when an incident
  resolves), and the team's `status_component_history.actor_key`, `status_incidents.created_by`,
  `status_incident_updates.actor_key`; `inbox.person`, who sent a request not yet handled (its
  `body` holds their words, and is deleted with it); `processed_events.owed`, replies not yet
  posted (dropped when they are to, or about, the person, or go to one of their tickets), and
  `processed_events.work`, work not yet done after its event's commit (dropped with them; a
  lesson still to be written that holds their questions, and a reply to others quoting them, are
  rewritten without them by the caller, `still_owed`, `rewrite_still_owed`: only it knows how
  those hold a person's words).

Their words: `tickets.summary` of the tickets they opened, `ticket_messages.text` of the lines they
wrote, `kb_decisions.question`, and `audit_log.detail` of their rows (a refused command's text, a
staff action's arguments). Other free text (`WORDS`) may mention them by name or id. `PLACE`
columns say where (channel, thread, conversation ids): a place, not a person, so they are kept
unless they literally contain the person's id. `CODE` columns hold the bot's own values (states,
kinds, lanes, JSON of entry ids) and never a person. `COLUMNS` classifies every text column of every
table; a test checks that none is left out, so a new column gets a decision.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import (
    Column,
    ColumnElement,
    String,
    Table,
    TypeDecorator,
    and_,
    delete,
    false,
    or_,
    select,
    update,
)
from sqlmodel import SQLModel

from storage import outbox_repo
from storage.session import DbSession

OPEN_STATES: Final = ("open", "claimed", "awaiting_confirmation")
ERASED_REASON: Final = "erased at the person's request"  # why a DM subscription stopped


class Kind(StrEnum):
    PERSON = "person"  # an actor key
    NAME = "name"  # a display name, beside its PERSON column
    WORDS = "words"  # free text people or the team wrote
    PLACE = "place"  # a platform, workspace, channel, thread or message id, or a key made of them
    CODE = "code"  # the bot's own values: states, kinds, reasons, lanes, JSON of entry ids


P, N, W, L, C = Kind.PERSON, Kind.NAME, Kind.WORDS, Kind.PLACE, Kind.CODE
COLUMNS: Final[Mapping[str, Mapping[str, Kind]]] = {
    "processed_events": {"platform": C, "event_id": C, "owed": W, "work": W},
    "audit_log": {"actor_key": P, "action": C, "detail": W},
    "counters": {"name": C},
    "tickets": {
        "state": C,
        "priority": C,
        "summary": W,
        "reason": C,
        "requester_key": P,
        "requester_name": N,
        "platform": C,
        "workspace_id": L,
        "channel_id": L,
        "thread_id": L,
        "conversation_key": L,
        "first_message_id": L,
        "staff_platform": C,
        "staff_channel_id": L,
        "staff_thread_id": L,
        "assignee_key": P,
        "assignee_name": N,
        "component": C,
        "close_reason": W,
        "closed_how": C,
    },
    "ticket_messages": {"kind": C, "author_key": P, "author_name": N, "text": W},
    "kb_decisions": {
        "actor_key": P,
        "platform": C,
        "conversation_key": L,
        "question": W,
        "files": W,  # the files asked with (names, links): erased and purged with the question
        "band": C,
        "candidates": C,
        "top_entry_id": C,
        "outcome": C,
        "reason": C,
    },
    "status_components": {"name": C, "aliases": C, "group_name": C, "description": W, "status": C},
    "status_component_history": {"old_status": C, "new_status": C, "actor_key": P, "reason": W},
    "status_incidents": {
        "kind": C,
        "title": W,
        "impact": C,
        "status": C,
        "components": C,
        "created_by": P,
        "postmortem_body": W,
    },
    "status_incident_updates": {"status": C, "body": W, "actor_key": P},
    "status_subscriptions": {
        "platform": C,
        "workspace_id": L,
        "channel_id": L,
        "components": C,
        "disabled_reason": W,
        "created_by": P,
    },
    "status_incident_links": {
        "conversation_key": L,
        "platform": C,
        "workspace_id": L,
        "channel_id": L,
        "thread_id": L,
        "actor_key": P,
        "component": C,
    },
    "status_broadcasts": {
        "kind": C,
        "progress_platform": C,
        "progress_workspace_id": L,
        "progress_channel_id": L,
        "progress_message_id": L,
    },
    "status_outbox": {
        "key": C,
        "kind": C,
        "lane": C,
        "platform": C,
        "workspace_id": L,
        "channel_id": L,
        "thread_id": L,
        "title": W,
        "body": W,
        "state": C,
        "lease_owner": C,
        "sent_message_id": L,
        "error": W,
    },
    "status_incident_threads": {"message_id": L},
    "status_lanes": {"lane": C, "owner": C},
    "inbox": {"platform": C, "kind": C, "person": P, "body": W},
    "discord_gateway_sessions": {"session_id": C, "resume_url": C, "owner": C},
}
del P, N, W, L, C

# (table, PERSON column) -> the NAME column beside it, and the columns that hold that person's words.
_NAME_BESIDE: Final = {
    ("tickets", "requester_key"): "requester_name",
    ("tickets", "assignee_key"): "assignee_name",
    ("ticket_messages", "author_key"): "author_name",
}
_WORDS_OF: Final = {
    ("tickets", "requester_key"): ("summary",),
    ("ticket_messages", "author_key"): ("text",),
    ("kb_decisions", "actor_key"): ("question", "files"),
    ("audit_log", "actor_key"): ("detail",),
}
# A bare user id shorter than this is too likely to be an ordinary word ("you" on the console) to be
# replaced in free text; the whole key always is.
MIN_BARE_ID: Final = 4


def table(name: str) -> Table:
    found: Table = SQLModel.metadata.tables[name]
    return found


def is_text(column: Column[Any]) -> bool:
    """A String or Text column, also as sqlmodel declares a `str` field (AutoString wraps String)."""
    kind = column.type
    return isinstance(kind, String) or (
        isinstance(kind, TypeDecorator) and isinstance(kind.impl_instance, String)
    )


def text_columns() -> dict[str, list[str]]:
    """Every String/Text column of every table, as the metadata declares them."""
    return {
        name: [column.name for column in found.columns if is_text(column)]
        for name, found in SQLModel.metadata.tables.items()
    }


def person_columns() -> list[tuple[str, str]]:
    return [
        (name, column)
        for name, kinds in COLUMNS.items()
        for column, kind in kinds.items()
        if kind == Kind.PERSON
    ]


# -- finding --------------------------------------------------------------------------------------


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


async def _select(session: DbSession, name: str, where: ColumnElement[bool]) -> list[dict[str, Any]]:
    """The rows, oldest first, so an export reads as a history: by when each was written
    (`created_at`, or `at` for a line, an update, a decision), not by id, which follows the order
    rows were inserted (two processes, a corrected clock, a restore); the id breaks ties."""
    found = table(name)
    written = found.c.get("created_at", found.c.get("at"))
    assert written is not None, f"{name}: a person's rows are exported by time, and it has none"
    primary = list(found.primary_key.columns)
    return _rows(await session.execute(select(found).where(where).order_by(written, *primary)))


async def is_known(session: DbSession, *, key: str) -> bool:
    """Whether any row names this person in a PERSON column."""
    for name, column in person_columns():
        found = table(name)
        hit = await session.execute(select(found.c[column]).where(found.c[column] == key).limit(1))
        if hit.first() is not None:
            return True
    return False


async def names_of(session: DbSession, *, key: str) -> list[str]:
    """The display names stored beside this person's key, longest first."""
    names: set[str] = set()
    for (name, column), name_column in _NAME_BESIDE.items():
        found = table(name)
        result = await session.execute(select(found.c[name_column]).where(found.c[column] == key).distinct())
        names.update(value for (value,) in result if value)
    return sorted(names, key=lambda value: (-len(value), value))


async def questions_of(session: DbSession, *, key: str) -> list[str]:
    """What this person asked, as stored: their questions to the bot and the summaries of the
    tickets they opened (what staff teach the bot from), each once, in the order they were stored."""
    decisions, tickets = table("kb_decisions"), table("tickets")
    asked = await session.execute(
        select(decisions.c.question)
        .where(decisions.c.actor_key == key)
        .order_by(decisions.c.at, decisions.c.id)
    )
    opened = await session.execute(
        select(tickets.c.summary).where(tickets.c.requester_key == key).order_by(tickets.c.id)
    )
    return list(dict.fromkeys(text for (text,) in [*asked, *opened] if text))


@dataclass
class Footprint:
    """Every row about one person, by what it is (see `privacy.SECTIONS` for what each means)."""

    tickets_opened: list[dict[str, Any]] = field(default_factory=list)
    transcripts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    lines_elsewhere: list[dict[str, Any]] = field(default_factory=list)
    tickets_held: list[dict[str, Any]] = field(default_factory=list)
    kb_questions: list[dict[str, Any]] = field(default_factory=list)
    status_subscriptions: list[dict[str, Any]] = field(default_factory=list)
    incident_follow_ups: list[dict[str, Any]] = field(default_factory=list)
    status_changes: list[dict[str, Any]] = field(default_factory=list)
    incidents_opened: list[dict[str, Any]] = field(default_factory=list)
    incident_updates: list[dict[str, Any]] = field(default_factory=list)
    audit_log: list[dict[str, Any]] = field(default_factory=list)


# What a team member's export shows of a ticket they held: theirs is the holding, the rest is the
# customer's.
_HELD_COLUMNS: Final = ("id", "number", "state", "assignee_key", "assignee_name", "created_at", "closed_at")


async def footprint(session: DbSession, *, key: str) -> Footprint:
    """Every row about this person: keyed to them, or (audit rows) naming their key."""
    tickets, lines = table("tickets"), table("ticket_messages")
    found = Footprint()
    found.tickets_opened = await _select(session, "tickets", tickets.c.requester_key == key)
    opened = [row["id"] for row in found.tickets_opened]
    for ticket_id in opened:
        found.transcripts[ticket_id] = await _select(
            session, "ticket_messages", lines.c.ticket_id == ticket_id
        )
    elsewhere = await _select(session, "ticket_messages", lines.c.author_key == key)
    found.lines_elsewhere = [row for row in elsewhere if row["ticket_id"] not in found.transcripts]
    held = await _select(session, "tickets", tickets.c.assignee_key == key)
    found.tickets_held = [{column: row[column] for column in _HELD_COLUMNS} for row in held]
    found.kb_questions = await _select(session, "kb_decisions", table("kb_decisions").c.actor_key == key)
    found.status_subscriptions = await _select(
        session, "status_subscriptions", table("status_subscriptions").c.created_by == key
    )
    found.incident_follow_ups = await _select(
        session, "status_incident_links", table("status_incident_links").c.actor_key == key
    )
    found.status_changes = await _select(
        session, "status_component_history", table("status_component_history").c.actor_key == key
    )
    found.incidents_opened = await _select(
        session, "status_incidents", table("status_incidents").c.created_by == key
    )
    found.incident_updates = await _select(
        session, "status_incident_updates", table("status_incident_updates").c.actor_key == key
    )
    audit = table("audit_log")
    naming = _mentions([key])
    rows = await _select(
        session, "audit_log", or_(audit.c.actor_key == key, audit.c.detail.icontains(key, autoescape=True))
    )
    found.audit_log = [row for row in rows if row["actor_key"] == key or naming.search(row["detail"])]
    return found


# -- erasing --------------------------------------------------------------------------------------


def _mentions(needles: Iterable[str]) -> re.Pattern[str]:
    """Any of `needles` as a whole word (not inside a longer id or word), in any case."""
    alternatives = "|".join(re.escape(needle) for needle in sorted(set(needles), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _fits(found: Table, column: str, value: str) -> str:
    length = getattr(found.c[column].type, "length", None)
    return value[:length] if length else value


@dataclass
class Changed:
    """Which rows of which tables an erasure or purge changed (rows are kept: counts stay)."""

    rows: dict[str, set[Any]] = field(default_factory=dict)

    def add(self, name: str, key: Any) -> None:
        self.rows.setdefault(name, set()).add(key)

    @property
    def counts(self) -> dict[str, int]:
        return {name: len(keys) for name, keys in sorted(self.rows.items()) if keys}


async def _rewrite(
    session: DbSession,
    changed: Changed,
    name: str,
    columns: Sequence[str],
    where: ColumnElement[bool],
    rewrite: Callable[[str, str], str],
) -> None:
    """Set each of `columns` to `rewrite(column, value)` in the rows matching `where`."""
    found = table(name)
    (primary,) = found.primary_key.columns
    result = await session.execute(select(primary, *(found.c[column] for column in columns)).where(where))
    for row in result.all():
        values: dict[str, str] = {}
        value: str | None
        for column, value in zip(columns, row[1:], strict=True):
            if value is None:
                continue
            new = _fits(found, column, rewrite(column, value))
            if new != value:
                values[column] = new
        if values:
            await session.execute(update(found).where(primary == row[0]).values(values))
            changed.add(name, row[0])


async def _ticket_places(session: DbSession, ticket_ids: Sequence[int]) -> set[tuple[str, str | None]]:
    """Where those tickets are talked about, as (channel, thread): a DM ticket's whole channel
    (thread None), a channel ticket's thread, and each one's staff thread."""
    tickets = table("tickets")
    columns = (tickets.c.channel_id, tickets.c.thread_id, tickets.c.is_direct)
    staff = (tickets.c.staff_channel_id, tickets.c.staff_thread_id)
    places: set[tuple[str, str | None]] = set()
    for chunk in _chunks(ticket_ids):
        rows: list[Any] = list(await session.execute(select(*columns, *staff).where(tickets.c.id.in_(chunk))))
        for channel, thread, direct, staff_channel, staff_thread in rows:
            if direct:
                places.add((channel, None))
            elif thread:
                places.add((channel, thread))
            if staff_channel and staff_thread:
                places.add((staff_channel, staff_thread))
    return places


def _owed_concerns(owed: str, *, bare_id: str, key: str, places: set[tuple[str, str | None]]) -> bool:
    """Whether replies kept with a claim (as bot/core/owed.py writes them) are to or about a person:
    their id in an actor or a mention, their key in a text, or going to one of their tickets'
    `places` (the team's answer in their DM and their words relayed to the staff thread name them
    nowhere else). A row that cannot be read counts: the sweep would only give it up."""
    try:
        stored = json.loads(owed)
    except ValueError:
        return True

    def concerns(value: Any) -> bool:
        if isinstance(value, str):
            return key in value
        if isinstance(value, list):
            return any(concerns(item) for item in value)
        if not isinstance(value, dict):
            return False
        kind = value.get("~")
        if kind in ("Actor", "Mention") and value.get("id") == bare_id:
            return True
        if kind == "Conversation":
            channel = value.get("channel_id")
            if (channel, None) in places or (channel, value.get("thread_id")) in places:
                return True
        return any(concerns(item) for item in value.values())

    return concerns(stored)


async def erase(
    session: DbSession, *, key: str, pseudonym: str, words_marker: str, now: datetime
) -> dict[str, int] | None:
    """Replace this person's words by `words_marker` and their key, id and names by `pseudonym`,
    everywhere; None if nothing names them. Rows are kept, so counts, ratings and aggregates stay.

    Also, so that nothing reaches them again: their open tickets are closed (`closed_how` "erased"),
    their DM subscriptions stop (pending messages skipped), incident follow-ups not yet sent are
    dropped. Status notices the team wrote (incidents, updates) are the organisation's words and are
    kept; their author is pseudonymised.
    """
    if not await is_known(session, key=key):
        return None
    changed = Changed()
    names = await names_of(session, key=key)
    bare_id = key.partition(":")[2]
    tickets, lines, subscriptions = table("tickets"), table("ticket_messages"), table("status_subscriptions")

    # Rows that are about them: their tickets (opened or held) and any ticket they wrote in.
    mine = or_(
        tickets.c.requester_key == key,
        tickets.c.assignee_key == key,
        tickets.c.id.in_(select(lines.c.ticket_id).where(lines.c.author_key == key)),
    )
    ticket_ids = [row[0] for row in await session.execute(select(tickets.c.id).where(mine))]

    # Closed first, while the tickets still name them.
    open_ones = and_(tickets.c.requester_key == key, tickets.c.state.in_(OPEN_STATES))
    for (ticket_id,) in (await session.execute(select(tickets.c.id).where(open_ones))).all():
        await session.execute(
            update(tickets)
            .where(tickets.c.id == ticket_id)
            .values(state="closed", closed_at=now, closed_how="erased")
        )
        changed.add("tickets", ticket_id)
    dm_subscriptions = and_(
        subscriptions.c.created_by == key, subscriptions.c.is_direct, subscriptions.c.active
    )
    for (subscription_id,) in (
        await session.execute(select(subscriptions.c.id).where(dm_subscriptions))
    ).all():
        await session.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(active=False, disabled_reason=ERASED_REASON)
        )
        outbox = table("status_outbox")
        await session.execute(
            update(outbox)
            .where(outbox.c.subscription_id == subscription_id, outbox.c.state == "pending")
            .values(state="skipped", error=ERASED_REASON)
        )
        changed.add("status_subscriptions", subscription_id)
    links = table("status_incident_links")
    pending_links = and_(links.c.actor_key == key, links.c.notified_at.is_(None))
    for (link_id,) in (await session.execute(select(links.c.id).where(pending_links))).all():
        await session.execute(update(links).where(links.c.id == link_id).values(notified_at=now))
        changed.add("status_incident_links", link_id)

    # Their requests not yet handled: dropped, not rewritten, so that no replay acts on them.
    inbox = table("inbox")
    for (row_id,) in (await session.execute(select(inbox.c.id).where(inbox.c.person == key))).all():
        changed.add("inbox", row_id)
    await session.execute(delete(inbox).where(inbox.c.person == key))
    # Replies not yet posted to or about them, and work not yet done about them (an export of
    # their data): dropped, so that no sweep posts or writes them after the erasure. Only the few
    # claims still owing are read (the partial index holds just those).
    claims = table("processed_events")
    places = await _ticket_places(session, ticket_ids)
    owing = select(claims.c.id, claims.c.owed, claims.c.work).where(claims.c.owed_until.is_not(None))
    owed_rows: list[Any] = list(await session.execute(owing))
    for row_id, owed, work in owed_rows:
        if any(
            _owed_concerns(text, bare_id=bare_id, key=key, places=places)
            for text in (owed or "null", work or "null")
        ):
            changed.add("processed_events", row_id)
            await session.execute(
                update(claims).where(claims.c.id == row_id).values(owed=None, owed_until=None, work=None)
            )

    # Ticket notices the clocks decided and kept in the outbox, not yet sent (the process died, or
    # every try failed so far): the same rule, so that no worker sends them after the erasure.
    outbox = table("status_outbox")
    unsent = and_(
        outbox.c.kind == outbox_repo.KEPT, outbox.c.state.in_((outbox_repo.PENDING, outbox_repo.SENDING))
    )
    unsent_rows: list[Any] = list(await session.execute(select(outbox.c.id, outbox.c.body).where(unsent)))
    for row_id, body in unsent_rows:
        if _owed_concerns(body or "null", bare_id=bare_id, key=key, places=places):
            changed.add("status_outbox", row_id)
            await session.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(
                    state=outbox_repo.SKIPPED, error=ERASED_REASON, body="", lease_owner="", lease_until=None
                )
            )

    # Their words.
    for (name, column), word_columns in _WORDS_OF.items():
        found = table(name)
        await _rewrite(
            session, changed, name, word_columns, found.c[column] == key, lambda _column, _value: words_marker
        )

    # Their names, in the free text of the tickets about them (a greeting by first name too).
    if names and ticket_ids:
        called = _mentions(_name_forms(names))

        def unname(_column: str, value: str) -> str:
            return called.sub(pseudonym, value)

        for chunk in _chunks(ticket_ids):
            await _rewrite(
                session, changed, "tickets", ("summary", "close_reason"), tickets.c.id.in_(chunk), unname
            )
            await _rewrite(
                session, changed, "ticket_messages", ("text",), lines.c.ticket_id.in_(chunk), unname
            )

    # Their identity: every PERSON and NAME column that is theirs.
    for name, column in person_columns():
        found = table(name)
        beside = _NAME_BESIDE.get((name, column))
        await _rewrite(
            session,
            changed,
            name,
            (column, beside) if beside else (column,),
            found.c[column] == key,
            lambda _column, _value: pseudonym,
        )

    # Their key (and a distinctive bare id) wherever else it is written: a mention, a DM's place.
    needles = [key] + ([bare_id] if len(bare_id) >= MIN_BARE_ID else [])
    mentioned = _mentions(needles)
    for name, kinds in COLUMNS.items():
        found = table(name)
        primary = {column.name for column in found.primary_key.columns}
        columns = [column for column, kind in kinds.items() if kind != Kind.CODE and column not in primary]
        if not columns:
            continue
        where = or_(
            *(found.c[column].icontains(needle, autoescape=True) for column in columns for needle in needles)
        )
        await _rewrite(
            session, changed, name, columns, where, lambda _column, value: mentioned.sub(pseudonym, value)
        )
    return changed.counts


async def still_owed(session: DbSession, *, column: str) -> list[tuple[int, str]]:
    """What claims still owe (as bot/core/owed.py writes it), in `column`: `owed`, replies not
    posted yet, or `work`, work after the event's commit not done yet; (claim id, text) each,
    oldest first. Locked until the transaction ends, so that no sweep takes one meanwhile (it
    skips locked rows)."""
    claims = table("processed_events")
    owing = (
        select(claims.c.id, claims.c[column])
        .where(claims.c.owed_until.is_not(None), claims.c[column].is_not(None))
        .order_by(claims.c.id)
        .with_for_update()
    )
    rows: list[Any] = list(await session.execute(owing))
    return [(int(row_id), str(text)) for row_id, text in rows]


async def rewrite_still_owed(session: DbSession, *, claim_id: int, column: str, text: str) -> None:
    """What the claim still owes in `column` (`still_owed`) is `text` now: an erased person's
    words taken out of it."""
    claims = table("processed_events")
    await session.execute(
        update(claims).where(claims.c.id == claim_id, claims.c[column].is_not(None)).values({column: text})
    )


def _name_forms(names: Iterable[str]) -> list[str]:
    """Each name, and the first word of a name of several words ("Hi Quentin")."""
    forms = []
    for name in names:
        forms.append(name)
        first = name.split()[0] if len(name.split()) > 1 else ""
        if len(first) >= 3 and first.isalpha():
            forms.append(first)
    return forms


def _chunks(values: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# -- retention ------------------------------------------------------------------------------------


async def purge_text_before(session: DbSession, *, before: datetime, marker: str, limit: int) -> int:
    """Replace by `marker` what people wrote before `before`: questions, the transcripts and summaries
    of tickets closed before then, refused commands' text. At most `limit` rows per table; returns
    how many rows changed. Rows stay, so counts and ratings do too."""
    tickets, lines = table("tickets"), table("ticket_messages")
    decisions, audit = table("kb_decisions"), table("audit_log")
    closed_before = and_(tickets.c.state == "closed", tickets.c.closed_at < before)
    closed_ids = select(tickets.c.id).where(closed_before)
    targets: list[tuple[Table, dict[str, Any], ColumnElement[bool]]] = [
        (
            decisions,
            {"question": marker, "files": None},  # the files asked with go with the question
            and_(decisions.c.at < before, decisions.c.question != marker),
        ),
        (
            lines,
            {"text": marker},
            and_(lines.c.at < before, lines.c.ticket_id.in_(closed_ids), lines.c.text != marker),
        ),
        (
            tickets,
            {"summary": marker, "close_reason": None},
            and_(closed_before, or_(tickets.c.summary != marker, tickets.c.close_reason.is_not(None))),
        ),
        (
            audit,
            {"detail": marker},
            and_(
                audit.c.at < before,
                audit.c.allowed == false(),
                audit.c.detail != "",
                audit.c.detail != marker,
            ),
        ),
    ]
    total = 0
    for found, values, where in targets:
        (primary,) = found.primary_key.columns
        batch = select(primary).where(where).order_by(primary).limit(limit)
        ids = [row[0] for row in await session.execute(batch)]
        if ids:
            await session.execute(update(found).where(primary.in_(ids)).values(values))
            total += len(ids)
    return total
