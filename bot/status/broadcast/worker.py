"""The outbox worker: claims queued status messages lane by lane and sends them through the adapters,
paced to the platforms' limits, retrying what is transient and disabling what cannot work. It also
sends the kept messages (a ticket clock's notices, `kept.py`) whose deciding process died first.

Delivery guarantee: every row is sent at least once (a row claimed by a process that dies is claimed
again when its lease runs out) and settled exactly once (only the lease holder may settle it). A
crash between "the platform accepted it" and "marked sent" leaves a row in doubt; it is re-sent with
the same `Delivery.idempotency_key`, which a platform that dedupes (Discord nonce) turns into a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

from bot.adapters.base import Adapter, DeliveryError, DeliveryFailure
from bot.core.clock import utc_now
from bot.core.events import Conversation, Delivery, OutboundMessage, Platform, SentRef
from bot.core.metrics import Metrics
from bot.core.outbound import Outbound
from bot.status import messages
from bot.status.broadcast.kept import send_kept
from bot.status.broadcast.pacing import LanePolicy, Pacer
from storage import outbox_repo, status_repo, subscriptions_repo
from storage.db import Database
from storage.models import OutboxDelivery

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    lease: timedelta = timedelta(seconds=30)
    max_attempts: int = 8
    base_backoff: float = 0.5
    max_backoff: float = 30.0
    send_timeout: float = 5.0
    max_in_flight: int = 64
    poll_interval: float = 1.0
    progress_interval: float = 2.0


class _Retry(Exception):
    """Defer a row without counting an attempt (its thread's first notice is still on the way)."""


class _Skip(Exception):
    pass


def _forget(ids: set[int], row_id: int, _task: object) -> None:
    """A send's done-callback: the row is no longer in flight."""
    ids.discard(row_id)


class BroadcastWorker:
    def __init__(
        self,
        database: Database,
        adapters: Mapping[Platform, Adapter],
        *,
        policy: Callable[[str], LanePolicy],
        staff_channel: Conversation | None,
        page_url: str | None,
        config: WorkerConfig | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        self.database = database
        self.metrics = metrics or Metrics(process=False)
        self.adapters = adapters
        # Kept messages (a ticket's notices) go as their decider would have sent them, fallback included.
        self._outbound = Outbound(adapters, staff_channel=staff_channel, metrics=self.metrics)
        self.policy = policy
        self.staff_channel = staff_channel
        self.page_url = page_url
        self.config = config or WorkerConfig()
        self.owner = owner or f"w-{uuid.uuid4().hex[:10]}"
        self._clock = clock
        self._wake = asyncio.Event()
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._main: asyncio.Task[None] | None = None
        self._progress_at: dict[int, float] = {}
        self._touched: set[int] = set()
        self.sent = 0

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._main is None:
            self._main = asyncio.create_task(self._loop(), name="broadcast-worker")

    async def stop(self) -> None:
        tasks = [t for t in (self._main, *self._lanes.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._main = None
        self._lanes.clear()

    def wake(self) -> None:
        """New rows were committed: look now rather than at the next poll."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self._start_lanes()
            except Exception:
                log.exception("broadcast worker: scanning for work failed")
            self._wake.clear()
            # Not asyncio.wait_for: on Python 3.11 a cancel (stop) landing as a wake-up arrives is
            # swallowed there, and this loop would never end.
            try:
                async with asyncio.timeout(self.config.poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def run_until_idle(self, *, limit_s: float = 120.0) -> None:
        """Send everything claimable, including rows that become due while running (tests, bench)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            await self._start_lanes()
            if self._lanes:
                await asyncio.gather(*self._lanes.values(), return_exceptions=True)
                continue
            async with self.database.transaction() as session:
                remaining = await outbox_repo.delivery_counts(session)
                lanes = await outbox_repo.unsettled_lanes(session)
                waiting = [await outbox_repo.next_due(session, lane=lane) for lane in lanes]
            if not remaining.get(outbox_repo.PENDING) and not remaining.get(outbox_repo.SENDING):
                return
            due = [w for w in waiting if w is not None]
            pause = max(0.01, min(((min(due) - self._clock()).total_seconds() if due else 0.05), 1.0))
            await asyncio.sleep(pause)
        raise TimeoutError("broadcast did not finish in time")

    async def _start_lanes(self) -> None:
        now = self._clock()
        async with self.database.transaction() as session:
            lanes = await outbox_repo.lanes_with_work(session, now=now)
        for lane in lanes:
            if lane in self._lanes and not self._lanes[lane].done():
                continue
            policy = self.policy(lane)
            if policy.exclusive:
                async with self.database.transaction() as session:
                    mine = await outbox_repo.acquire_lane(
                        session, lane=lane, owner=self.owner, now=now, lease=self.config.lease
                    )
                if not mine:
                    continue
                # Which process paces a lane is worth knowing when one of several dies mid-broadcast.
                log.info("broadcast lane %s: sending as %s", lane, self.owner)
            self._lanes[lane] = asyncio.create_task(self._run_lane(lane, policy), name=f"lane {lane}")
        for lane in [lane for lane, task in self._lanes.items() if task.done()]:
            del self._lanes[lane]

    # -- one lane ------------------------------------------------------------------------------

    async def _run_lane(self, lane: str, policy: LanePolicy) -> None:
        pacer = Pacer(policy)
        in_flight: set[asyncio.Task[None]] = set()
        limit = asyncio.Semaphore(self.config.max_in_flight)
        # Claim what can be sent well within a lease, so nothing claimed is still queued when it ends.
        lease_s = self.config.lease.total_seconds()
        cap = self.config.max_in_flight
        batch = cap if policy.rate is None else max(1, min(cap * 4, int(policy.rate * lease_s / 3)))
        # Rows this process is sending now. A slow send can outlive its lease and come back in our own
        # next claim; sending it again from here would be a duplicate we can avoid.
        sending: set[int] = set()
        channel_locks: dict[str, asyncio.Lock] = {}
        try:
            while True:
                now = self._clock()
                async with self.database.transaction() as session:
                    if policy.exclusive and not await outbox_repo.acquire_lane(
                        session, lane=lane, owner=self.owner, now=now, lease=self.config.lease
                    ):
                        log.info("lane %s taken over by another process", lane)
                        break
                    rows = await outbox_repo.claim(
                        session, lane=lane, owner=self.owner, now=now, lease=self.config.lease, limit=batch
                    )
                if not rows:
                    if not in_flight:
                        break
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                for row in rows:
                    if row.id in sending:
                        continue
                    wait = pacer.channel_wait(row.channel_id)
                    if wait > 0:
                        await self._settle_retry(row, delay=wait, error="channel pacing", refund=True)
                        continue
                    await limit.acquire()
                    await pacer.acquire(row.channel_id)
                    # One channel's messages go out in order (an update before the edit that follows it).
                    channel_lock = channel_locks.setdefault(row.channel_id, asyncio.Lock())
                    task = asyncio.create_task(self._send_in_order(row, pacer, channel_lock))
                    in_flight.add(task)
                    sending.add(row.id or 0)
                    task.add_done_callback(in_flight.discard)
                    task.add_done_callback(partial(_forget, sending, row.id or 0))
                    task.add_done_callback(lambda _t: limit.release())
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
            for broadcast_id in list(self._touched):
                await self._report_progress(broadcast_id, force=True)
                async with self.database.transaction() as session:
                    record = await outbox_repo.get_broadcast(session, broadcast_id=broadcast_id)
                if record is not None and record.finished_at is not None:
                    self._touched.discard(broadcast_id)
        finally:
            if policy.exclusive:
                try:
                    async with self.database.transaction() as session:
                        await outbox_repo.release_lane(session, lane=lane, owner=self.owner)
                except Exception:
                    log.exception("could not release lane %s", lane)

    # -- one row -------------------------------------------------------------------------------

    @property
    def _send_timeout(self) -> float:
        """A send must end well inside its lease, or another process could send the row too."""
        return min(self.config.send_timeout, self.config.lease.total_seconds() / 2)

    async def _send_in_order(self, row: OutboxDelivery, pacer: Pacer, lock: asyncio.Lock) -> None:
        async with lock:
            await self._send(row, pacer)

    async def _send(self, row: OutboxDelivery, pacer: Pacer) -> None:
        try:
            await self._send_row(row, pacer)
        except Exception:
            if row.attempts >= self.config.max_attempts:
                log.exception("broadcast delivery %s crashed %d times; giving up", row.key, row.attempts)
                await self._settle_final(row, outbox_repo.FAILED, "gave up: internal error")
            else:
                log.exception("broadcast delivery %s crashed; it will be retried", row.key)
                await self._settle_retry(row, delay=self._backoff(row.attempts), error="internal error")
        if row.broadcast_id is not None:
            self._touched.add(row.broadcast_id)
            await self._report_progress(row.broadcast_id)

    async def _send_row(self, row: OutboxDelivery, pacer: Pacer) -> None:
        adapter = self.adapters.get(Platform(row.platform))
        if adapter is None:
            self.metrics.delivered(row.platform, ok=False)
            await self._settle_final(row, outbox_repo.FAILED, f"no {row.platform} adapter in this process")
            return
        if row.kind == outbox_repo.KEPT:
            await self._send_kept(row)
            return
        try:
            delivery = replace(await self._build(row), resend=row.attempts > 1)
        except _Retry:
            await self._settle_retry(row, delay=1.0, error="waiting for the first notice", refund=True)
            return
        except _Skip as skip:
            await self._settle_final(row, outbox_repo.SKIPPED, str(skip))
            return
        try:
            try:
                ref = await asyncio.wait_for(adapter.send(delivery), self._send_timeout)
            except DeliveryError as error:
                thread = delivery.conversation.thread_id
                if row.kind != "update" or thread is None or error.code is not DeliveryFailure.MESSAGE_GONE:
                    raise
                # The first notice it threads under was deleted: the update stands at the top level.
                log.info("first notice of %s is gone; posting the update at the top level", row.key)
                top_level = replace(delivery.conversation, thread_id=None)
                delivery = replace(delivery, conversation=top_level)
                ref = await asyncio.wait_for(adapter.send(delivery), self._send_timeout)
        except DeliveryError as error:
            await self._failed(row, error, pacer)
            return
        except (TimeoutError, OSError) as error:
            await self._failed(
                row,
                DeliveryError(f"{type(error).__name__}", permanent=False, code=DeliveryFailure.UNAVAILABLE),
                pacer,
            )
            return
        self.metrics.delivered(row.platform, ok=True)
        async with self.database.transaction() as session:
            settled = await outbox_repo.mark_sent(
                session, delivery=row, owner=self.owner, message_id=ref.message_id, at=self._clock()
            )
        if settled:
            self.sent += 1
        else:
            log.warning("delivery %s was sent after its lease passed to another process", row.key)

    async def _send_kept(self, row: OutboxDelivery) -> None:
        last_try = row.attempts >= self.config.max_attempts
        state = await send_kept(
            self.database,
            self._outbound,
            row,
            owner=self.owner,
            clock=self._clock,
            retry_in=None if last_try else self._backoff(row.attempts),
            # Its retries and its fallback included, well inside the lease, as `_send_timeout`.
            within=self.config.lease.total_seconds() / 2,
        )
        if state == outbox_repo.SENT:
            self.sent += 1

    async def _build(self, row: OutboxDelivery) -> Delivery:
        conversation = Conversation(
            platform=Platform(row.platform),
            workspace_id=row.workspace_id,
            channel_id=row.channel_id,
            thread_id=row.thread_id,
            is_direct=row.is_direct,
        )
        if row.kind in ("notice", "direct"):
            return self._delivery(conversation, row.title, row.body, row.key)
        assert row.incident_id is not None and row.subscription_id is not None
        async with self.database.transaction() as session:
            first = await outbox_repo.thread_for(
                session, incident_id=row.incident_id, subscription_id=row.subscription_id
            )
            if first is None and await outbox_repo.first_notice_pending(
                session, incident_id=row.incident_id, subscription_id=row.subscription_id, exclude_id=row.id
            ):
                raise _Retry
            if row.kind == "update":
                # Without a first notice (it failed, or the channel subscribed later) the update
                # stands alone at the top level and becomes the thread for the next ones.
                where = conversation.in_thread(first) if first else conversation
                return self._delivery(where, row.title, row.body, row.key)
            if first is None:
                raise _Skip("no first notice to edit")
            incident = await status_repo.get_incident(session, incident_id=row.incident_id)
            timeline = (await status_repo.updates_for(session, incident_ids=[row.incident_id]))[
                row.incident_id
            ]
        assert incident is not None
        title, text = messages.incident_card(incident, timeline, page_url=self.page_url, now=self._clock())
        edit = SentRef(
            platform=conversation.platform,
            workspace_id=row.workspace_id,
            channel_id=row.channel_id,
            message_id=first,
        )
        return Delivery(
            conversation=conversation,
            message=OutboundMessage(title=title, text=text, in_thread=False),
            edit=edit,
            idempotency_key=row.key,
        )

    @staticmethod
    def _delivery(conversation: Conversation, title: str, body: str, key: str) -> Delivery:
        message = OutboundMessage(title=title or None, text=body or title, in_thread=False)
        return Delivery(conversation=conversation, message=message, idempotency_key=key)

    async def _failed(self, row: OutboxDelivery, error: DeliveryError, pacer: Pacer) -> None:
        where = f"{row.platform}:{row.workspace_id}:{row.channel_id}"
        if error.retry_after is not None:
            self.metrics.rate_limited.labels(row.platform).inc()
        if error.permanent:
            self.metrics.delivered(row.platform, ok=False)
            log.warning("cannot deliver %s to %s: %s (%s)", row.key, where, error, error.code)
            await self._settle_final(row, outbox_repo.FAILED, f"{error.code or 'permanent'}: {error}")
            # A message that is gone (the first notice was deleted) says nothing about the channel:
            # only a channel the bot cannot post in turns its subscription off.
            if row.subscription_id is not None and error.code is not DeliveryFailure.MESSAGE_GONE:
                await self._disable(row, error)
            return
        if row.attempts >= self.config.max_attempts:
            log.error("giving up on %s to %s after %d attempts: %s", row.key, where, row.attempts, error)
            self.metrics.delivered(row.platform, ok=False)
            await self._settle_final(row, outbox_repo.FAILED, f"gave up: {error}")
            return
        if error.retry_after is not None:
            # Honour Retry-After for the whole lane: the limit that was hit is the lane's.
            pacer.block(error.retry_after)
            delay = error.retry_after
        else:
            delay = self._backoff(row.attempts)
        log.info("transient failure for %s (%s); retry in %.2fs", row.key, error.code or error, delay)
        self.metrics.delivery_retries.labels(row.platform).inc()
        await self._settle_retry(row, delay=delay, error=f"{error.code or 'transient'}: {error}")

    def _backoff(self, attempts: int) -> float:
        exponential = self.config.base_backoff * (2.0 ** max(0, attempts - 1))
        return min(self.config.max_backoff, exponential) * (0.5 + random.random())

    async def _settle_retry(
        self, row: OutboxDelivery, *, delay: float, error: str, refund: bool = False
    ) -> None:
        async with self.database.transaction() as session:
            await outbox_repo.mark_retry(
                session,
                delivery=row,
                owner=self.owner,
                next_at=self._clock() + timedelta(seconds=delay),
                error=error,
                refund=refund,
            )

    async def _settle_final(self, row: OutboxDelivery, state: str, error: str) -> None:
        async with self.database.transaction() as session:
            await outbox_repo.mark_final(session, delivery=row, owner=self.owner, state=state, error=error)

    async def _disable(self, row: OutboxDelivery, error: DeliveryError) -> None:
        assert row.subscription_id is not None
        async with self.database.transaction() as session:
            first = await subscriptions_repo.disable_subscription(
                session, subscription_id=row.subscription_id, reason=error.code or str(error)
            )
            if first:
                skipped = await outbox_repo.skip_pending_for(
                    session, subscription_id=row.subscription_id, reason="subscription disabled"
                )
                # Those broadcasts may now be complete: report and finish them like our own.
                self._touched.update(skipped)
        if first:
            await self._tell_staff(
                f"I can't post status updates in channel `{row.channel_id}` on {row.platform} "
                f"({error.code or error}), so I've turned off its subscription. "
                "Invite me back and run `/subscribe` there to turn it on again."
            )

    async def _tell_staff(self, text: str, *, edit: SentRef | None = None) -> SentRef | None:
        if self.staff_channel is None:
            return None
        target = edit.conversation if edit is not None else self.staff_channel
        adapter = self.adapters.get(target.platform)
        if adapter is None:
            return None
        try:
            return await adapter.send(
                Delivery(conversation=target, message=OutboundMessage(text=text), edit=edit)
            )
        except DeliveryError as error:
            log.error("could not tell staff: %s", error)
            return None

    # -- progress --------------------------------------------------------------------------------

    async def _report_progress(self, broadcast_id: int, *, force: bool = False) -> None:
        """Edit the command's reply now and then ("delivered 1,840 / 2,500, 3 failed") and at the end.

        Between edits nothing is read, so a large broadcast does not pay a count per message; `force`
        (when a lane has run dry) reads, and finishes the broadcast if nothing is left."""
        now = time.monotonic()
        if not force and now - self._progress_at.get(broadcast_id, 0.0) < self.config.progress_interval:
            return
        self._progress_at[broadcast_id] = now
        async with self.database.transaction() as session:
            progress = await outbox_repo.progress(session, broadcast_id=broadcast_id)
            finished = progress.done and await outbox_repo.finish_broadcast(
                session, broadcast_id=broadcast_id, at=self._clock()
            )
            record = await outbox_repo.get_broadcast(session, broadcast_id=broadcast_id)
        if progress.done:
            self._progress_at.pop(broadcast_id, None)  # finished broadcasts need no throttle entry
        if progress.done and not finished:
            return  # another process (or an earlier call) sent the summary
        if record is None or not record.progress_message_id:
            return
        ref = SentRef(
            platform=Platform(record.progress_platform),
            workspace_id=record.progress_workspace_id,
            channel_id=record.progress_channel_id,
            message_id=record.progress_message_id,
        )
        label = f"Incident #{record.incident_id} ({record.kind})" if record.incident_id else "Announcement"
        await self._tell_staff(f"{label}: {messages.progress_line(progress, finished=finished)}", edit=ref)
