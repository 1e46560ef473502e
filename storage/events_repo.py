"""Inbound-event deduplication: claim (platform, event id) once, across retries and processes.

The claim also keeps the event's replies while they are not all posted (`claim_event` with `owed`,
`settle_owed`), and the work it left for after its commit until that is done (`work`,
`work_done`): the claim makes a redelivery a duplicate, so what is lost with a killed process would
otherwise never be done. Rows still owing after their lease are claimed by any process
(`claim_owed`), as the inbox and the broadcast outbox do theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from storage import dialect
from storage.leases import renew_leased
from storage.models import ProcessedEvent
from storage.session import DbSession, Prepared
from storage.types import utcnow

_TABLE: Table = ProcessedEvent.__table__  # type: ignore[attr-defined]

# Built once: this runs for every inbound event, and building the statement (and its cache key) each
# time cost more than executing it. A Core statement on the table also skips the ORM's bulk-insert path.
_KEYS = ("platform", "event_id", "handled_at", "owed", "owed_until", "work")
_PG_CLAIM = postgresql.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.id)
_CLAIM: dict[str, Prepared] = {
    "postgresql": Prepared(_PG_CLAIM, keys=_KEYS),
    "sqlite": Prepared(sqlite.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.id), keys=_KEYS),
}
_PLAIN_CLAIM = Prepared(insert(_TABLE).returning(_TABLE.c.id), keys=_KEYS)
# The same claim as its transaction's last statement: PostgreSQL's session may then run it alone, with
# the writes that waited for it (storage/postgres/session.py).
_LAST_CLAIM = Prepared(_PG_CLAIM, keys=_KEYS, kind="last")
# One claim settled in the transaction recording what its replies' posts asked for (an escalation):
# as a Prepared statement, for every escalation pays it.
_SETTLE_ROW = update(_TABLE).where(_TABLE.c.id == bindparam("i")).values(owed=None, owed_until=None)
_SETTLE_ONE = Prepared(_SETTLE_ROW)
# The same as its transaction's last statement (after an escalation's posts: with the staff thread's
# UPDATE waiting, one statement instead of BEGIN, two UPDATEs and COMMIT).
_SETTLE_ONE_LAST = Prepared(_SETTLE_ROW.returning(_TABLE.c.id), kind="last")


async def claim_event(
    session: DbSession,
    *,
    platform: str,
    event_id: str,
    owed: str | None = None,
    owed_until: datetime | None = None,
    work: str | None = None,
    last: bool = False,
) -> int | None:
    """The claim's id if this session is the first to claim the event; None for a duplicate. With
    `owed`, the event's replies (encoded) are kept with the claim until `owed_until`, so that they
    exist exactly when the claim does; so is the `work` it left for after its commit. `last`: the
    transaction runs nothing after it (a statement that tries raises), so on PostgreSQL it may be
    sent with the writes waiting for it, alone.

    On PostgreSQL a second transaction inserting the same key waits for the first; if the first
    commits it gets None, if the first rolls back it gets the claim. So exactly one handler commits.
    """
    engine = dialect.name(session)
    statement = _LAST_CLAIM if last and engine == "postgresql" else _CLAIM.get(engine, _PLAIN_CLAIM)
    values = {"platform": platform, "event_id": event_id, "handled_at": utcnow(), "owed": owed}
    rows = await statement.rows(session, {**values, "owed_until": owed_until, "work": work})
    return int(rows[0][0]) if rows else None


async def is_claimed(session: DbSession, *, platform: str, event_id: str) -> bool:
    """Whether the event is claimed already: work a claim would only find taken need not be done."""
    found = await session.execute(
        select(col(ProcessedEvent.id))
        .where(col(ProcessedEvent.platform) == platform)
        .where(col(ProcessedEvent.event_id) == event_id)
    )
    return found.first() is not None


async def forget_handled_before(session: DbSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` claims older than `before`; returns how many. Platforms stop redelivering
    an event within hours, so old claims only cost disk; deleting in batches keeps each lock short."""
    oldest = (
        select(col(ProcessedEvent.id))
        .where(col(ProcessedEvent.handled_at) < before)
        # A claim still owing replies stays until they are posted or given up (bot/core/owed.py):
        # deleting it would lose them, and let a redelivery of its event be handled again.
        .where(col(ProcessedEvent.owed_until).is_(None))
        .order_by(col(ProcessedEvent.handled_at))
        .limit(limit)
    )
    result = await session.execute(
        delete(ProcessedEvent).where(ProcessedEvent.id.in_(oldest.scalar_subquery()))  # type: ignore[union-attr]
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def settle_owed(session: DbSession, *, ids: Sequence[int], last: bool = False) -> None:
    """Those claims' replies are posted (or given up after the outbound retries): nothing is owed.
    `last` (one id): the transaction runs nothing after it, as `claim_event`'s."""
    if len(ids) == 1:
        await (_SETTLE_ONE_LAST if last else _SETTLE_ONE).rows(session, {"i": ids[0]})
    elif ids:
        await session.execute(
            update(ProcessedEvent)
            .where(col(ProcessedEvent.id).in_(list(ids)))
            .values(owed=None, owed_until=None)
            .execution_options(synchronize_session=False)
        )


async def keep_owed(session: DbSession, *, claim_id: int, owed: str, until: datetime) -> None:
    """The claim still owes these replies (the others are posted): any process posts them after `until`."""
    await session.execute(
        update(ProcessedEvent)
        .where(col(ProcessedEvent.id) == claim_id)
        .values(owed=owed, owed_until=until)
        .execution_options(synchronize_session=False)
    )


async def work_done(session: DbSession, *, claim_id: int, owed: str) -> bool:
    """The claim's work is done; it still owes `owed`, the replies that say so among them, posted
    as any owed replies are (its lease is left as it is: the process that did the work posts them).
    False when the claim no longer owes the work: an erasure dropped it, or another process's sweep
    did it and recorded it first (that one posts the replies); then nothing is changed."""
    result = await session.execute(
        update(ProcessedEvent)
        .where(col(ProcessedEvent.id) == claim_id, col(ProcessedEvent.work).is_not(None))
        .values(owed=owed, work=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def lock_work(session: DbSession, *, claim_id: int) -> str | None:
    """The work the claim still owes after its event's commit, its row locked until the
    transaction ends (SQLite's transactions hold the one write lock already); None when it owes
    none (done, or dropped by an erasure). The process doing the work holds it so while writing its
    file, and an erasure locks these rows before it cleans the files: the one that comes second
    sees what the first did (bot/core/dispatch.py, `Dispatcher._write_under_claim`)."""
    result = await session.execute(
        select(col(ProcessedEvent.work)).where(col(ProcessedEvent.id) == claim_id).with_for_update()
    )
    return result.scalar_one_or_none()


async def keep_work(session: DbSession, *, claim_id: int, work: str) -> None:
    """What the claim owes after its event's commit is `work` now: the rest of it, once its files
    are written (`lock_work`)."""
    await session.execute(
        update(ProcessedEvent)
        .where(col(ProcessedEvent.id) == claim_id, col(ProcessedEvent.work).is_not(None))
        .values(work=work)
        .execution_options(synchronize_session=False)
    )


async def renew_owed(session: DbSession, *, held: Mapping[int, datetime], until: datetime) -> list[int]:
    """The process posting the replies of the claims of `held` (id -> until when it holds each)
    holds them until `until`; those renewed. A claim no longer owing, or taken over by another
    process's sweep, is not."""
    lease = col(ProcessedEvent.owed_until)
    return await renew_leased(
        session, ProcessedEvent, id_column=col(ProcessedEvent.id), lease_column=lease, held=held, until=until
    )


async def claim_owed(
    session: DbSession, *, now: datetime, lease: timedelta, limit: int
) -> list[tuple[int, str, datetime, str | None]]:
    """Claim up to `limit` claims whose replies (or work) are still owed after their lease (the
    process that handled them died or hung), leasing them to the caller until now + lease: (id,
    replies, handled_at, work) each, oldest first."""
    owed_until = col(ProcessedEvent.owed_until)
    statement = (
        dialect.claim_due(
            session,
            ProcessedEvent,
            id_column=col(ProcessedEvent.id),
            due=owed_until < now,
            order_by=owed_until,
            limit=limit,
        )
        .values(owed_until=now + lease)
        .returning(
            col(ProcessedEvent.id),
            col(ProcessedEvent.owed),
            col(ProcessedEvent.handled_at),
            col(ProcessedEvent.work),
        )
    )
    rows: list[Any] = list((await session.execute(statement)).all())
    return sorted(((int(row[0]), row[1] or "", row[2], row[3]) for row in rows), key=lambda row: row[0])
