"""Inbound events are handled once per (platform, event id): retries and racing processes included."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.dispatch import Outcome
from bot.core.events import MessageReceived
from storage import events_repo
from storage.db import Database
from tests.harness import BotHarness


async def test_a_redelivered_event_is_handled_once(bot: BotHarness) -> None:
    event = MessageReceived(
        actor=bot.customer, conversation=bot.community, text="hello", message_id="m1", event_id="Ev1"
    )
    first = await bot.send(event)
    again = await bot.send(event)
    assert len(first) == 1 and again == []
    assert bot.last_outcome is Outcome.DUPLICATE


async def test_same_event_id_on_another_platform_is_a_different_event(database: Database) -> None:
    async with database.transaction() as session:
        assert await events_repo.claim_event(session, platform="slack", event_id="E1")
        assert await events_repo.claim_event(session, platform="discord", event_id="E1")
        assert not await events_repo.claim_event(session, platform="slack", event_id="E1")


async def test_a_rolled_back_claim_does_not_count(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            assert await events_repo.claim_event(session, platform="slack", event_id="E2")
            raise RuntimeError("handler failed")
    async with database.transaction() as session:
        assert await events_repo.claim_event(session, platform="slack", event_id="E2")


@pytest.mark.postgres
async def test_two_sessions_racing_on_one_event_id_claim_it_once(postgres_database: Database) -> None:
    database = postgres_database
    first_claimed = asyncio.Event()
    results: dict[str, bool] = {}

    async def first() -> None:
        async with database.transaction() as session:
            results["first"] = (
                await events_repo.claim_event(session, platform="slack", event_id="RACE") is not None
            )
            first_claimed.set()
            await asyncio.sleep(0.3)  # hold the uncommitted row while the second one tries

    async def second() -> None:
        await first_claimed.wait()
        async with database.transaction() as session:
            results["second"] = (
                await events_repo.claim_event(session, platform="slack", event_id="RACE") is not None
            )

    await asyncio.gather(first(), second())
    assert results == {"first": True, "second": False}


async def test_many_concurrent_claims_of_one_id_yield_one_winner(database: Database) -> None:
    async def claim() -> bool:
        async with database.transaction() as session:
            return await events_repo.claim_event(session, platform="discord", event_id="BURST") is not None

    results = await asyncio.gather(*(claim() for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]
