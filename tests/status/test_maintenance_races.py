"""Two bot processes on one PostgreSQL database end the same maintenance window at the same moment:
the subscriptions hear it is over once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import select

from bot.core.events import CommandInvoked
from storage.db import Database
from storage.models import IncidentUpdate
from tests.harness import BotHarness, make_settings


async def test_two_staff_ending_one_window_at_once_tell_the_subscriptions_once(
    postgres_database: Database, tmp_path: Path
) -> None:
    first = await BotHarness.create(make_settings(tmp_path), database=postgres_database)
    second = await BotHarness.create(make_settings(tmp_path), database=postgres_database)
    try:
        await first.staff_runs(
            "/maintenance schedule payments 2026-11-24T09:30Z 2026-11-24T11:30Z Database upgrade"
        )
        for bot in (first, second):
            bot.clock.advance(hours=1)

        def end(bot: BotHarness, event_id: str) -> CommandInvoked:
            return CommandInvoked(
                actor=bot.staff,
                conversation=bot.staff_room,
                name="maintenance",
                args="end 1 The upgrade finished early",
                event_id=event_id,
            )

        # Each "process" has a connection ready, as a running bot would, so neither starts late.
        await asyncio.gather(*(postgres_database.ping() for _ in range(4)))
        # Two on-call engineers end the window; each command lands on a different process.
        await asyncio.gather(
            first.bot.dispatcher.handle(end(first, "end-a")),
            second.bot.dispatcher.handle(end(second, "end-b")),
        )
        replies = sorted(m.text.split(":")[0] for m in first.adapter.sent + second.adapter.sent)
        assert [r for r in replies if r.startswith("Ended") or "already over" in r] == [
            "Ended maintenance **#1**",
            "Maintenance #1 is already over.",
        ]
        async with postgres_database.session() as session:
            ended = (
                await session.execute(select(IncidentUpdate.body).where(IncidentUpdate.status == "completed"))
            ).scalars()
            assert list(ended) == ["The upgrade finished early"]
    finally:
        await first.close()
        await second.close()
