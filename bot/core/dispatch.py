"""The per-event pipeline: dedupe, route, run one handler, commit once, then send its replies.

Inbound events are queued by conversation, so events in one channel are handled in order while
different channels run in parallel, and an adapter's sink returns at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections import Counter
from typing import Any, cast

from bot.adapters.base import SettlesEvents
from bot.core.context import HandlerContext, OnSent, PendingDelivery, Services
from bot.core.errors import UserError
from bot.core.events import Delivery, InboundEvent, OutboundMessage, SentRef
from bot.core.outbound import Outbound
from bot.core.router import Allow, Deny, Router, Skip
from bot.logs import correlation_id, new_correlation_id
from storage import audit_repo, events_repo
from storage.db import Database, lost_connection

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
"""Seconds before each new try of an event whose database connection broke: about 30 s in all. A
PostgreSQL restart took 16 s on a loaded machine (bench/chaos.py); the platform has its
acknowledgement and will not resend the event, so giving up early loses it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Unfinished:
    """Events a stop gave up on: still queued, and cut off while being handled."""

    queued: int = 0
    handling: int = 0

    def __bool__(self) -> bool:
        return bool(self.queued or self.handling)


class Outcome(enum.StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    REFUSED = "refused"
    USER_ERROR = "user_error"
    FAILED = "failed"
    UNHANDLED = "unhandled"


_TEXT_FIELDS = ("text", "args", "message_text", "value")


def without_nul(event: InboundEvent) -> InboundEvent:
    """The event with NUL characters removed from what people typed: PostgreSQL text cannot hold
    them, so a pasted binary snippet would otherwise fail the whole message on every retry."""
    changes = {
        name: value.replace("\x00", "")
        for name in _TEXT_FIELDS
        if isinstance(value := getattr(event, name, None), str) and "\x00" in value
    }
    return dataclasses.replace(event, **changes) if changes else event  # type: ignore[arg-type]  # str fields only


def apology(correlation: str, event: InboundEvent) -> OutboundMessage:
    return OutboundMessage(
        text=(
            "Sorry, something went wrong on our side and I couldn't finish that. "
            f"Please try again in a minute; if it keeps happening, tell the team reference `{correlation}`."
        ),
        private_to=event.actor,
    )


class Dispatcher:
    def __init__(
        self,
        *,
        router: Router,
        database: Database,
        services: Services,
        outbound: Outbound,
        workers: int = 8,
    ) -> None:
        self.router = router
        self.database = database
        self.services = services
        self.outbound = outbound
        self.outcomes: Counter[Outcome] = Counter()
        self._queues: list[asyncio.Queue[InboundEvent | None]] = [asyncio.Queue() for _ in range(workers)]
        self._tasks: list[asyncio.Task[None]] = []
        self._settles: dict[type, bool] = {}
        self._handling = 0

    # -- queueing ---------------------------------------------------------------------------

    async def submit(self, event: InboundEvent) -> None:
        """The adapters' sink: enqueue and return. Same channel, same queue, so order is kept."""
        shard = hash(event.conversation.channel_key) % len(self._queues)
        await self._queues[shard].put(event)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(queue)) for queue in self._queues]

    async def stop(self, *, timeout: float | None = None) -> Unfinished:  # noqa: ASYNC109
        """Finish everything already queued, then stop the workers. With `timeout`, what is not
        finished by then is given up: the workers are cancelled (a handler cut off rolls back) and
        the events given up are counted in the result."""
        for queue in self._queues:
            queue.put_nowait(None)
        running: set[asyncio.Task[None]] = set()
        if self._tasks:
            _, running = await asyncio.wait(self._tasks, timeout=timeout)
        # A worker still running has not reached its queue's stop marker: one per such queue.
        left = Unfinished(
            queued=sum(queue.qsize() for queue in self._queues) - len(running), handling=self._handling
        )
        for task in running:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for queue in self._queues:  # what was given up, and the markers of the cancelled workers
            while not queue.empty():
                queue.get_nowait()
                queue.task_done()
        return left

    async def drain(self) -> None:
        """Wait until every queued event has been handled (tests, piped console input)."""
        await asyncio.gather(*(queue.join() for queue in self._queues))

    async def _work(self, queue: asyncio.Queue[InboundEvent | None]) -> None:
        while True:
            event = await queue.get()
            try:
                if event is None:
                    return
                self._handling += 1
                try:
                    await self.handle(event)
                finally:
                    self._handling -= 1
            except Exception:  # handle() isolates handler errors; this guards the worker itself
                log.exception("dispatcher worker error")
            finally:
                queue.task_done()

    # -- one event --------------------------------------------------------------------------

    async def handle(self, event: InboundEvent) -> Outcome:
        cid = new_correlation_id()
        token = correlation_id.set(cid)
        started = time.perf_counter()
        event = without_nul(event)
        try:
            outcome, outbox = await self._handle_in_transaction(event, cid)
            self.outcomes[outcome] += 1
            self.services.metrics.event_handled(event, outcome.value)
            sent = [(pending, await self._deliver(pending)) for pending in outbox]
            await self._run_on_sent([(p.on_sent, ref) for p, ref in sent if p.on_sent and ref is not None])
            await self._settle(event)
            log.debug(
                "%s %s in %.1f ms", type(event).__name__, outcome, (time.perf_counter() - started) * 1000
            )
            return outcome
        finally:
            correlation_id.reset(token)

    async def _handle_in_transaction(
        self, event: InboundEvent, cid: str
    ) -> tuple[Outcome, list[PendingDelivery]]:
        for delay in (*RECONNECT_DELAYS, None):
            try:
                async with self.database.transaction() as session:
                    if not await events_repo.claim_event(
                        session, platform=event.platform.value, event_id=event.event_id
                    ):
                        log.info("duplicate %s %s ignored", event.platform.value, event.event_id)
                        return Outcome.DUPLICATE, []
                    ctx = HandlerContext(
                        event=event, session=session, services=self.services, correlation_id=cid
                    )
                    outcome = await self._route(event, ctx)
                    return outcome, ctx.outbox
            except UserError as error:
                reply = OutboundMessage(text=error.text, private_to=event.actor)
                return await self._record_failure(event, Outcome.USER_ERROR, reply)
            except Exception as error:
                if delay is not None and lost_connection(error):
                    # Rolled back with the connection: the whole event runs again on a fresh one.
                    log.warning(
                        "database connection lost handling %s; again in %.1f s", event.event_id, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                log.exception("handler failed for %s %s", type(event).__name__, event.event_id)
                return await self._record_failure(event, Outcome.FAILED, apology(cid, event))
        raise AssertionError("unreachable: the last try returns")

    async def _record_failure(
        self, event: InboundEvent, outcome: Outcome, reply: OutboundMessage
    ) -> tuple[Outcome, list[PendingDelivery]]:
        """The handler's work was rolled back; still claim the event so a platform retry does not
        run (and fail) again, then tell the user."""
        try:
            async with self.database.transaction() as session:
                if not await events_repo.claim_event(
                    session, platform=event.platform.value, event_id=event.event_id
                ):
                    return Outcome.DUPLICATE, []
        except Exception:
            log.exception("could not record failed event %s", event.event_id)
        delivery = Delivery(conversation=event.conversation, message=reply, reply_to=event)
        return outcome, [PendingDelivery(delivery)]

    async def _route(self, event: InboundEvent, ctx: HandlerContext) -> Outcome:
        for route, match in self.router.candidates(event):
            ctx.match = match
            verdict: Any = Allow()
            for guard in route.guards:
                verdict = await guard(event, ctx)
                if not isinstance(verdict, Allow):
                    break
            if isinstance(verdict, Skip):
                continue
            ctx.allowed = verdict.data if isinstance(verdict, Allow) else None
            if isinstance(verdict, Deny):
                await audit_repo.record(
                    ctx.session,
                    actor_key=event.actor.key,
                    action=verdict.audit or route.name,
                    allowed=False,
                    detail=getattr(event, "args", "") or getattr(event, "text", ""),
                )
                await ctx.reply(OutboundMessage(text=verdict.text, private_to=event.actor))
                return Outcome.REFUSED
            with self.services.metrics.handler_seconds.labels(route.name).time():
                await route.handler(event, ctx)
            return Outcome.HANDLED
        fallback = self.router.fallback_for(event)
        if fallback is None:
            return Outcome.UNHANDLED
        name = f"fallback.{getattr(fallback, '__name__', 'handler')}"
        with self.services.metrics.handler_seconds.labels(name).time():
            await fallback(event, ctx)
        return Outcome.HANDLED

    async def _settle(self, event: InboundEvent) -> None:
        """Tell the event's adapter that the event is done with, if it asks to know (`SettlesEvents`)."""
        adapter = self.outbound.adapters.get(event.platform)
        settles = self._settles.get(type(adapter))
        if settles is None:  # a Protocol isinstance walks the class each time: once per adapter type
            settles = self._settles[type(adapter)] = isinstance(adapter, SettlesEvents)
        if settles:
            try:
                await cast(SettlesEvents, adapter).event_settled(event)
            except Exception:
                log.exception("%s adapter failed to settle %s", event.platform.value, event.event_id)

    async def _deliver(self, pending: PendingDelivery) -> SentRef | None:
        try:
            return await self.outbound.send(pending.delivery)
        except Exception:
            log.exception("delivery to %s failed", pending.delivery.conversation.key)
            return None

    async def _run_on_sent(self, done: list[tuple[OnSent, SentRef]]) -> None:
        """What handlers asked to record once their messages were posted (a staff thread, the
        ticket's new home). One transaction for all of an event's: an escalation has two, and a
        transaction costs more than the UPDATE inside it. If one fails, each runs on its own so that
        one bad callback does not lose the others' work."""
        if not done:
            return
        try:
            async with self.database.transaction() as session:
                for on_sent, ref in done:
                    await on_sent(session, ref)
            return
        except Exception:
            if len(done) == 1:
                log.exception("recording a sent message failed")
                return
        for on_sent, ref in done:
            try:
                async with self.database.transaction() as session:
                    await on_sent(session, ref)
            except Exception:
                log.exception("recording a sent message failed")
