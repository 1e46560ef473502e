"""WAL, for supportbot's own SQLite files only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.sqlite.ownership import foreign_tables


def use_wal_if_ours(cursor: Any) -> None:
    """WAL lets readers run beside the one writer. It is a property of the file that stays with it
    (and wants -wal and -shm files beside it), so it is set only on a file that is new or ours (the
    rule the upgrade refuses by, `storage.sqlite.ownership`): another program's database, named by
    mistake, is refused by the upgrade and must be left in the format its program chose."""

    def rows(sql: str) -> Sequence[Any]:
        cursor.execute(sql)
        fetched: Sequence[Any] = cursor.fetchall()
        return fetched

    if not foreign_tables(rows):
        cursor.execute("PRAGMA journal_mode=WAL")
