"""The knowledge base's view of its real traffic: its customers' recent questions, asked again of
the current KB, tell it how many have no entry, and it aims its precision at that mix
(`bot.kb.traffic`). At start, every few hours, and soon after each KB reload. The questions are
read from the database for each pass and not kept after it, so a question erased at a person's
request is out of the next pass and out of memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.core import periodic
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
# How often the reader checks whether the KB was reloaded (and needs a fresh look).
RELOAD_CHECK = timedelta(seconds=30)


async def observe(
    database: Database,
    kb: KnowledgeBaseHolder,
    *,
    now: datetime,
    limit: int = LIMIT,
    stop: asyncio.Event | None = None,
) -> TrafficShare | None:
    """Ask the KB its customers' recent questions and let it choose its operating point for them.
    With `stop`, a pass in progress gives up (None) soon after it is set."""
    async with database.session() as session:
        questions = await decisions_repo.customer_questions(
            session, since=now - WINDOW, limit=limit, leave_out=(ERASED, EXPIRED)
        )
    stopping = stop.is_set if stop is not None else (lambda: False)
    return await asyncio.to_thread(kb.observe_traffic, questions, stopping=stopping)


async def run_forever(
    database: Database,
    kb: KnowledgeBaseHolder,
    *,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    every: timedelta = EVERY,
    reload_check: timedelta = RELOAD_CHECK,
) -> None:
    """`observe` at start, every `every` and within `RELOAD_CHECK` of a KB reload, until `stop` is
    set. A failed pass is logged; answering goes on at the point the KB already has."""
    while not stop.is_set():
        seen = kb.reloads
        await periodic.one_pass(
            lambda: observe(database, kb, now=clock(), stop=stop),
            log=log,
            failed="reading recent traffic for the knowledge base failed; trying again later",
        )
        waited = timedelta()
        while waited < every and kb.reloads == seen and not stop.is_set():
            step = min(reload_check, every - waited)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), step.total_seconds())
            waited += step
