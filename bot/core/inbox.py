"""The inbox: what a platform sent, written to the database before the bot acknowledges it.

A platform that has its acknowledgement never sends the request again (Slack), so a process killed
between the acknowledgement and the commit of the event's handling would lose it. An adapter that
`KeepsInbox` writes the raw request first (and does not acknowledge when it cannot), finishes the
row once the dispatcher has settled the event, and replays the rows whose lease ran out: their
process died. A process renews the lease of the rows it is still handling (`DatabaseInbox.renew_held`,
on the dispatcher's renewal tick), so a slow handler is not run again by another process meanwhile.
The dispatcher's claim on (platform, event id) makes a replay of an event that was in
fact handled a duplicate, so a replay never acts twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from bot.core import leases
from bot.core.clock import utc_now
from bot.core.group_commit import GroupCommit
from storage import inbox_repo
from storage.db import Database
from storage.models import InboxEntry
from storage.session import DbSession

log = logging.getLogger(__name__)

REPLAY_BATCH = 50
"""Rows claimed per replay query."""
REPLAY_ATTEMPTS = 5
"""The replays a request gets before it is given up: one whose reading fails every time must not
come back forever."""


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

    def release(self, ids: Sequence[int]) -> None:
        """This process no longer works on the rows (reading them again failed): their lease is no
        longer renewed, so any process replays them once it runs out."""

    async def of_person(self, person: str) -> list[Kept]:
        """The rows `person` sent that are still there, whoever holds them: read, not claimed."""
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
        # The rows this process is handling (kept or claimed). One it holds past the ceiling is
        # stuck: its lease runs out and a replay tries it again (the claim still makes it act once).
        self._held = leases.Held(what="inbox rows", lease=lease)

    async def keep(self, *, kind: str, person: str, body: Mapping[str, Any]) -> int:
        # ASCII-escaped: a NUL or a lone surrogate someone pasted is text PostgreSQL cannot store.
        text = json.dumps(body, separators=(",", ":"))
        # A Slack id is printable ASCII; anything else (a forged form's NUL) must not fail the write,
        # or the request would be refused, and retried, forever.
        person = "".join(c for c in person[:120] if c.isascii() and c.isprintable())
        row_id, until = await self._keep((kind, person, text))
        self._held.take(row_id, until=until)
        return row_id

    async def finish(self, ids: Sequence[int]) -> None:
        self.release(ids)
        await self._finish(list(ids))

    def release(self, ids: Sequence[int]) -> None:
        self._held.release(ids)

    async def renew_held(self) -> None:
        """Hold on to the rows this process is still handling once half their lease is gone: a
        handler slower than the lease must not be run again by another process's replay."""
        await self._held.renew(self._renew, now=self._clock())

    async def _renew(self, held: Mapping[int, datetime], until: datetime) -> list[int]:
        async with self.database.transaction() as session:
            return await inbox_repo.renew(session, held=held, until=until)

    async def _insert(
        self, session: DbSession, rows: list[tuple[str, str, str]]
    ) -> list[tuple[int, datetime]]:
        now = self._clock()
        return [
            (
                await inbox_repo.keep(
                    session,
                    platform=self.platform,
                    kind=kind,
                    person=person,
                    body=text,
                    now=now,
                    lease=self.lease,
                ),
                now + self.lease,
            )
            for kind, person, text in rows
        ]

    async def _delete(self, session: DbSession, batches: list[list[int]]) -> list[None]:
        await inbox_repo.finish(session, ids=[row_id for ids in batches for row_id in ids])
        return [None] * len(batches)

    async def due(self, *, limit: int) -> list[Kept]:
        now = self._clock()
        async with self.database.transaction() as session:
            rows = await inbox_repo.claim_due(
                session, platform=self.platform, now=now, lease=self.lease, limit=limit
            )
        kept = [_kept(row) for row in rows]
        for row in kept:
            self._held.take(row.id, until=now + self.lease, since=now)
        return kept

    async def of_person(self, person: str) -> list[Kept]:
        async with self.database.session() as session:
            rows = await inbox_repo.of_person(session, platform=self.platform, person=person)
        return [_kept(row) for row in rows]


def _kept(row: InboxEntry) -> Kept:
    return Kept(
        id=row.id or 0,
        kind=row.kind,
        body=json.loads(row.body),
        received_at=row.received_at,
        attempts=row.attempts,
    )


async def finish_kept(inbox: Inbox | None, ids: Sequence[int]) -> None:
    """Delete the rows of a settled event. A failure is only logged: the row is replayed after its
    lease, and the dispatcher's claim makes that a duplicate, which then finishes it."""
    if inbox is None or not ids:
        return
    try:
        await inbox.finish(ids)
    except Exception as error:
        log.warning("could not finish inbox rows %s: %s", list(ids), type(error).__name__)


async def replay_due(
    inbox: Inbox,
    *,
    platform: str,
    take: Callable[[Kept, float], None],
    receiving: Callable[[], bool],
) -> int:
    """Hand `take` (with its age in seconds) every row whose lease ran out, while `receiving()`;
    a row replayed `REPLAY_ATTEMPTS` times already is given up (finished) instead. How many were
    claimed."""
    claimed = 0
    while receiving():
        rows = await inbox.due(limit=REPLAY_BATCH)
        claimed += len(rows)
        now = utc_now()
        for row in rows:
            age = max(0.0, (now - row.received_at).total_seconds())
            if row.attempts > REPLAY_ATTEMPTS:
                log.warning(
                    "%s %s received %.0f s ago: given up after %d replays",
                    platform,
                    row.kind,
                    age,
                    row.attempts - 1,
                )
                await finish_kept(inbox, [row.id])
                continue
            log.info(
                "replaying a %s %s received %.0f s ago, left unfinished by a stopped process",
                platform,
                row.kind,
                age,
            )
            take(row, age)
        if len(rows) < REPLAY_BATCH:
            break
    return claimed


async def replay_forever(replay: Callable[[], Awaitable[object]], *, platform: str, every: float) -> None:
    """Run `replay` now and every `every` seconds; a database that cannot be read is tried again."""
    while True:
        try:
            await replay()
        except Exception as error:
            log.warning("could not read the %s inbox: %s", platform, type(error).__name__)
        await asyncio.sleep(every)
