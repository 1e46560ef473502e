"""Knowledge-base decisions: every question, what the bot decided, and how it turned out."""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, func, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from storage import dialect
from storage.errors import causes
from storage.models import KBDecision
from storage.session import IF_LAST_RETURNED_A_ROW, DbSession, Prepared


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """The row `record` wrote, as the handler needs it next (no ORM object: see `record`)."""

    id: int
    band: str
    top_entry_id: str | None
    reason: str | None
    question: str


_TABLE: Table = KBDecision.__table__  # type: ignore[attr-defined]
# Every question writes one row: a Core INSERT built once. Going through the ORM (build the model,
# add, flush) cost four times as much as the statement (see the pipeline section of BENCHMARKS).
_COLUMNS = (
    "actor_key",
    "platform",
    "conversation_key",
    "question",
    "band",
    "candidates",
    "top_entry_id",
    "top_confidence",
    "reason",
    "outcome",
    "ticket_id",
    "at",
    "by_staff",
    "files",
)
_INSERT = Prepared(insert(_TABLE).returning(_TABLE.c.id), keys=_COLUMNS)
# On PostgreSQL the id comes from ids reserved ahead (`_ReservedIds`), so nothing reads the row back
# and it can wait for the event's claim and go with it, in one statement (storage/postgres/session.py).
_WITH_ID = ("id", *_COLUMNS)
_INSERT_DEFERRED = Prepared(
    insert(_TABLE),
    keys=_WITH_ID,
    kind="deferred",
    if_last=insert(_TABLE).from_select(
        _WITH_ID,
        sa_select(*(bindparam(name, type_=_TABLE.c[name].type) for name in _WITH_ID)).where(
            IF_LAST_RETURNED_A_ROW
        ),
    ),
)
_RESERVE = Prepared(
    sa_select(func.nextval(func.pg_get_serial_sequence(_TABLE.name, "id"))).select_from(
        func.generate_series(1, bindparam("n"))
    ),
    kind="read",  # nextval is outside any transaction anyway: nothing to begin for it
)


class _ReservedIds:
    """Decision ids taken from the table's sequence a block at a time, per database (its pool):
    one round trip per block instead of a RETURNING per question. Ids stay unique across processes;
    a stopped process leaves gaps, and two processes' ids interleave, so order is read from `at`."""

    BLOCK = 64

    def __init__(self) -> None:
        self._free: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()

    async def take(self, session: DbSession) -> int:
        pool = session.bind.sync_engine.pool
        free = self._free.setdefault(pool, [])
        if not free:
            rows = await _RESERVE.rows(session, {"n": self.BLOCK})
            free.extend(sorted((int(value) for (value,) in rows), reverse=True))
        return free.pop()

    def drop(self) -> None:
        """Forget every id held: the next take reserves fresh ones from the sequence."""
        self._free.clear()


_RESERVED = _ReservedIds()


def reserved_id_was_taken(error: BaseException) -> bool:
    """The event failed on a decision id this process reserved but another row already has: the
    sequence moved back (a restore, a failover that lost WAL, with bots running), so it handed the
    same ids out again. The ids held are dropped; the event can run again with fresh ones."""
    if not any(getattr(seen, "constraint_name", None) == f"{_TABLE.name}_pkey" for seen in causes(error)):
        return False
    _RESERVED.drop()
    return True


async def record(
    session: DbSession,
    *,
    actor_key: str,
    platform: str,
    conversation_key: str,
    question: str,
    band: str,
    candidates: Sequence[tuple[str, float]],
    at: datetime,
    reason: str | None = None,
    outcome: str = "pending",
    by_staff: bool = False,
    files: str | None = None,
) -> RecordedDecision:
    """A question, and what the bot decided. `files`: those it was asked with, as the caller writes
    them down to fetch again (never their bytes), None for none."""
    top_id, top_confidence = candidates[0] if candidates else (None, 0.0)
    question = question[:4000]
    values = {
        "actor_key": actor_key,
        "platform": platform,
        "conversation_key": conversation_key,
        "question": question,
        "band": band,
        "candidates": json.dumps([[entry_id, round(score, 4)] for entry_id, score in candidates]),
        "top_entry_id": top_id,
        "top_confidence": round(top_confidence, 4),
        "reason": reason,
        "outcome": outcome,
        "ticket_id": None,
        "at": at,
        "by_staff": by_staff,
        "files": files,
    }
    if dialect.name(session) == "postgresql":
        decision_id = await _RESERVED.take(session)
        await _INSERT_DEFERRED.rows(session, {"id": decision_id, **values})
    else:
        ((decision_id,),) = await _INSERT.rows(session, values)
    return RecordedDecision(
        id=int(decision_id), band=band, top_entry_id=top_id, reason=reason, question=question
    )


