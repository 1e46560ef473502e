"""What a handler gets besides its event: the session, the match, services and ways to reply."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.core.commands import Command
from bot.core.events import Conversation, Delivery, InboundEvent, NewThread, OutboundMessage, SentRef
from bot.core.metrics import Metrics
from bot.core.router import Match
from storage.session import DbSession

if TYPE_CHECKING:
    from bot.core.staff import StaffPolicy
    from bot.settings import Settings


class OnSent(Protocol):
    """Runs after a message was sent, in a fresh transaction (e.g. to remember a staff thread).
    Kept with the event's owed replies, so it is a `@sent_hook` frozen dataclass (bot/core/owed.py),
    which may run in another process than the one that handled the event."""

    async def __call__(self, session: DbSession, ref: SentRef, services: Services) -> None: ...


AfterCommit = Callable[[], Awaitable[None]]
"""Work a handler leaves for after its event's transaction committed (see `HandlerContext.after_commit`)."""


class KeptWork(Protocol):
    """Work after the commit that must not be lost with the process (a write to learned.yml): a
    `@kept_work` frozen dataclass (bot/core/owed.py), kept with the event's claim until done. It
    returns what to tell the event's actor. `again`: a process died before its run was recorded as
    done, so what it may have done already counts as done (the work must be idempotent)."""

    async def __call__(
        self, event: InboundEvent, services: Services, *, again: bool
    ) -> Sequence[OutboundMessage]: ...


# What handlers and the process need of the knowledge base and the broadcast worker. Protocols, because
# core sits below those packages and imports neither; `bot.kb.knowledge_base.KnowledgeBaseHolder`
# and `bot.status.broadcast.worker.BroadcastWorker` satisfy them (the type checker checks it in app.py).


