"""Leases written into rows that any process takes over once they run out (the inbox's rows, the
event claims owing replies): the renewal, shared so that both are fenced alike."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update

from storage.session import DbSession


async def renew_leased(
    session: DbSession,
    model: Any,
    *,
    id_column: Any,
    lease_column: Any,
    held: Mapping[int, datetime],
    until: datetime,
) -> list[int]:
    """Lease the rows of `model` in `held` (id -> until when the caller holds each) to the caller
    until `until`, those still leased to it: not gone, nor taken over since. A process takes a row
    over only once its lease has run out, and leases it past then, so a row leased past what the
    caller holds is another's (`<=`, not `=`: what a caller holds may be a moment later than what
    it wrote, read from its clock after the write). The rows renewed."""
    if not held:
        return []
    rows_by_until: dict[datetime, list[int]] = defaultdict(list)
    for row, held_until in held.items():
        rows_by_until[held_until].append(row)
    still_leased = or_(*(id_column.in_(rows) & (lease_column <= t) for t, rows in rows_by_until.items()))
    result = await session.execute(
        update(model)
        .where(still_leased)
        .values({lease_column.key: until})
        .returning(id_column)
        .execution_options(synchronize_session=False)
    )
    return [int(row_id) for row_id in result.scalars()]