_SETTLE_ROW = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("decision_id"))
    .values(outcome=bindparam("to_outcome"), reason=bindparam("to_reason"), ticket_id=bindparam("to_ticket"))
)
# Deferred: an escalation settles its decision just before the claim, with the ticket counter's row
# locked; folded into the claim's statement, that is one round trip fewer under the lock.
_SETTLE = Prepared(_SETTLE_ROW, kind="deferred", if_last=_SETTLE_ROW.where(IF_LAST_RETURNED_A_ROW))


async def settle(
    session: DbSession, *, decision_id: int, outcome: str, reason: str | None, ticket_id: int | None
) -> None:
    """What became of a question: its outcome, why, and the ticket it opened (if any)."""
    await _SETTLE.rows(
        session,
        {"decision_id": decision_id, "to_outcome": outcome, "to_reason": reason, "to_ticket": ticket_id},
    )


async def get(session: DbSession, *, decision_id: int) -> KBDecision | None:
    decision: KBDecision | None = await session.get(KBDecision, decision_id)
    return decision


# Runs for every question: built once, and only the text is loaded (building whole rows as models cost
# more than the query).
_RECENT_QUESTIONS = Prepared(
    select(_TABLE.c.question)
    .where(_TABLE.c.actor_key == bindparam("actor_key"), _TABLE.c.at >= bindparam("since"))
    .order_by(_TABLE.c.at.desc(), _TABLE.c.id.desc())
    .limit(20),
    kind="read",
)


async def recent_questions(session: DbSession, *, actor_key: str, since: datetime) -> Sequence[str]:
    """What this person asked since `since`, newest first (at most 20)."""
    rows = await _RECENT_QUESTIONS.rows(session, {"actor_key": actor_key, "since": since})
    return [question for (question,) in rows]


async def customer_questions(
    session: DbSession, *, since: datetime, limit: int, per_person: int = 3, leave_out: Sequence[str] = ()
) -> list[str]:
    """Customers' questions since `since`, newest first, at most `limit`, each text once per person
    and at most `per_person` from anyone (one person repeating a question says little about the
    traffic); staff trying the bot and texts in `leave_out` (the markers that replace removed text)
    are left out."""
    rows = await session.execute(
        sa_select(_TABLE.c.actor_key, _TABLE.c.question)
        .where(
            _TABLE.c.at >= since,
            _TABLE.c.by_staff.is_(False),
            _TABLE.c.question != "",
            _TABLE.c.question.not_in(list(leave_out)),
        )
        .order_by(_TABLE.c.at.desc(), _TABLE.c.id.desc())  # two processes' ids interleave
        .limit(limit * per_person)
    )
    taken: dict[str, set[str]] = {}
    questions: list[str] = []
    for row in rows:
        actor, question = (str(value) for value in row)
        said = taken.setdefault(actor, set())
        key = " ".join(question.casefold().split())
        if key in said or len(said) >= per_person:
            continue
        said.add(key)
        questions.append(question)
        if len(questions) == limit:
            break
    return questions


ESCALATED = ("escalated", "still_need_help", "none_of_these")


@dataclass(frozen=True, slots=True)
class RecurringQuestion:
    entry_id: str | None
    asked: int
    escalated: int
    solved: int
    example: str


async def recurring(session: DbSession, *, since: datetime, limit: int = 10) -> list[RecurringQuestion]:
    """The questions that keep coming back, grouped by the article they matched (None: no article)."""
    # A low-confidence guess is not "about" its best entry: group those as questions with no article.
    topic = case((col(KBDecision.band) == "escalate", None), else_=col(KBDecision.top_entry_id))
    escalated = func.sum(case((col(KBDecision.outcome).in_(ESCALATED), 1), else_=0))
    solved = func.sum(case((col(KBDecision.outcome) == "solved", 1), else_=0))
    result = await session.execute(
        sa_select(topic, func.count(), escalated, solved, func.max(col(KBDecision.question)))
        .where(col(KBDecision.at) >= since, col(KBDecision.by_staff) == False)  # noqa: E712
        .group_by(topic)
        .order_by(func.count().desc())
        .limit(limit)
    )
    rows: Sequence[Any] = result.all()  # (topic, asked, escalated, solved, example)
    return [
        RecurringQuestion(
            entry_id=row[0],
            asked=int(row[1]),
            escalated=int(row[2] or 0),
            solved=int(row[3] or 0),
            example=row[4] or "",
        )
        for row in rows
    ]