class KBLink(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def url(self) -> str: ...


class KBArticle(Protocol):
    """One answer of the knowledge base (`bot.kb.model.KBEntry`)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def answer(self) -> str: ...
    @property
    def links(self) -> Sequence[KBLink]: ...
    @property
    def component(self) -> str | None: ...


class KBCandidate(Protocol):
    @property
    def entry(self) -> KBArticle: ...
    @property
    def confidence(self) -> float: ...


class KBVerdict(Protocol):
    """What to do with a question (`bot.kb.model.Decision`): `band` is a `bot.kb.model.Band`."""

    @property
    def band(self) -> str: ...
    @property
    def candidates(self) -> Sequence[KBCandidate]: ...
    @property
    def declined(self) -> str | None:
        """The declined topic the question found first: staff said such questions are not the bot's."""
        ...


class KBReloadReport(Protocol):
    def text(self) -> str: ...


class KnowledgeBase(Protocol):
    def ask(self, question: str) -> KBVerdict: ...

    def ask_many(self, questions: Sequence[str]) -> Sequence[KBVerdict]:
        """`ask` for many questions at once (CPU work: run it in a thread)."""
        ...

    async def ask_async(self, question: str) -> KBVerdict:
        """`ask` without stalling the event loop when matching is slow."""
        ...

    def get(self, entry_id: str) -> KBArticle | None: ...

    def declined_questions(self) -> Sequence[str]:
        """The questions of every declined topic (settled: never a knowledge gap again)."""
        ...

    async def reload_async(self) -> KBReloadReport:
        """Raises `bot.kb.loader.KBError` (and keeps the current one) when the files are broken."""
        ...

    async def watch(self) -> None:
        """Reload whenever the files change, until cancelled."""
        ...


class Broadcaster(Protocol):
    def wake(self) -> None:
        """Look at the outbox now (a broadcast was just queued) instead of at the next poll."""


@dataclass(frozen=True, slots=True)
class Services:
    """Long-lived things handlers use. `app.py` builds one; tests build their own."""

    settings: Settings
    staff: StaffPolicy
    clock: Callable[[], datetime]
    kb: KnowledgeBase
    broadcaster: Broadcaster
    help: tuple[Command, ...] = ()
    metrics: Metrics = field(default_factory=lambda: Metrics(process=False))


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    delivery: Delivery
    on_sent: OnSent | None = None

    def with_delivery(self, **changes: Any) -> PendingDelivery:
        """The same reply with its delivery changed (a key given, marked as a resend)."""
        return PendingDelivery(dataclasses.replace(self.delivery, **changes), self.on_sent)


@dataclass
class HandlerContext:
    event: InboundEvent
    session: DbSession
    services: Services
    correlation_id: str
    match: Match = field(default_factory=lambda: Match(0.0))
    allowed: Any = None
    """What the route's last guard found (see `Allow.data`)."""
    outbox: list[PendingDelivery] = field(default_factory=list)
    after_commit_work: list[AfterCommit] = field(default_factory=list)
    kept_work: list[KeptWork] = field(default_factory=list)
    across_tries: dict[str, Any] = field(default_factory=dict)
    """The same dict for every try of one event (each try has a context of its own): what a try
    did that its rollback cannot take back, for the next try to count (an erasure's questions
    already removed from learned.yml). Only within one process: a kill forgets it."""

    @property
    def now(self) -> datetime:
        return self.services.clock()

    @property
    def is_staff(self) -> bool:
        return self.services.staff.is_staff(self.event.actor)

    async def reply(
        self,
        message: OutboundMessage | str,
        *,
        on_sent: OnSent | None = None,
        new_thread: NewThread | None = None,
    ) -> None:
        """Answer where the event happened (in its thread when the message asks for one, in a new
        thread of its own with `new_thread` where the platform can open one).

        Sent after the event's transaction commits, so a reply never announces something that was
        rolled back.
        """
        if isinstance(message, str):
            message = OutboundMessage(text=message)
        delivery = Delivery(
            conversation=self.event.conversation, message=message, reply_to=self.event, new_thread=new_thread
        )
        self.outbox.append(PendingDelivery(delivery, on_sent))

    def after_commit(self, work: AfterCommit) -> None:
        """Run `work` once the event's transaction has committed: for what a rollback cannot take
        back, such as a write to a file. Never for a transaction rolled back (a duplicate, a failure
        answered with an apology), and once however often the event is handled again after a
        conflict or a dropped connection: each try has a context of its own, and only the one that
        committed runs its work. The dispatcher runs it before the event's replies are sent; `work`
        may `reply` and `post` (what it wrote, what went wrong), but its session is closed by then.
        A `UserError` it raises is told to the actor, as a handler's is. Its replies are not kept
        with the event's claim: a process killed between the commit and the work loses both (what
        must not be lost is `after_commit_kept`, or done inside the transaction, as an erasure's
        cleaning of learned.yml is)."""
        self.after_commit_work.append(work)

    def after_commit_kept(self, work: KeptWork) -> None:
        """`after_commit`, for work that must not be lost with the process: kept with the event's
        claim until done, and done again by another process's sweep (`again`) if this one dies
        first. What it returns is sent to the event's actor, as the event's replies are."""
        self.kept_work.append(work)

    async def post(
        self,
        conversation: Conversation,
        message: OutboundMessage | str,
        *,
        on_sent: OnSent | None = None,
        edit: SentRef | None = None,
        new_thread: NewThread | None = None,
        or_else: Delivery | None = None,
        files_not_attached: Delivery | None = None,
    ) -> None:
        """Post somewhere else: the staff channel, a customer's thread, a DM. `or_else` goes instead
        where the platform refuses `conversation` for good (see `Delivery.or_else`);
        `files_not_attached` after it, naming the files it passes on that could not go."""
        if isinstance(message, str):
            message = OutboundMessage(text=message)
        delivery = Delivery(
            conversation=conversation,
            message=message,
            edit=edit,
            new_thread=new_thread,
            or_else=or_else,
            files_not_attached=files_not_attached,
        )
        self.outbox.append(PendingDelivery(delivery, on_sent))
