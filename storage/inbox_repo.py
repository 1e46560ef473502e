"""The inbox: platform requests written before they are acknowledged, deleted once handled.

A row is leased to the process that wrote it (`lease_until`); once the lease has run out with the
row still there, that process died or hung, and any process may claim the row to replay it. Claiming
is one UPDATE ... WHERE id IN (SELECT ... LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING, as in the
broadcast outbox, so two processes never claim the same row at once: on PostgreSQL the row locks
are skipped by the other claimer; on SQLite the single writer serialises the statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, insert, select
from sqlmodel import col

from storage import dialect
from storage.leases import renew_leased
from storage.models import InboxEntry
from storage.session import DbSession, Prepared

_TABLE: Table = InboxEntry.__table__  # type: ignore[attr-defined]

# Built once: this runs before every Slack acknowledgement, where each microsecond is the platform's.
_KEEP = Prepared(
    insert(_TABLE).returning(_TABLE.c.id),
    keys=("platform", "kind", "person", "body", "received_at", "lease_until", "attempts"),
)


async def keep(
    session: DbSession, *, platform: str, kind: str, person: str, body: str, now: datetime, lease: timedelta
) -> int:
    """Write one request, leased to the caller until now + lease; its id."""
    rows = await _KEEP.rows(
        session,
        {
            "platform": platform,
            "kind": kind,
            "person": person,
            "body": body,
            "received_at": now,
            "lease_until": now + lease,
            "attempts": 0,
        },
    )
    return int(rows[0][0])


async def finish(session: DbSession, *, ids: Sequence[int]) -> None:
    """The requests' events are settled: nothing is left to replay of them."""
    if ids:
        await session.execute(delete(InboxEntry).where(col(InboxEntry.id).in_(list(ids))))


async def renew(session: DbSession, *, held: Mapping[int, datetime], until: datetime) -> list[int]:
    """The process handling the rows of `held` (id -> until when it holds each) holds them until
    `until`; those renewed. A row deleted, or taken over by another process, is not."""
    lease = col(InboxEntry.lease_until)
    return await renew_leased(
        session, InboxEntry, id_column=col(InboxEntry.id), lease_column=lease, held=held, until=until
    )


async def of_person(session: DbSession, *, platform: str, person: str) -> list[InboxEntry]:
    """The rows `person` sent on `platform` still there, whoever holds them, oldest first."""
    found = await session.execute(
        select(InboxEntry)
        .where(col(InboxEntry.platform) == platform, col(InboxEntry.person) == person)
        .order_by(col(InboxEntry.id))
    )
    return list(found.scalars())


async def claim_due(
    session: DbSession, *, platform: str, now: datetime, lease: timedelta, limit: int
) -> list[InboxEntry]:
    """Claim up to `limit` rows of `platform` whose lease ran out, oldest first; each is leased to the
    caller until now + lease and counts one more attempt."""
    due = (col(InboxEntry.platform) == platform) & (col(InboxEntry.lease_until) < now)
    row_id = col(InboxEntry.id)
    statement = (
        dialect.claim_due(session, InboxEntry, id_column=row_id, due=due, order_by=row_id, limit=limit)
        .values(lease_until=now + lease, attempts=col(InboxEntry.attempts) + 1)
        .returning(InboxEntry)
    )
    result = await session.execute(statement)
    return sorted(result.scalars(), key=lambda row: row.id or 0)


async def forget_received_before(session: DbSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` rows received before `before`; how many. Retention runs this before it
    forgets event claims of the same age, so no row outlives the claim that makes its replay a no-op."""
    oldest = select(col(InboxEntry.id)).where(col(InboxEntry.received_at) < before).limit(limit)
    result = await session.execute(delete(InboxEntry).where(col(InboxEntry.id).in_(oldest.scalar_subquery())))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
