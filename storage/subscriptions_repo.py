"""Status subscriptions: the channels and DMs that get status updates, and for which components."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlmodel import col

from storage.models import StatusSubscription
from storage.session import DbSession
from storage.status_repo import join_names, split_names


async def subscribe(
    session: DbSession,
    *,
    platform: str,
    workspace_id: str,
    channel_id: str,
    is_direct: bool,
    components: Sequence[str],
    actor_key: str,
) -> StatusSubscription:
    """Subscribe (or re-subscribe, replacing the component filter and re-enabling) a channel or DM."""
    found = await get_subscription(
        session, platform=platform, workspace_id=workspace_id, channel_id=channel_id
    )
    if found is None:
        found = StatusSubscription(
            platform=platform, workspace_id=workspace_id, channel_id=channel_id, is_direct=is_direct
        )
        session.add(found)
    found.components = join_names(components)
    found.active = True
    found.disabled_reason = ""
    found.created_by = actor_key
    await session.flush()
    return found


async def get_subscription(
    session: DbSession, *, platform: str, workspace_id: str, channel_id: str
) -> StatusSubscription | None:
    result = await session.execute(
        select(StatusSubscription).where(
            col(StatusSubscription.platform) == platform,
            col(StatusSubscription.workspace_id) == workspace_id,
            col(StatusSubscription.channel_id) == channel_id,
        )
    )
    return result.scalar_one_or_none()


async def unsubscribe(session: DbSession, *, platform: str, workspace_id: str, channel_id: str) -> bool:
    found = await get_subscription(
        session, platform=platform, workspace_id=workspace_id, channel_id=channel_id
    )
    if found is None or not found.active:
        return False
    found.active = False
    found.disabled_reason = "unsubscribed"
    await session.flush()
    return True


async def list_subscriptions(session: DbSession, *, active_only: bool = True) -> list[StatusSubscription]:
    statement = select(StatusSubscription).order_by(col(StatusSubscription.id))
    if active_only:
        statement = statement.where(col(StatusSubscription.active).is_(True))
    result = await session.execute(statement)
    return list(result.scalars())


async def disable_subscription(session: DbSession, *, subscription_id: int, reason: str) -> bool:
    """Stop sending to a channel the bot cannot post in. True only for the call that disabled it, so
    staff are told once even when several deliveries fail together."""
    result = await session.execute(
        update(StatusSubscription)
        .where(col(StatusSubscription.id) == subscription_id, col(StatusSubscription.active).is_(True))
        .values(active=False, disabled_reason=reason[:200])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE returns a CursorResult


def matches(subscription: StatusSubscription, components: Sequence[str]) -> bool:
    wanted = split_names(subscription.components)
    return not wanted or not components or bool(set(wanted) & set(components))
