"""The broadcast outbox: fan-out rows written with the change, claimed once, leased.

Claiming is one UPDATE ... WHERE id IN (SELECT ... LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING, so
two processes never claim the same row: on PostgreSQL the row locks are skipped by the other
claimer; on SQLite the single writer serialises the statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, insert, or_, select, text, update
from sqlmodel import col

from storage import dialect, subscriptions_repo
from storage.models import Broadcast, BroadcastLane, IncidentThread, OutboxDelivery
from storage.session import DbSession

PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"
KEPT = "kept"
"""The kind of a row that holds a whole message as data in `body` (a ticket clock's notice, with
where it goes instead when its place refuses it), outside any broadcast."""


def lane_for(platform: str, workspace_id: str) -> str:
    """The rate-limit domain a message counts against: Discord's global per-bot bucket, or one
    Slack workspace (other platforms: one lane per workspace)."""
    if platform == "discord":
        return "discord"
    return f"{platform}:{workspace_id}"


# -- writing the outbox -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recipient:
    """Somewhere a one-off notice goes (a customer's thread), outside any subscription."""

    platform: str
    workspace_id: str
    channel_id: str
    thread_id: str | None
    is_direct: bool


async def create_broadcast(
    session: DbSession,
    *,
    kind: str,
    incident_id: int | None,
    title: str,
    body: str,
    components: Sequence[str],
    at: datetime,
    edit_first_notice: bool = False,
    recipients: Sequence[tuple[str, Recipient, str]] = (),
) -> Broadcast:
    """Queue one message for every active subscription matching `components` (all when empty).

    kind "open"/"announce" posts top-level; "update"/"resolve"/"reopen" go in the incident's thread in each
    channel and, with `edit_first_notice`, add an edit of the first notice (rendered when sent, so it
    shows the state at that moment). `recipients` are extra one-off notices (key, where, text).
    """
    broadcast = Broadcast(incident_id=incident_id, kind=kind, created_at=at)
    session.add(broadcast)
    await session.flush()
    rows: list[dict[str, object]] = []
    message_kind = "notice" if kind in ("open", "announce") else "update"

    def row(
        key: str, row_kind: str, where: Recipient, subscription_id: int | None, row_body: str
    ) -> dict[str, object]:
        return {
            "key": key,
            "broadcast_id": broadcast.id,
            "subscription_id": subscription_id,
            "incident_id": incident_id,
            "kind": row_kind,
            "lane": lane_for(where.platform, where.workspace_id),
            "platform": where.platform,
            "workspace_id": where.workspace_id,
            "channel_id": where.channel_id,
            "thread_id": where.thread_id,
            "is_direct": where.is_direct,
            "title": "" if row_kind == "direct" else title[:300],
            "body": row_body,
            "state": PENDING,
            "attempts": 0,
            "lease_owner": "",
            "sent_message_id": "",
            "error": "",
        }

    for subscription in await subscriptions_repo.list_subscriptions(session):
        if not subscriptions_repo.matches(subscription, components):
            continue
        where = Recipient(
            subscription.platform,
            subscription.workspace_id,
            subscription.channel_id,
            None,
            subscription.is_direct,
        )
        rows.append(row(f"b{broadcast.id}s{subscription.id}", message_kind, where, subscription.id, body))
        if edit_first_notice and incident_id is not None:
            rows.append(row(f"b{broadcast.id}s{subscription.id}e", "edit", where, subscription.id, ""))
    for key, where, notice in recipients:
        rows.append(row(f"b{broadcast.id}{key}", "direct", where, None, notice))
    if rows:
        await session.execute(insert(OutboxDelivery), rows)
    broadcast.total = sum(1 for r in rows if r["kind"] != "edit")
    await session.flush()
    return broadcast


async def keep(
    session: DbSession, *, key: str, where: Recipient, message: str, owner: str, until: datetime
) -> OutboxDelivery:
    """Queue one kept message (`KEPT`), claimed by `owner` until `until`: the process that decided
    it sends it once this transaction commits; should that process die first, any worker claims it
    when the lease has run out and sends it again under the same key."""
    row = OutboxDelivery(
        key=key,
        kind=KEPT,
        lane=lane_for(where.platform, where.workspace_id),
        platform=where.platform,
        workspace_id=where.workspace_id,
        channel_id=where.channel_id,
        thread_id=where.thread_id,
        is_direct=where.is_direct,
        body=message,
        state=SENDING,
        attempts=1,
        lease_owner=owner,
        lease_until=until,
    )
    session.add(row)
    await session.flush()
    return row


async def hold(session: DbSession, *, delivery: OutboxDelivery, owner: str, until: datetime) -> bool:
    """Renew `owner`'s claim on the row until `until`; False when it is no longer theirs (its lease
    ran out and another process took it)."""
    result = await session.execute(
        update(OutboxDelivery).where(_held(delivery, owner)).values(lease_until=until)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE returns a CursorResult


async def set_progress_message(
    session: DbSession,
    *,
    broadcast_id: int,
    platform: str,
    workspace_id: str,
    channel_id: str,
    message_id: str,
) -> None:
    await session.execute(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast_id)
        .values(
            progress_platform=platform,
            progress_workspace_id=workspace_id,
            progress_channel_id=channel_id,
            progress_message_id=message_id,
        )
    )


# -- claiming and settling ----------------------------------------------------------------------------


def _claimable(lane: str, now: datetime) -> ColumnElement[bool]:
    return and_(
        col(OutboxDelivery.lane) == lane,
        or_(
            and_(
                col(OutboxDelivery.state) == PENDING,
                or_(col(OutboxDelivery.next_at).is_(None), col(OutboxDelivery.next_at) <= now),
            ),
            # A claim whose lease ran out: the process that held it died or hung mid-send.
            and_(col(OutboxDelivery.state) == SENDING, col(OutboxDelivery.lease_until) < now),
        ),
    )


async def claim(
    session: DbSession, *, lane: str, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[OutboxDelivery]:
    """Claim up to `limit` due rows of `lane`, oldest first; their lease runs until now + lease."""
    row_id = col(OutboxDelivery.id)
    statement = (
        dialect.claim_due(
            session, OutboxDelivery, id_column=row_id, due=_claimable(lane, now), order_by=row_id, limit=limit
        )
        .values(
            state=SENDING,
            lease_owner=owner,
            lease_until=now + lease,
            attempts=col(OutboxDelivery.attempts) + 1,
        )
        .returning(OutboxDelivery)
    )
    result = await session.execute(statement)
    return sorted(result.scalars(), key=lambda r: r.id or 0)


async def lanes_with_work(session: DbSession, *, now: datetime) -> list[str]:
    """Lanes with a row claimable now."""
    result = await session.execute(
        select(col(OutboxDelivery.lane))
        .where(
            or_(
                and_(
                    col(OutboxDelivery.state) == PENDING,
                    or_(col(OutboxDelivery.next_at).is_(None), col(OutboxDelivery.next_at) <= now),
                ),
                and_(col(OutboxDelivery.state) == SENDING, col(OutboxDelivery.lease_until) < now),
            )
        )
        .distinct()
    )
    return sorted(result.scalars())


async def next_due(session: DbSession, *, lane: str) -> datetime | None:
    """When the earliest deferred or leased row of `lane` becomes claimable (None: nothing waits)."""
    result = await session.execute(
        select(func.min(func.coalesce(col(OutboxDelivery.next_at), col(OutboxDelivery.lease_until)))).where(
            col(OutboxDelivery.lane) == lane,
            col(OutboxDelivery.state).in_((PENDING, SENDING)),
        )
    )
    return result.scalar_one_or_none()


async def acquire_lane(session: DbSession, *, lane: str, owner: str, now: datetime, lease: timedelta) -> bool:
    """Take (or renew) the right to pace `lane`. One process per lane keeps a rate limit that is
    per bot or per workspace honoured however many processes run."""
    statement = dialect.insert(session, BroadcastLane).values(lane=lane, owner=owner, lease_until=now + lease)
    statement = statement.on_conflict_do_update(
        index_elements=["lane"],
        set_={"owner": owner, "lease_until": now + lease},
        where=or_(
            col(BroadcastLane.owner) == owner,
            col(BroadcastLane.owner) == "",  # released
            col(BroadcastLane.lease_until) < now,
        ),
    )
    result = await session.execute(statement.returning(col(BroadcastLane.lane)))
    return result.scalar_one_or_none() is not None


async def release_lane(session: DbSession, *, lane: str, owner: str) -> None:
    await session.execute(
        update(BroadcastLane)
        .where(col(BroadcastLane.lane) == lane, col(BroadcastLane.owner) == owner)
        .values(owner="", lease_until=None)
    )


def _held(delivery: OutboxDelivery, owner: str) -> ColumnElement[bool]:
    """The row is still claimed by `owner`: only the lease holder may settle it."""
    return and_(
        col(OutboxDelivery.id) == delivery.id,
        col(OutboxDelivery.lease_owner) == owner,
        col(OutboxDelivery.state) == SENDING,
    )


def _settled_body() -> ColumnElement[str]:
    """What a settled row keeps of its message: a kept one (a ticket's notice, with the customer's
    name and where they are) nothing, for it is never sent again; a broadcast's its text."""
    return case((col(OutboxDelivery.kind) == KEPT, ""), else_=col(OutboxDelivery.body))


async def mark_sent(
    session: DbSession, *, delivery: OutboxDelivery, owner: str, message_id: str, at: datetime
) -> bool:
    """Record the send. Only the lease holder may settle a row; False means the lease was lost
    (another process took it over) and the caller must not count it."""
    result = await session.execute(
        update(OutboxDelivery)
        .where(_held(delivery, owner))
        .values(state=SENT, sent_message_id=message_id, sent_at=at, error="", body=_settled_body())
    )
    settled = bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE returns a CursorResult
    if (
        settled
        and delivery.kind in ("notice", "update")
        and delivery.subscription_id
        and delivery.incident_id
    ):
        # The first message an incident put in a channel becomes its thread; later ones thread under it.
        await session.execute(
            dialect.insert(session, IncidentThread)
            .values(
                incident_id=delivery.incident_id,
                subscription_id=delivery.subscription_id,
                message_id=message_id,
            )
            .on_conflict_do_nothing()
        )
    return settled


async def mark_retry(
    session: DbSession,
    *,
    delivery: OutboxDelivery,
    owner: str,
    next_at: datetime,
    error: str,
    refund: bool = False,
) -> None:
    """Back to pending until `next_at`. `refund` undoes the attempt count (deferred, not failed)."""
    values: dict[str, object] = {
        "state": PENDING,
        "next_at": next_at,
        "error": error[:300],
        "lease_until": None,
    }
    if refund:
        values["attempts"] = col(OutboxDelivery.attempts) - 1
    await session.execute(update(OutboxDelivery).where(_held(delivery, owner)).values(**values))


async def mark_final(
    session: DbSession, *, delivery: OutboxDelivery, owner: str, state: str, error: str
) -> None:
    await session.execute(
        update(OutboxDelivery)
        .where(_held(delivery, owner))
        .values(state=state, error=error[:300], lease_until=None, body=_settled_body())
    )


async def skip_pending_for(session: DbSession, *, subscription_id: int, reason: str) -> set[int]:
    """A disabled subscription's queued rows will never be sent: settle them as skipped. Returns the
    broadcasts they belonged to (one may now be complete without any send of this worker's)."""
    result = await session.execute(
        update(OutboxDelivery)
        .where(col(OutboxDelivery.subscription_id) == subscription_id, col(OutboxDelivery.state) == PENDING)
        .values(state=SKIPPED, error=reason[:300])
        .returning(col(OutboxDelivery.broadcast_id))
    )
    return {broadcast_id for (broadcast_id,) in result.all() if broadcast_id is not None}


async def thread_for(session: DbSession, *, incident_id: int, subscription_id: int) -> str | None:
    result = await session.execute(
        select(col(IncidentThread.message_id)).where(
            col(IncidentThread.incident_id) == incident_id,
            col(IncidentThread.subscription_id) == subscription_id,
        )
    )
    return result.scalar_one_or_none()


async def first_notice_pending(
    session: DbSession, *, incident_id: int, subscription_id: int, exclude_id: int | None
) -> bool:
    """Whether an earlier message of this incident to this subscription is still on its way."""
    result = await session.execute(
        select(func.count())
        .select_from(OutboxDelivery)
        .where(
            col(OutboxDelivery.incident_id) == incident_id,
            col(OutboxDelivery.subscription_id) == subscription_id,
            col(OutboxDelivery.kind).in_(("notice", "update")),
            col(OutboxDelivery.state).in_((PENDING, SENDING)),
            col(OutboxDelivery.id) < (exclude_id or 2**62),
        )
    )
    return bool(result.scalar_one())


@dataclass(frozen=True, slots=True)
class Progress:
    total: int
    sent: int
    failed: int
    pending: int

    @property
    def done(self) -> bool:
        return self.pending == 0


async def progress(session: DbSession, *, broadcast_id: int) -> Progress:
    result = await session.execute(
        select(col(OutboxDelivery.state), func.count())
        .where(col(OutboxDelivery.broadcast_id) == broadcast_id, col(OutboxDelivery.kind) != "edit")
        .group_by(col(OutboxDelivery.state))
    )
    rows: Sequence[Any] = result.all()  # (state, count)
    counts = {str(state): int(n) for state, n in rows}
    total = sum(counts.values())
    failed = counts.get(FAILED, 0) + counts.get(SKIPPED, 0)
    return Progress(
        total=total, sent=counts.get(SENT, 0), failed=failed, pending=total - counts.get(SENT, 0) - failed
    )


async def finish_broadcast(session: DbSession, *, broadcast_id: int, at: datetime) -> bool:
    """Mark finished once; True only for the process that did (it sends the summary)."""
    result = await session.execute(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast_id, col(Broadcast.finished_at).is_(None))
        .values(finished_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]  # an UPDATE returns a CursorResult


async def unfinished_broadcasts(session: DbSession, *, ids: Sequence[int] | None = None) -> list[Broadcast]:
    statement = select(Broadcast).where(col(Broadcast.finished_at).is_(None))
    if ids is not None:
        statement = statement.where(col(Broadcast.id).in_(ids))
    result = await session.execute(statement)
    return list(result.scalars())


async def get_broadcast(session: DbSession, *, broadcast_id: int) -> Broadcast | None:
    broadcast: Broadcast | None = await session.get(Broadcast, broadcast_id)
    return broadcast


async def unsettled_lanes(session: DbSession) -> list[str]:
    """Lanes with rows not yet settled, due or not."""
    result = await session.execute(
        select(col(OutboxDelivery.lane)).where(col(OutboxDelivery.state).in_((PENDING, SENDING))).distinct()
    )
    return sorted(result.scalars())


async def delivery_counts(session: DbSession) -> dict[str, int]:
    result = await session.execute(text("SELECT state, count(*) FROM status_outbox GROUP BY state"))
    rows: Sequence[Any] = result.all()  # (state, count)
    return {str(state): int(n) for state, n in rows}
