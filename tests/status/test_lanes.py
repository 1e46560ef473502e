"""Rate-limited lanes are paced by one process at a time, and can be taken again once released or
once their owner's lease ran out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage import outbox_repo
from storage.db import Database

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


async def test_one_owner_per_lane_until_released_or_expired(database: Database) -> None:
    async with database.transaction() as session:
        assert await outbox_repo.acquire_lane(session, lane="discord", owner="a", now=NOW, lease=LEASE)
        assert not await outbox_repo.acquire_lane(session, lane="discord", owner="b", now=NOW, lease=LEASE)
        assert await outbox_repo.acquire_lane(session, lane="discord", owner="a", now=NOW, lease=LEASE)
        assert await outbox_repo.acquire_lane(session, lane="slack:T1", owner="b", now=NOW, lease=LEASE)

        await outbox_repo.release_lane(session, lane="discord", owner="a")
        assert await outbox_repo.acquire_lane(session, lane="discord", owner="b", now=NOW, lease=LEASE)
        assert await outbox_repo.acquire_lane(session, lane="discord", owner="b", now=NOW, lease=LEASE)

        later = NOW + LEASE + timedelta(seconds=1)  # b died without releasing
        assert await outbox_repo.acquire_lane(session, lane="discord", owner="a", now=later, lease=LEASE)
        await outbox_repo.release_lane(session, lane="discord", owner="a")
        assert await outbox_repo.acquire_lane(session, lane="discord", owner="a", now=later, lease=LEASE)
