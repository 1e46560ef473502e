"""Discord gateway sessions a process had open, one row per shard, each kept by one process (its
owner): written about once a second while connected, taken over by another process once the owner
stopped refreshing it or handed it over at its stop, resumed, and forgotten."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlmodel import col

from storage import dialect
from storage.models import DiscordGatewaySession
from storage.session import DbSession


async def of_shards(session: DbSession, *, shard_ids: Sequence[int]) -> list[DiscordGatewaySession]:
    """The sessions stored for these shards, whoever keeps them."""
    result = await session.execute(
        select(DiscordGatewaySession)
        .where(col(DiscordGatewaySession.shard_id).in_(list(shard_ids)))
        .order_by(col(DiscordGatewaySession.shard_id))
    )
    return list(result.scalars())


async def claim(
    session: DbSession, *, shard_ids: Sequence[int], owner: str, at: datetime, stale_before: datetime
) -> list[DiscordGatewaySession]:
    """Take the rows of these shards that no live process keeps: handed over, or not refreshed since
    `stale_before`; `owner`'s from `at`. The condition is checked again by the UPDATE itself, so of
    two processes claiming at once one gets the row and the other sees it fresh."""
    rows = col(DiscordGatewaySession.shard_id).in_(list(shard_ids))
    free = or_(col(DiscordGatewaySession.owner) == "", col(DiscordGatewaySession.updated_at) < stale_before)
    result = await session.execute(
        update(DiscordGatewaySession)
        .where(rows, col(DiscordGatewaySession.owner) != owner, free)
        .values(owner=owner, updated_at=at)
        .returning(DiscordGatewaySession)
    )
    return sorted(result.scalars(), key=lambda row: row.shard_id)


async def save(
    session: DbSession,
    *,
    shard_id: int,
    session_id: str,
    resume_url: str,
    sequence: int,
    owner: str,
    at: datetime,
    hand_over: bool = False,
) -> bool:
    """Store the shard's session if the row is `owner`'s or there is none; False if another process
    keeps it. `hand_over` leaves it without an owner, for the next process to take at once."""
    values = {
        "session_id": session_id,
        "resume_url": resume_url,
        "sequence": sequence,
        "owner": "" if hand_over else owner,
        "updated_at": at,
    }
    statement = (
        dialect.insert(session, DiscordGatewaySession)
        .values(shard_id=shard_id, **values)
        .on_conflict_do_update(
            index_elements=["shard_id"], set_=values, where=col(DiscordGatewaySession.owner) == owner
        )
        .returning(col(DiscordGatewaySession.shard_id))
    )
    result = await session.execute(statement)
    return result.first() is not None


async def forget(session: DbSession, *, shard_id: int, session_id: str, owner: str) -> None:
    """Forget the shard's session if it is still `session_id` and `owner`'s (a newer one is kept)."""
    await session.execute(
        delete(DiscordGatewaySession).where(
            col(DiscordGatewaySession.shard_id) == shard_id,
            col(DiscordGatewaySession.session_id) == session_id,
            col(DiscordGatewaySession.owner) == owner,
        )
    )
