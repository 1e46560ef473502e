"""The inbox: what a platform sent, written to the database before the bot acknowledges it.

A platform that has its acknowledgement never sends the request again (Slack), so a process killed
between the acknowledgement and the commit of the event's handling would lose it. An adapter that
`KeepsInbox` writes the raw request first (and does not acknowledge when it cannot), finishes the
row once the dispatcher has settled the event, and replays the rows whose lease ran out: their
process died. The dispatcher's claim on (platform, event id) makes a replay of an event that was in
fact handled a duplicate, so a replay never acts twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bot.core.clock import utc_now
from bot.core.group_commit import GroupCommit
from storage import inbox_repo
from storage.db import Database
from storage.session import DbSession


@dataclass(frozen=True, slots=True, kw_only=True)
class Kept:
    """A request in the inbox, as a replay reads it."""

    id: int
    kind: str
    body: dict[str, Any]
    received_at: datetime
    attempts: int


class Inbox(Protocol):
    async def keep(self, *, kind: str, person: str, body: Mapping[str, Any]) -> int:
        """Write the request durably; its row id. Raises when it cannot: then do not acknowledge."""
        ...

    async def finish(self, ids: Sequence[int]) -> None:
        """The rows' events are settled: delete them."""

    async def due(self, *, limit: int) -> list[Kept]:
        """Claim rows whose lease ran out (their process died), leasing them to this process."""
        ...


@runtime_checkable
class KeepsInbox(Protocol):
    """Optional for adapters of platforms that do not resend what was acknowledged: the composition
    root gives them the inbox."""

    def keep_inbox(self, inbox: Inbox, *, replay_every: float) -> None: ...


class DatabaseInbox:
    """The inbox of one platform in the bot's database. Rows are written and deleted in group
    commits: the acknowledgements wait for the writes, and in a burst the deletes of settled events
    would otherwise hold the event loop (SQLite runs on it) one commit each."""

    def __init__(
        self,
        database: Database,
        *,
        platform: str,
        lease: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.database = database
        self.platform = platform
        self.lease = lease
        self._clock = clock
        self._keep = GroupCommit(database, self._insert)
        self._finish = GroupCommit(database, self._delete)

    async def keep(self, *, kind: str, person: str, body: Mapping[str, Any]) -> int:
        # ASCII-escaped: a NUL or a lone surrogate someone pasted is text PostgreSQL cannot store.
        text = json.dumps(body, separators=(",", ":"))
        # A Slack id is printable ASCII; anything else (a forged form's NUL) must not fail the write,
        # or the request would be refused, and retried, forever.
        person = "".join(c for c in person[:120] if c.isascii() and c.isprintable())
        return await self._keep((kind, person, text))

    async def finish(self, ids: Sequence[int]) -> None:
        await self._finish(list(ids))

    async def _insert(self, session: DbSession, rows: list[tuple[str, str, str]]) -> list[int]:
        now = self._clock()
        return [
            await inbox_repo.keep(
                session,
                platform=self.platform,
                kind=kind,
                person=person,
                body=text,
                now=now,
                lease=self.lease,
            )
            for kind, person, text in rows
        ]

    async def _delete(self, session: DbSession, batches: list[list[int]]) -> list[None]:
        await inbox_repo.finish(session, ids=[row_id for ids in batches for row_id in ids])
        return [None] * len(batches)

    async def due(self, *, limit: int) -> list[Kept]:
        async with self.database.transaction() as session:
            rows = await inbox_repo.claim_due(
                session, platform=self.platform, now=self._clock(), lease=self.lease, limit=limit
            )
        return [
            Kept(
                id=row.id or 0,
                kind=row.kind,
                body=json.loads(row.body),
                received_at=row.received_at,
                attempts=row.attempts,
            )
            for row in rows
        ]
