"""Discord gateway sessions a process had open, one row per shard: written about once a second while
connected, read and forgotten by the next process once it has resumed them (after a crash)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel import col

from storage import dialect
from storage.models import DiscordGatewaySession
from storage.session import DbSession


async def of_shards(session: DbSession, *, shard_ids: Sequence[int]) -> list[DiscordGatewaySession]:
    """The sessions stored for these shards (a process reads only its own)."""
    result = await session.execute(
        select(DiscordGatewaySession)
        .where(col(DiscordGatewaySession.shard_id).in_(list(shard_ids)))
        .order_by(col(DiscordGatewaySession.shard_id))
    )
    return list(result.scalars())


async def save(
    session: DbSession, *, shard_id: int, session_id: str, resume_url: str, sequence: int, at: datetime
) -> None:
    """The shard's session now: one row per shard, replaced by a new session."""
    values = {"session_id": session_id, "resume_url": resume_url, "sequence": sequence, "updated_at": at}
    statement = dialect.insert(session, DiscordGatewaySession).values(shard_id=shard_id, **values)
    await session.execute(statement.on_conflict_do_update(index_elements=["shard_id"], set_=values))


async def forget(session: DbSession, *, shard_id: int, session_id: str) -> None:
    """Forget the shard's session if it is still `session_id` (a newer one is kept)."""
    await session.execute(
        delete(DiscordGatewaySession).where(
            col(DiscordGatewaySession.shard_id) == shard_id,
            col(DiscordGatewaySession.session_id) == session_id,
        )
    )
