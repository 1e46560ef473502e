"""Whole messages kept in the outbox (a ticket clock's notices, to the customer and to the team):
queued in the transaction that decides them, sent through `Outbound`, so that one whose place
refuses it goes where its `Delivery.or_else` says, and settled once.

The process that decided a message sends it right after its commit. One that process died before
sending (or that met only transient failures) is claimed by any process's outbox worker once its
lease has run out, and sent again under the same key as a resend, which the platforms recognise
(Discord's nonce, Slack's message metadata) where the first try did land.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from bot.core.context import PendingDelivery
from bot.core.events import Delivery, SentRef
from bot.core.outbound import GAVE_UP, Outbound
from bot.core.owed import decode, encode
from storage import outbox_repo
from storage.db import Database
from storage.models import OutboxDelivery
from storage.session import DbSession

log = logging.getLogger(__name__)


async def keep(
    session: DbSession, *, delivery: Delivery, key: str, owner: str, until: datetime
) -> OutboxDelivery:
    """Queue `delivery` under `key`, claimed by `owner` until `until` (see `outbox_repo.keep`)."""
    where = delivery.conversation
    recipient = outbox_repo.Recipient(
        where.platform.value, where.workspace_id, where.channel_id, where.thread_id, where.is_direct
    )
    # The owed replies' encoding: every field of the message (mentions, buttons) and its `or_else`.
    message = encode([PendingDelivery(delivery)])
    return await outbox_repo.keep(
        session, key=key, where=recipient, message=message, owner=owner, until=until
    )


def kept_delivery(row: OutboxDelivery) -> Delivery:
    """The row's message under the row's key, a resend after a first attempt; ValueError when its
    body is not one kept message."""
    (kept,) = decode(row.body)
    return replace(kept.delivery, idempotency_key=row.key, resend=row.attempts > 1)


async def send_kept(
    database: Database,
    outbound: Outbound,
    row: OutboxDelivery,
    *,
    owner: str,
    clock: Callable[[], datetime],
    retry_in: float | None,
    within: float,
) -> str | None:
    """Send a kept row `owner` holds and settle it: sent; failed when refused for good (`Outbound`
    has logged and reported it) or unreadable; pending again in `retry_in` seconds when every try
    met a transient failure or it took over `within` seconds (failed when `retry_in` is None). The
    state it was left in, or None when it was no longer `owner`'s to settle."""
    try:
        delivery = kept_delivery(row)
    except ValueError as error:
        log.error("kept message %s cannot be read (%s); given up", row.key, error)
        return await _settle(database, row, owner, outbox_repo.FAILED, "cannot be read")
    try:
        sent = await asyncio.wait_for(outbound.attempt(delivery), within)
    except (TimeoutError, OSError) as error:
        log.warning("kept message %s: %s; it will be retried", row.key, type(error).__name__)
        sent = GAVE_UP
    if isinstance(sent, SentRef):
        async with database.transaction() as session:
            settled = await outbox_repo.mark_sent(
                session, delivery=row, owner=owner, message_id=sent.message_id, at=clock()
            )
        return outbox_repo.SENT if settled else None
    if sent is None:
        return await _settle(database, row, owner, outbox_repo.FAILED, "refused for good")
    if retry_in is None:
        return await _settle(database, row, owner, outbox_repo.FAILED, "gave up: transient failures")
    async with database.transaction() as session:
        await outbox_repo.mark_retry(
            session,
            delivery=row,
            owner=owner,
            next_at=clock() + timedelta(seconds=retry_in),
            error="transient failures",
        )
    return outbox_repo.PENDING


async def _settle(database: Database, row: OutboxDelivery, owner: str, state: str, error: str) -> str:
    async with database.transaction() as session:
        await outbox_repo.mark_final(session, delivery=row, owner=owner, state=state, error=error)
    return state
