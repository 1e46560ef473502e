"""The inbox: what a platform sent, written to the database before the bot acknowledges it.

A platform that has its acknowledgement never sends the request again (Slack), so a process killed
between the acknowledgement and the commit of the event's handling would lose it. An adapter that
`KeepsInbox` writes the raw request first (and does not acknowledge when it cannot), finishes the
row once the dispatcher has settled the event, and replays the rows whose lease ran out: their
process died. The dispatcher's claim on (platform, event id) makes a replay of an event that was in
fact handled a duplicate, so a replay never acts twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bot.core.clock import utc_now
from storage import inbox_repo
from storage.db import Database


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
    """The inbox of one platform in the bot's database."""

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
        self._waiting: list[tuple[str, str, str, asyncio.Future[int]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def keep(self, *, kind: str, person: str, body: Mapping[str, Any]) -> int:
        # ASCII-escaped: a NUL or a lone surrogate someone pasted is text PostgreSQL cannot store.
        text = json.dumps(body, separators=(",", ":"))
        stored: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        # A Slack id is printable ASCII; anything else (a forged form's NUL) must not fail the write,
        # or the request would be refused, and retried, forever.
        person = "".join(c for c in person[:120] if c.isascii() and c.isprintable())
        self._waiting.append((kind, person, text, stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await stored

    async def _write(self) -> None:
        """Group commit: the requests that arrived while the previous commit ran are written in one
        transaction. A burst of requests then costs a few commits, not one each, so the
        acknowledgements (which wait for it) stay fast."""
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self.database.transaction() as session:
                    now = self._clock()
                    ids = [
                        await inbox_repo.keep(
                            session,
                            platform=self.platform,
                            kind=kind,
                            person=person,
                            body=text,
                            now=now,
                            lease=self.lease,
                        )
                        for kind, person, text, _ in batch
                    ]
            except Exception as error:
                for *_, stored in batch:
                    if not stored.done():
                        stored.set_exception(error)
                continue
            for (*_, stored), row_id in zip(batch, ids, strict=True):
                if not stored.done():  # its request went away meanwhile: the row is replayed
                    stored.set_result(row_id)

    async def finish(self, ids: Sequence[int]) -> None:
        async with self.database.transaction() as session:
            await inbox_repo.finish(session, ids=ids)

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
