"""WAL, for supportbot's own SQLite files only."""

from __future__ import annotations

from typing import Any

_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~'"


def use_wal_if_ours(cursor: Any) -> None:
    """WAL lets readers run beside the one writer. It is a property of the file that stays with it
    (and wants -wal and -shm files beside it), so it is set only on a file that is new or ours (as
    `storage.migrate` tells: alembic_version alone, or with a revision in it): another program's
    database, named by mistake, is refused by the upgrade and must be left in the format its
    program chose."""
    cursor.execute(_TABLES)
    tables = {row[0] for row in cursor.fetchall()}
    if tables - {"alembic_version"} and not ("alembic_version" in tables and _stamped(cursor)):
        return
    cursor.execute("PRAGMA journal_mode=WAL")


def _stamped(cursor: Any) -> bool:
    cursor.execute("SELECT 1 FROM alembic_version LIMIT 1")
    return cursor.fetchone() is not None
