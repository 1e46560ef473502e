"""Handled-event ids are remembered long enough to ignore a platform's retries, then forgotten, so the
dedupe table does not grow forever."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from bot.app import create_bot
from bot.core.events import Platform
from bot.core.retention import forget_old_events, run_forever
from storage import events_repo
from storage.db import Database
from storage.models import ProcessedEvent
from storage.types import utcnow
from tests.fake_adapter import FakeAdapter
from tests.harness import FakeClock, make_settings


async def _handled(database: Database, *ids: str, days_ago: float = 0) -> None:
    async with database.transaction() as session:
        for event_id in ids:
            assert await events_repo.claim_event(session, platform="slack", event_id=event_id)
        if days_ago:
            await session.execute(
                update(ProcessedEvent)
                .where(ProcessedEvent.event_id.in_(ids))  # type: ignore[attr-defined]
                .values(handled_at=utcnow() - timedelta(days=days_ago))
            )


async def _remembered(database: Database) -> int:
    async with database.transaction() as session:
        return (await session.execute(select(func.count()).select_from(ProcessedEvent))).scalar_one()


async def _start_and_stop(database: Database, tmp_path: object, *, retention_hours: float) -> None:
    """A bot with DEDUPE_RETENTION_HOURS=`retention_hours` started and stopped: stopping waits for
    the housekeeping's first pass, which runs at start."""
    settings = make_settings(tmp_path).model_copy(update={"dedupe_retention_hours": retention_hours})
    bot = await create_bot(
        settings,
        adapters={Platform.CONSOLE: FakeAdapter(Platform.CONSOLE)},
        clock=FakeClock(),
        database=database,
        with_web=False,
    )
    await bot.start()
    await bot.stop()


async def _until_forgotten(database: Database) -> None:
    for _ in range(500):
        if not await _remembered(database):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the claims were not forgotten within 5 s")


async def test_claims_older_than_the_retention_are_forgotten_in_batches(database: Database) -> None:
    await _handled(database, *(f"old-{n}" for n in range(7)), days_ago=8)
    await _handled(database, *(f"new-{n}" for n in range(5)), days_ago=1)

    forgotten = await forget_old_events(database, before=utcnow() - timedelta(days=7), batch=3)

    assert forgotten == 7
    assert await _remembered(database) == 5
    async with database.transaction() as session:
        # A retry of a recent event is still recognised; an event from last week counts as new.
        assert not await events_repo.claim_event(session, platform="slack", event_id="new-0")
        assert await events_repo.claim_event(session, platform="slack", event_id="old-0")


async def test_nothing_to_forget_deletes_nothing(database: Database) -> None:
    await _handled(database, "e1", "e2")
    assert await forget_old_events(database, before=utcnow() - timedelta(days=7)) == 0
    assert await _remembered(database) == 2


async def test_the_running_bot_forgets_old_claims_and_keeps_recent_ones(
    database: Database, tmp_path: object
) -> None:
    await _handled(database, "last-month", days_ago=30)
    await _handled(database, "yesterday", days_ago=1)
    await _start_and_stop(database, tmp_path, retention_hours=7 * 24)

    async with database.transaction() as session:
        kept = (await session.execute(select(ProcessedEvent.event_id))).scalars().all()
    assert kept == ["yesterday"]


async def test_a_claim_still_owing_replies_outlives_the_retention(database: Database) -> None:
    """A retention shorter than a day (the longest a reply is owed) must not lose the replies."""
    async with database.transaction() as session:
        claim = await events_repo.claim_event(
            session,
            platform="slack",
            event_id="owing",
            owed="[]",
            owed_until=utcnow() + timedelta(seconds=30),
        )
        await session.execute(
            update(ProcessedEvent)
            .where(ProcessedEvent.event_id == "owing")  # type: ignore[arg-type]
            .values(handled_at=utcnow() - timedelta(hours=2))
        )

    assert await forget_old_events(database, before=utcnow() - timedelta(hours=1)) == 0

    async with database.transaction() as session:
        await events_repo.settle_owed(session, ids=[claim or 0])
    assert await forget_old_events(database, before=utcnow() - timedelta(hours=1)) == 1


async def test_a_short_retention_keeps_the_digest_claim_its_catch_up_reads(
    database: Database, tmp_path: object
) -> None:
    """With DEDUPE_RETENTION_HOURS=1, the digest sent at Monday 09:00 and a restart at 12:00: the
    restarted bot's catch-up asks whether that digest went out, so its claim must still be there,
    or the staff channel gets the week's digest twice."""
    async with database.transaction() as session:
        assert await events_repo.claim_event(session, platform="digest", event_id="report:monday")
        await session.execute(
            update(ProcessedEvent)
            .where(ProcessedEvent.event_id == "report:monday")  # type: ignore[arg-type]
            .values(handled_at=utcnow() - timedelta(hours=3))
        )
    await _start_and_stop(database, tmp_path, retention_hours=1)

    async with database.transaction() as session:
        assert not await events_repo.claim_event(session, platform="digest", event_id="report:monday")


async def test_stopping_the_bot_does_not_start_another_housekeeping_pass(database: Database) -> None:
    """The bot waits for housekeeping before it answers the events it already accepted: a stop
    during the hour between passes must end it at once, not run one more."""
    await _handled(database, "before-start", days_ago=8)
    stop = asyncio.Event()
    housekeeping = asyncio.create_task(
        run_forever(database, keep=timedelta(days=7), clock=utcnow, stop=stop, every=3600)
    )
    await _until_forgotten(database)  # by the pass at start
    await _handled(database, "after-the-first-pass", days_ago=8)

    stop.set()
    await asyncio.wait_for(housekeeping, 5)

    assert await _remembered(database) == 1, "no pass ran at the stop"
