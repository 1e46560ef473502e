"""What differs between PostgreSQL and SQLite in the statements repositories build."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from storage.session import DbSession


def name(session: DbSession) -> str:
    """The database behind this session: "postgresql" or "sqlite"."""
    return str(session.bind.dialect.name) if session.bind else "sqlite"


def insert(session: DbSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """INSERT in the session's dialect, which has ON CONFLICT (`on_conflict_do_nothing/_update`)."""
    return postgresql.insert(table) if name(session) == "postgresql" else sqlite.insert(table)
