"""What differs between PostgreSQL and SQLite in the statements repositories build."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Update, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.session import DbSession


def name(session: DbSession) -> str:
    """The database behind this session: "postgresql" or "sqlite"."""
    return str(session.bind.dialect.name) if session.bind else "sqlite"


def insert(session: DbSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT in the session's dialect, which has ON CONFLICT (`on_conflict_do_nothing/_update`)."""
    return postgresql.insert(table) if name(session) == "postgresql" else sqlite.insert(table)


def claim_due(
    session: DbSession, model: Any, *, id_column: Any, due: ColumnElement[bool], order_by: Any, limit: int
) -> Update:
    """UPDATE of the first `limit` rows of `model` that are `due`, for a lease-based claim (the
    inbox, owed replies, broadcast deliveries): the caller adds the new lease in `.values()` and what
    it reads in `.returning()`. Two claimers never take the same row: on PostgreSQL the rows another
    claimer has locked are skipped (`FOR UPDATE SKIP LOCKED`), and `due` is checked again in the
    UPDATE, so a row taken between the choice and the update stays its taker's; on SQLite the single
    writer serialises the statements."""
    chosen = select(id_column).where(due).order_by(order_by).limit(limit)
    if name(session) == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    return (
        update(model)
        .where(id_column.in_(chosen.scalar_subquery()))
        .where(due)
        .execution_options(synchronize_session=False)
    )
