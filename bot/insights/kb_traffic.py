"""The knowledge base's view of its real traffic: its customers' recent questions, asked again of
the current KB, tell it how many have no entry, and it aims its precision at that mix
(`bot.kb.traffic`). At start, then every few hours; a KB reload keeps the questions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.core.privacy import ERASED, EXPIRED
from bot.kb.knowledge_base import KnowledgeBaseHolder
from bot.kb.traffic import TrafficShare
from storage import decisions_repo
from storage.db import Database

log = logging.getLogger(__name__)

# A month of questions, the last thousand at most: enough to estimate a share within a few points,
# and asking them again takes seconds even with the semantic matcher.
WINDOW = timedelta(days=30)
LIMIT = 1000
EVERY = timedelta(hours=6)


async def observe(
    database: Database, kb: KnowledgeBaseHolder, *, now: datetime, limit: int = LIMIT
) -> TrafficShare | None:
    """Ask the KB its customers' recent questions and let it choose its operating point for them."""
    async with database.session() as session:
        questions = await decisions_repo.customer_questions(
            session, since=now - WINDOW, limit=limit, leave_out=(ERASED, EXPIRED)
        )
    return await asyncio.to_thread(kb.observe_traffic, questions)


async def run_forever(
    database: Database,
    kb: KnowledgeBaseHolder,
    *,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    every: timedelta = EVERY,
) -> None:
    """`observe` at start and every `every` until `stop` is set. A failed pass is logged; answering
    goes on at the point the KB already has."""
    while not stop.is_set():
        try:
            await observe(database, kb, now=clock())
        except Exception:
            log.exception("reading recent traffic for the knowledge base failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every.total_seconds())
