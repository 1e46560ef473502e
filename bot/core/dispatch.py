"""The per-event pipeline: dedupe, route, run one handler, commit once, do what it left for after
the commit (a file written: `HandlerContext.after_commit_kept`), then send its replies.

Inbound events are queued by conversation, so events in one channel are handled in order while
different channels run in parallel, and an adapter's sink returns at once. The replies are committed
with the event's claim and cleared once posted, as is the work left for after the commit until it is
done; what a dead process still owed is done and posted by a sweep here, in any process
(bot/core/owed.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, cast

from bot.adapters.base import SettlesEvents
from bot.core import leases
from bot.core.context import HandlerContext, KeptWork, OnSent, PendingDelivery, Services
from bot.core.errors import TooEarly, UserError
from bot.core.events import Delivery, InboundEvent, OutboundMessage, SentRef
from bot.core.outbound import GaveUp, Outbound
from bot.core.owed import (
    CLEAR_EVERY,
    Owed,
    OwedReplies,
    OwedWork,
    Tell,
    WritesFirst,
    decode_work,
    encode,
    encode_work,
)
from bot.core.router import Allow, Deny, Router, Skip
from bot.logs import correlation_id, new_correlation_id
from storage import audit_repo, decisions_repo, events_repo
from storage.db import Database, lost_connection, transaction_conflict
from storage.session import DbSession

log = logging.getLogger(__name__)

RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
"""Seconds before each new try of an event whose database connection broke: about 30 s in all. A
PostgreSQL restart took 16 s on a loaded machine (bench/chaos.py); the platform has its
acknowledgement and will not resend the event, so giving up early loses it."""

CONFLICT_DELAYS = (0.05, 0.2, 0.5)
"""Seconds (give or take half) before each new try of an event whose transaction PostgreSQL ended
to break a deadlock or a serialization conflict. The other transaction has usually committed by
then; a conflict that outlasts three tries is a bug to see, not to retry forever."""

TOO_EARLY_DELAYS = (0.25, 0.5, 1.0, 2.0)
"""Seconds before each new try of an event a handler found too early (`TooEarly`): a team member's
reply under a staff card whose thread the bot notes right after posting it, in a transaction of its
own that a loaded machine or a slow database delays by a second or two. Almost 4 s in all, short
because the channel's later events wait behind it; after the last try the event is taken with
nothing done (staff talk under a post that is no ticket's card)."""

RECORD_RETRY_SECONDS = 0.5
"""How often what a posted message asked to record (a staff card's thread) is tried again while the
database connection is broken, for as long as an event is (`RECONNECT_DELAYS`, about 30 s). Steady,
not backing off: a team member answering under the card is tried again for only a few seconds
(`TOO_EARLY_DELAYS`), so the record must land soon after the database is back."""

OWED_SWEEP_SECONDS = 2.0
"""How often a process looks for replies a dead process owed: the lease decides when they are due,
this only how soon after that they go out."""
OWED_BATCH = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Unfinished:
    """Events a stop gave up on: still queued, and cut off while being handled."""

    queued: int = 0
    handling: int = 0

    def __bool__(self) -> bool:
        return bool(self.queued or self.handling)


class _Duplicate(Exception):
    """Another transaction claimed the event first: raised inside this one to roll its work back."""


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


def _first_line(error: BaseException) -> str:
    """The driver's message without its DETAIL lines, which quote other sessions' statements."""
    return (str(error).splitlines() or [type(error).__name__])[0][:200]


def apology(correlation: str, event: InboundEvent) -> OutboundMessage:
    return OutboundMessage(
        text=(
            "Sorry, something went wrong on our side and I couldn't finish that. "
            f"Please try again in a minute; if it keeps happening, tell the team reference `{correlation}`."
        ),
        private_to=event.actor,
    )


def unfinished(correlation: str, event: InboundEvent) -> OutboundMessage:
    """What the actor hears when the work after an event's commit failed: what the transaction
    holds is done, what was to follow it (a file written) may not be."""
    return OutboundMessage(
        text=(
            "Sorry, something went wrong on our side after I had saved that, so it may be only partly "
            f"done. Please tell the team reference `{correlation}`."
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
        # The lease an inbox request gets is the time a process has to post an event's replies too.
        lease = timedelta(seconds=services.settings.inbox_lease_seconds)
        self.owed = OwedReplies(database, lease=lease, clock=services.clock, metrics=services.metrics)
        # Claims whose replies (or work) this process is doing right now. One it holds past the
        # ceiling is stuck (a post or a piece of work that never returns): another process's sweep
        # takes it over once its lease has run out.
        self._owing = leases.Held(what="claims owing replies", lease=lease)
        self._background: list[asyncio.Task[None]] = []
        self._paying: asyncio.Task[None] | None = None
        self._renewals: list[Callable[[], Awaitable[object]]] = []

    # -- queueing ---------------------------------------------------------------------------

    async def submit(self, event: InboundEvent) -> None:
        """The adapters' sink: enqueue and return. Same channel, same queue, so order is kept."""
        shard = hash(event.conversation.channel_key) % len(self._queues)
        await self._queues[shard].put(event)

    def start(self) -> None:
        """Take events. Replies stopped processes owed wait for `start_paying_owed`."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._work(queue)) for queue in self._queues]
        if not self._background:
            self._background = [asyncio.create_task(self._keep_owing_forever())]

    def renew_with_claims(self, renew: Callable[[], Awaitable[object]]) -> None:
        """Run `renew` on the tick that holds on to this process's claims: the leases another part
        holds for the events this process is handling (an adapter's inbox rows) are renewed alike."""
        self._renewals.append(renew)

    def start_paying_owed(self) -> None:
        """Sweep for replies stopped processes owed; once the adapters are started, not before: a
        reply posted through an adapter not yet started fails, and is cleared all the same (a
        restarted Discord process lost the answer its killed predecessor owed this way)."""
        if self._paying is None:
            self._paying = asyncio.create_task(self._pay_owed_forever())
            self._background.append(self._paying)

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
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        self._paying = None
        try:  # a clean stop leaves nothing owed that was posted
            await self.owed.clear_posted()
        except Exception:
            log.warning("clearing posted replies at the stop failed: the next process posts them again")
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
            outcome, outbox, owed = await self._handle_in_transaction(event, cid)
            self.outcomes[outcome] += 1
            self.services.metrics.event_handled(event, outcome.value)
            if outcome is Outcome.DUPLICATE:  # nothing to send; what was answered is its claimer's
                await self._settle(event, duplicate=True)
            else:
                await self._send_all(outbox, owed, settle=event)
            log.debug(
                "%s %s in %.1f ms", type(event).__name__, outcome, (time.perf_counter() - started) * 1000
            )
            return outcome
        finally:
            correlation_id.reset(token)

    async def _handle_in_transaction(
        self, event: InboundEvent, cid: str
    ) -> tuple[Outcome, list[PendingDelivery], int | None]:
        """The outcome, the replies to send and, when they are kept with the claim, its id."""
        reconnects, conflicts, waits = iter(RECONNECT_DELAYS), iter(CONFLICT_DELAYS), iter(TOO_EARLY_DELAYS)
        across_tries: dict[str, Any] = {}
        while True:
            try:
                async with self.database.transaction() as session:
                    ctx = HandlerContext(
                        event=event,
                        session=session,
                        services=self.services,
                        correlation_id=cid,
                        across_tries=across_tries,
                    )
                    outcome = await self._route(event, ctx)
                    outbox, owed = await self._claim(session, event, ctx.outbox, kept=ctx.kept_work)
            except _Duplicate:
                log.info("duplicate %s %s ignored", event.platform.value, event.event_id)
                return Outcome.DUPLICATE, [], None
            except TooEarly as early:
                # Rolled back with nothing written; what it lacked may be noted by the next try.
                if (delay := next(waits, None)) is not None:
                    log.debug("%s too early (%s); again in %.2f s", event.event_id, early, delay)
                    await asyncio.sleep(delay)
                    continue
                log.info(
                    "%s still too early after %d tries (%s): nothing done",
                    event.event_id,
                    len(TOO_EARLY_DELAYS) + 1,
                    early,
                )
                said = early.finally_say
                told = OutboundMessage(text=said, private_to=event.actor) if said else None
                return await self._record_failure(event, Outcome.HANDLED, told)
            except UserError as error:
                reply = OutboundMessage(text=error.text, private_to=event.actor)
                return await self._record_failure(event, Outcome.USER_ERROR, reply)
            except Exception as error:
                # Rolled back whole, with the connection or by the server: the event runs again.
                if lost_connection(error) and (delay := next(reconnects, None)) is not None:
                    log.warning(
                        "database connection lost handling %s; again in %.1f s", event.event_id, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                conflict = transaction_conflict(error) or decisions_repo.reserved_id_was_taken(error)
                if conflict and (delay := next(conflicts, None)) is not None:
                    delay *= 0.5 + random.random()  # two events that collided do not retry in step
                    log.warning("%s handling %s; again in %.2f s", _first_line(error), event.event_id, delay)
                    await asyncio.sleep(delay)
                    continue
                log.exception("handler failed for %s %s", type(event).__name__, event.event_id)
                return await self._record_failure(event, Outcome.FAILED, apology(cid, event))
            # Committed: this try's context is the one whose work is done, once. The claim is held
            # (renewed by `keep_owing`) from now on, not from the first post: work slower than the
            # lease (a KB reload) would otherwise let another process's sweep post these replies
            # while this one posts them too.
            self._hold(owed)
            try:
                replies = [*outbox, *await self._after_commit(ctx)]
                if not ctx.kept_work:
                    return outcome, replies, owed
                kept = OwedWork(event, tuple(ctx.kept_work))
                done = await self._do_kept(owed, kept, replies, cid, again=False)
                if done is None:  # left to the sweep, replies and all
                    return outcome, [], None
                return outcome, done, owed
            except BaseException:  # cancelled at a stop: nothing will post them here
                if owed is not None:
                    self._owing.release([owed])
                raise

    async def _after_commit(self, ctx: HandlerContext) -> list[PendingDelivery]:
        """Run the work the handler left for after the commit (`HandlerContext.after_commit`), in
        order, and return the replies it added. The event is claimed and will not run again, so a
        failure is told to the actor, never retried; the next piece of work still runs."""
        committed = len(ctx.outbox)
        for work in ctx.after_commit_work:
            for message in await self._told(ctx.event, ctx.correlation_id, work()):
                await ctx.reply(message)
        return ctx.outbox[committed:]

    async def _told(
        self, event: InboundEvent, cid: str, work: Awaitable[Sequence[OutboundMessage] | None]
    ) -> list[OutboundMessage]:
        """What work after the commit tells the actor: what it returns, or what went wrong."""
        try:
            return list(await work or ())
        except UserError as error:
            return [OutboundMessage(text=error.text, private_to=event.actor)]
        except Exception:
            log.exception("work after the commit of %s %s failed", type(event).__name__, event.event_id)
            return [unfinished(cid, event)]

    async def _do_kept(
        self, claim: int | None, kept: OwedWork, replies: list[PendingDelivery], cid: str, *, again: bool
    ) -> list[PendingDelivery] | None:
        """Do the work kept with claim `claim` (`HandlerContext.after_commit_kept`), then record it
        done with `replies` and what the work told owed instead, in one write: a kill before that
        write leaves the work to another process's sweep (which does it `again`), a kill after it
        leaves only the replies. The replies, or None if that write failed: then nothing is posted
        here, and the sweep does it all once the lease has run out. None too when the claim no longer
        owed the work: an erasure dropped it meanwhile (what it dropped must not come back), or another
        process's sweep did it too and recorded it first (it tells the actor; twice would be noise).

        Work that writes a file an erasure cleans (`WritesFirst`) writes it first, holding the claim
        locked (`_write_under_claim`); the rest is done here as any work."""
        if claim is not None and any(isinstance(work, WritesFirst) for work in kept.work):
            try:
                written = await self._write_under_claim(claim, kept, replies, cid, again=again)
            except Exception:
                log.exception("writing the work of claim %d failed; it is done again later", claim)
                self._owing.release([claim])
                return None
            if written is None:
                log.warning(
                    "claim %d no longer owed its work when written (erased, or done elsewhere)", claim
                )
                self._owing.release([claim])
                return None
            if isinstance(written, list):
                return written
            kept = written
        event = kept.event
        told = [
            m
            for work in kept.work
            for m in await self._told(event, cid, work(event, self.services, again=again))
        ]
        replies = self._with_told(event, replies, told)
        if claim is None:  # the work could not be kept: done once, here, as `after_commit`'s is
            return replies
        try:
            recorded = await self.owed.work_done(claim, replies)
        except Exception:
            log.exception("recording the work of claim %d done failed; it is done again later", claim)
            self._owing.release([claim])
            return None
        if not recorded:
            log.warning("claim %d no longer owed its work when done (erased, or done elsewhere)", claim)
            self._owing.release([claim])
            return None
        return replies

    async def _write_under_claim(
        self, claim: int, kept: OwedWork, replies: list[PendingDelivery], cid: str, *, again: bool
    ) -> list[PendingDelivery] | OwedWork | None:
        """Write the files of claim `claim`'s work (`WritesFirst.write`) in a transaction holding
        its row locked, the work read again under that lock: an erasure that came first has
        rewritten it (a lesson without their questions) or dropped it (their export), and what it
        left is what is written, if anything. An erasure that comes while this writes waits for
        the commit, then cleans or deletes what was written. So both take the claim's row first and
        the file's lock second: no deadlock. In the same transaction, the rest of the work replaces
        it: the replies, recorded done as `OwedReplies.work_done` does, when all that is left is to
        tell the actor (`Tell`); otherwise the rest, returned to be done after the commit (a KB
        reload, which must not hold SQLite's write lock), as `_do_kept` does any work. None when
        the claim owes no work any more. A kill before the commit leaves the whole work to a sweep
        (written `again`, idempotently); after it, only the rest."""
        async with self.database.transaction() as session:
            stored = await events_repo.lock_work(session, claim_id=claim)
            if stored is None:
                return None
            current = decode_work(stored)
            event = current.event
            rest = tuple(
                [
                    await self._written(event, cid, work, again=again)
                    if isinstance(work, WritesFirst)
                    else work
                    for work in current.work
                ]
            )
            if all(isinstance(work, Tell) for work in rest):
                told = [m for work in rest for m in cast(Tell, work).messages]
                replies = self._with_told(event, replies, told)
                await events_repo.work_done(session, claim_id=claim, owed=encode(replies))
                return replies
            left = OwedWork(event, rest)
            if rest != current.work:
                await events_repo.keep_work(session, claim_id=claim, work=encode_work(left))
            return left

    async def _written(self, event: InboundEvent, cid: str, work: WritesFirst, *, again: bool) -> KeptWork:
        """The rest of `work` once it has written its files; what went wrong, told as `_told` tells
        it, if the write failed (never written again: the failure is told instead)."""
        rest: list[KeptWork] = []

        async def write() -> Sequence[OutboundMessage]:
            rest.append(await work.write(event, self.services, again=again))
            return ()

        told = await self._told(event, cid, write())
        return rest[0] if rest else Tell(tuple(told))

    def _with_told(
        self, event: InboundEvent, replies: list[PendingDelivery], told: Iterable[OutboundMessage]
    ) -> list[PendingDelivery]:
        """`replies`, then what the work `told` the event's actor, each with its idempotency key."""
        return [
            *replies,
            *self._keyed(
                PendingDelivery(Delivery(conversation=event.conversation, message=message, reply_to=event))
                for message in told
            ),
        ]

    async def _record_failure(
        self, event: InboundEvent, outcome: Outcome, reply: OutboundMessage | None
    ) -> tuple[Outcome, list[PendingDelivery], int | None]:
        """The handler's work was rolled back; still claim the event so a platform retry does not
        run (and fail) again, then tell the user (`reply`, if any)."""
        outbox = (
            [PendingDelivery(Delivery(conversation=event.conversation, message=reply, reply_to=event))]
            if reply is not None
            else []
        )
        try:
            async with self.database.transaction() as session:
                outbox, owed = await self._claim(session, event, outbox)
                return outcome, outbox, owed
        except _Duplicate:
            return Outcome.DUPLICATE, [], None
        except Exception:
            log.exception("could not record failed event %s", event.event_id)
        return outcome, outbox, None

    async def _claim(
        self,
        session: DbSession,
        event: InboundEvent,
        outbox: list[PendingDelivery],
        *,
        kept: Sequence[KeptWork] = (),
    ) -> tuple[list[PendingDelivery], int | None]:
        """Claim the event, last thing in its transaction, with its replies kept in the claim, each
        with its idempotency key from now on (so that a replay is recognised where it did reach the
        platform); the replies and the claim's id when it keeps them. `_Duplicate` when another
        transaction claimed the event first: this one's work is rolled back.

        Last, not first: the claim then carries the replies in the same statement, one write
        instead of two for nearly every event. A duplicate is rare (a platform's retry, a replay
        after a kill) and runs its handler before it is found out; on PostgreSQL one running beside
        the original waits at the claim for the original's commit. Replies that cannot be written
        down still go out, only without that safety net. So does the `kept` work, kept with the
        claim (and the claim owing, if only an empty list of replies) until it is done."""
        keyed = self._keyed(outbox)
        text: str | None = None
        work: str | None = None
        try:
            text = encode(keyed) if keyed else None
            work = encode_work(OwedWork(event, tuple(kept))) if kept else None
            text = encode([]) if work is not None and text is None else text
        except Exception:  # NotKeepable, or a bug in the codec: never worth the event itself
            log.exception("what %s %s owes cannot be kept until done", event.platform.value, event.event_id)
        claim = await events_repo.claim_event(
            session,
            platform=event.platform.value,
            event_id=event.event_id,
            owed=text,
            owed_until=self.owed.until() if text is not None else None,
            work=work,
            last=True,
        )
        if claim is None:
            raise _Duplicate
        return keyed, claim if text is not None else None

    @staticmethod
    def _keyed(outbox: Iterable[PendingDelivery]) -> list[PendingDelivery]:
        """The replies, each with its idempotency key from now on."""
        return [
            p if p.delivery.idempotency_key else p.with_delivery(idempotency_key=f"r{uuid.uuid4().hex[:20]}")
            for p in outbox
        ]

    async def _send_all(
        self, outbox: list[PendingDelivery], owed: int | None, *, settle: InboundEvent | None = None
    ) -> None:
        """Post the replies, record what they asked to once sent, tell the adapter the event
        (`settle`) is done with, and mark the claim posted (cleared with the next batch). The
        adapter hears it once the replies are out and their records written (or given up: up to
        about 30 s while the database is down), before the claim is cleared."""
        self._hold(owed)
        try:
            try:
                sent = [
                    (pending, await self._deliver(self._late_as_resend(pending, owed))) for pending in outbox
                ]
                # Refused past every retry by a platform that may take them later: still owed.
                later = [p for p, ref in sent if isinstance(ref, GaveUp)] if owed is not None else []
                done = [(p.on_sent, ref) for p, ref in sent if p.on_sent and isinstance(ref, SentRef)]
                if done:
                    # Clears the claim in the same transaction, unless some replies are still owed.
                    await self._run_on_sent(done, None if later else owed)
            finally:
                if settle is not None:
                    await self._settle(settle)
            if owed is not None and later:
                await self._keep_owing(owed, later)
            elif not done and owed is not None:
                self.owed.posted(owed)
        except Exception:
            # The replies were tried; a failure to clear the claim means another post later, which
            # the idempotency keys make harmless where the platform can recognise it.
            log.exception("clearing owed replies failed")
        finally:
            if owed is not None:
                self._owing.release([owed])

    def _hold(self, owed: int | None) -> None:
        """Hold claim `owed` as this process's to post, renewed until `_send_all` is done with it."""
        if owed is not None and owed not in self._owing:
            self._owing.take(owed, until=self.owed.until())

    def _late_as_resend(self, pending: PendingDelivery, owed: int | None) -> PendingDelivery:
        """A reply this process posts after its hold on the claim ran out (its loop or its database
        stalled longer than the lease, so nothing renewed it) may have been posted meanwhile by
        another process's sweep: it goes as a resend, which a platform that can looks up first."""
        held = self._owing.until(owed) if owed is not None else None
        if held is None or pending.delivery.resend or self.services.clock() < held:
            return pending
        return pending.with_delivery(resend=True)

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

    async def _settle(self, event: InboundEvent, *, duplicate: bool = False) -> None:
        """Tell the event's adapter that the event is done with, if it asks to know (`SettlesEvents`)."""
        adapter = self.outbound.adapters.get(event.platform)
        settles = self._settles.get(type(adapter))
        if settles is None:  # a Protocol isinstance walks the class each time: once per adapter type
            settles = self._settles[type(adapter)] = isinstance(adapter, SettlesEvents)
        if settles:
            try:
                await cast(SettlesEvents, adapter).event_settled(event, duplicate=duplicate)
            except Exception:
                log.exception("%s adapter failed to settle %s", event.platform.value, event.event_id)

    async def _deliver(self, pending: PendingDelivery) -> SentRef | GaveUp | None:
        try:
            return await self.outbound.attempt(pending.delivery)
        except Exception:
            log.exception("delivery to %s failed", pending.delivery.conversation.key)
            return None

    async def _keep_owing(self, owed: int, replies: list[PendingDelivery]) -> None:
        """Keep the replies a platform refused past every retry with the claim, for a later sweep
        (which posts them as resends: one may have landed after all). If they cannot be kept, they
        are given up."""
        try:
            await self.owed.keep(owed, replies)
            log.warning("%d repl(ies) kept to post again after the lease (claim %d)", len(replies), owed)
        except Exception:
            log.exception("could not keep replies to post again (claim %d); given up", owed)
            self.owed.posted(owed)

    async def _run_on_sent(self, done: list[tuple[OnSent, SentRef]], owed: int | None) -> None:
        """What handlers asked to record once their messages were posted (a staff thread, the
        ticket's new home), and the claim's owed replies cleared, in one transaction: an escalation
        has two callbacks, and a transaction costs more than the UPDATE inside it. A broken
        connection is tried again every `RECORD_RETRY_SECONDS`, as long as an event would be: the
        messages are out, and what they recorded (the card's thread, the ticket's new home) would be
        lost with the try, so the team's answers under that card would reach nobody. Any other
        failure runs each callback on its own so that one bad callback does not lose the others'
        work."""
        for attempt in itertools.count(1):
            try:
                async with self.database.transaction() as session:
                    for on_sent, ref in done:
                        await on_sent(session, ref, self.services)
                    if owed is not None:
                        await events_repo.settle_owed(session, ids=[owed], last=True)
                return
            except Exception as error:
                if lost_connection(error) and attempt * RECORD_RETRY_SECONDS < sum(RECONNECT_DELAYS):
                    if attempt == 1:
                        log.warning(
                            "database connection lost recording sent messages; again every %.1f s",
                            RECORD_RETRY_SECONDS,
                        )
                    await asyncio.sleep(RECORD_RETRY_SECONDS)
                    continue
                log.exception("recording sent messages failed; each on its own")
                break
        for on_sent, ref in done:
            try:
                async with self.database.transaction() as session:
                    await on_sent(session, ref, self.services)
            except Exception:
                log.exception("recording a sent message failed")
        if owed is not None:
            self.owed.posted(owed)

    # -- replies a dead process owed ----------------------------------------------------------

    async def _pay_owed_forever(self) -> None:
        while True:
            try:
                while await self.pay_owed():
                    pass
            except Exception:
                log.warning(
                    "looking for owed replies failed; again in %.0f s", OWED_SWEEP_SECONDS, exc_info=True
                )
            await asyncio.sleep(OWED_SWEEP_SECONDS)

    async def pay_owed(self) -> int:
        """Post the replies whose lease ran out unposted; how many claims were paid."""
        due: list[Owed] = await self.owed.due(limit=OWED_BATCH)
        # Not those this process is posting right now (its renewal came too late); the rest of the
        # batch is held as they are, or a long batch would let another sweep take its tail. One it
        # stopped renewing (its post hung past the ceiling) is taken again: alone, no other would.
        mine = [owed for owed in due if not self._owing.renewing(owed.claim_id)]
        held = self.owed.until()
        for owed in mine:
            self._owing.take(owed.claim_id, until=held)
        try:
            for owed in mine:
                replies = [p.with_delivery(resend=True) for p in owed.replies]
                if owed.work is not None:
                    log.info("doing the work a stopped process left undone (claim %d)", owed.claim_id)
                    done = await self._do_kept(
                        owed.claim_id, owed.work, replies, new_correlation_id(), again=True
                    )
                    if done is None:  # the next sweep, once the lease has run out again
                        continue
                    replies = done
                log.info(
                    "posting %d repl(ies) a stopped process owed (claim %d)", len(replies), owed.claim_id
                )
                await self._send_all(replies, owed.claim_id)
        finally:
            self._owing.release(owed.claim_id for owed in mine)
        return len(mine)

    async def post_claimed(self, replies: list[PendingDelivery], claim: int) -> None:
        """Post replies this process has just committed with claim `claim` for work of its own (the
        digest), as an event's are posted: held while they go, kept owed if the platform refuses
        them, cleared once out; a process killed first leaves them to another process's sweep."""
        await self._send_all(replies, claim)

    async def _keep_owing_forever(self) -> None:
        # A few ticks per lease, so that a short lease is renewed before it runs out too.
        every = min(CLEAR_EVERY, self.owed.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(every)
            try:
                await self.keep_owing()
            except Exception:
                log.warning("holding on to owed replies failed; again in %.1f s", every, exc_info=True)
            for renew in self._renewals:
                try:
                    await renew()
                except Exception:
                    log.warning("holding on to inbox rows failed; again in %.1f s", every, exc_info=True)

    async def keep_owing(self) -> None:
        """Clear the claims whose replies were posted, and hold on to those this process is still
        posting once half their lease is gone: a post slower than the lease (a platform timing out,
        rate limits, a sweep's long batch) must not let another process's sweep post the same
        replies again (on Slack, a reply this process then posts as new is not looked up first: it
        would show twice)."""
        await self.owed.clear_posted()
        await self._owing.renew(self.owed.renew, now=self.services.clock())
