"""Writes that many callers hand in at once, committed together (the inbox, owed replies)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from storage.db import Database
from storage.session import DbSession

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Items handed in while a transaction runs are written together in the next one: a burst of
    requests costs a few commits, not one each. `write` gets a session and the items, and returns
    one result per item; a failure is raised to every caller of its batch."""

    def __init__(self, database: Database, write: Callable[[DbSession, list[T]], Awaitable[list[R]]]) -> None:
        self._database = database
        self._write = write
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self._database.transaction() as session:
                    results = await self._write(session, [item for item, _ in batch])
            except Exception as error:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():  # its caller went away meanwhile (a request cancelled)
                    done.set_result(result)
