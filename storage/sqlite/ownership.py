"""Whose SQLite file this is: supportbot's (or new), or another program's named by mistake."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Rows = Callable[[str], Sequence[Sequence[Any]]]
"""Runs one SQL statement on the file and returns its rows (a cursor or a connection, either)."""

_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite~_%' ESCAPE '~' "
    "ORDER BY name"
)

# Litestream, which replicates a SQLite file, keeps these control tables in it (even in a file the
# bot has not set up yet): they are not another program's data.
_REPLICATION_TABLES = "_litestream_"


def foreign_tables(rows: Rows) -> list[str]:
    """Another program's tables in this file, or [] when it is new or ours. Our tables never stand
    without a revision (one transaction writes both): an empty alembic_version alone is ours
    downgraded to base, beside other tables another (alembic) program's. Whether a revision row is
    there is asked, not what it says: reading a revision of another shape can fail."""
    tables = [row[0] for row in rows(_TABLES) if not row[0].startswith(_REPLICATION_TABLES)]
    theirs = [name for name in tables if name != "alembic_version"]
    if not theirs or ("alembic_version" in tables and rows("SELECT 1 FROM alembic_version LIMIT 1")):
        return []
    return theirs
