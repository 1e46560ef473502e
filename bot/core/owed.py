"""Replies owed: what an event still has to post, kept with its claim until it is posted.

The dispatcher commits an event's handling and then posts its replies. A process killed in between
used to lose them for good: the claim on (platform, event id) makes the platform's redelivery, or
the inbox's replay, a duplicate. So the replies are written into the claim, in the transaction that
claims the event (`Dispatcher._claim`), and cleared once posted; a claim still owing after its lease
belongs to a process that died or hung, and any process posts its replies (`Dispatcher` sweeps for
them). Every reply carries its idempotency key from the start and a replay is marked `resend`, so
a post that did reach the platform before the kill is recognised (Discord's nonce, Slack's message
metadata) instead of posted twice.

What a handler asks to run once its message is posted (`OnSent`) must survive the process too, so it
is data: a frozen dataclass registered with `@sent_hook`, whose fields say what to record. So is
the work it leaves for after the commit that must not be lost (`KeptWork`, `@kept_work`, a write to
learned.yml): kept with the claim, with the event it answers, until done. Work that writes a file
an erasure cleans (`WritesFirst`) writes it holding its claim's row, which the erasure locks too
before the files: one waits for the other.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from bot.core import events
from bot.core.clock import utc_now
from bot.core.context import KeptWork, PendingDelivery, Services
from bot.core.metrics import Metrics
from storage import events_repo
from storage.db import Database

log = logging.getLogger(__name__)

_H = TypeVar("_H")

_EVENT_TYPES: tuple[type, ...] = (
    events.Actor,
    events.Conversation,
    events.MessageReceived,
    events.SharedFile,
    events.CommandInvoked,
    events.ActionInvoked,
    events.ReactionAdded,
    events.Button,
    events.Field,
    events.Mention,
    events.FetchFrom,
    events.Attachment,
    events.Moment,
    events.OutboundMessage,
    events.SentRef,
    events.NewThread,
    events.Delivery,
)
_ENUMS: dict[str, type[enum.Enum]] = {
    e.__name__: e for e in (events.Platform, events.ButtonStyle, events.TimeStyle)
}
# Only these classes are ever built from stored text: a row cannot name anything else to construct.
_TYPES: dict[str, type] = {cls.__name__: cls for cls in _EVENT_TYPES}
_HOOKS: dict[str, type] = {}
_WORKS: dict[str, type] = {}

CLEAR_EVERY = 0.5
"""Seconds between clearings of posted replies: the window in which a kill makes another process
post them again (as resends)."""
UNREADABLE_AGAIN_AFTER = timedelta(hours=1)
"""How long a claim whose kept work cannot be read waits for the next try: a class a deploy renamed
is back only after another deploy, and a sweep every lease would read it in vain."""
GIVE_UP_AFTER = timedelta(hours=24)
"""A reply this late is given up, with a warning: the conversation has moved on, and a bot down for
that long has told nobody anything new by posting yesterday's answers."""


def sent_hook(cls: type[_H]) -> type[_H]:
    """Register a frozen dataclass as an `OnSent` that can be kept with owed replies."""
    return _register(cls, _HOOKS)


def kept_work(cls: type[_H]) -> type[_H]:
    """Register a frozen dataclass as a `KeptWork` that can be kept with an event's claim."""
    return _register(cls, _WORKS)


def _register(cls: type[_H], registry: dict[str, type]) -> type[_H]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass to be kept as data")
    registry[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


class WritesFirst:
    """Kept work whose first part writes a file that an erasure cleans or deletes (a lesson into
    learned.yml, a person's export): the dispatcher runs `write` holding the claim's row locked,
    with the work as the claim has it then, and keeps what `write` returns, the rest of the work,
    in its place, in that transaction (`Dispatcher._write_under_claim`). An erasure locks those
    rows before it cleans the files, so whichever comes second sees what the first did: a write
    running when the erasure comes is cleaned or deleted by it, and one after it writes what the
    erasure left of the work. `write` must be quick (file I/O: the lock is SQLite's one write
    lock) and must not use the database; what is slow and holds nobody's data (a KB reload)
    belongs in the rest. A `@kept_work` dataclass, as any kept work."""

    __slots__ = ()

    async def write(self, event: events.InboundEvent, services: Services, *, again: bool) -> KeptWork:
        raise NotImplementedError

    async def __call__(
        self, event: events.InboundEvent, services: Services, *, again: bool
    ) -> Sequence[events.OutboundMessage]:
        """Written and done at once, with no claim to lock: the work could not be kept."""
        rest = await self.write(event, services, again=again)
        return await rest(event, services, again=again)


@kept_work
@dataclasses.dataclass(frozen=True, slots=True)
class Tell:
    """The rest of a piece of kept work when all it has left to do is tell its actor `messages`."""

    messages: tuple[events.OutboundMessage, ...]

    async def __call__(
        self, event: events.InboundEvent, services: Services, *, again: bool
    ) -> Sequence[events.OutboundMessage]:
        return self.messages


class NotKeepable(TypeError):
    """A reply holds something that cannot be written down (a plain function as its `on_sent`)."""


def encode(outbox: Sequence[PendingDelivery]) -> str:
    """The replies as text to store; `NotKeepable` when one cannot be."""
    return json.dumps(
        [{"delivery": _encode(p.delivery), "on_sent": _encode_hook(p.on_sent)} for p in outbox],
        separators=(",", ":"),
    )


def decode(text: str) -> list[PendingDelivery]:
    """What `encode` stored; ValueError when the text is not that."""
    try:
        stored = json.loads(text)
        return [
            PendingDelivery(_decode(item["delivery"]), _decode_hook(item.get("on_sent"))) for item in stored
        ]
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a list of owed replies: {error}") from error


@dataclasses.dataclass(frozen=True, slots=True)
class OwedWork:
    """What an event left for after its commit, kept with its claim: the work and the event whose
    actor hears how it went."""

    event: events.InboundEvent
    work: tuple[KeptWork, ...]


def encode_work(owed: OwedWork) -> str:
    """The work as text to store; `NotKeepable` when a piece is not a `@kept_work` dataclass."""
    return json.dumps(
        {
            "event": encode_event(owed.event),
            "work": [_encode_hook(w, _WORKS, "kept_work") for w in owed.work],
        },
        separators=(",", ":"),
    )


def decode_work(text: str) -> OwedWork:
    """What `encode_work` stored; ValueError when the text is not that."""
    try:
        stored = json.loads(text)
        return OwedWork(decode_event(stored["event"]), tuple(_decode_hook(w, _WORKS) for w in stored["work"]))
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not owed work: {error}") from error


def encode_event(event: events.InboundEvent) -> Any:
    """An inbound event as JSON-ready data (an adapter's inbox keeps an interaction's event so)."""
    return _encode(event)


def decode_event(stored: Any) -> events.InboundEvent:
    """What `encode_event` stored; ValueError when it is not an event."""
    try:
        event = _decode(stored)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a stored event: {error}") from error
    if not isinstance(event, events.InboundEvent):
        raise ValueError(f"not a stored event: {type(event).__name__}")
    return event


def _encode_hook(hook: object, registry: dict[str, type] = _HOOKS, kind: str = "sent_hook") -> Any:
    if hook is None:
        return None
    name = f"{type(hook).__module__}.{type(hook).__qualname__}"
    if registry.get(name) is not type(hook):
        raise NotKeepable(f"{hook!r} is not a @{kind} dataclass")
    assert dataclasses.is_dataclass(hook)
    return {
        "hook": name,
        "fields": {f.name: _encode(getattr(hook, f.name)) for f in dataclasses.fields(hook)},
    }


def _decode_hook(stored: Any, registry: dict[str, type] = _HOOKS) -> Any:
    """An `OnSent` (or, from `_WORKS`, a `KeptWork`): only a class of `registry` is built."""
    if stored is None:
        return None
    name = stored["hook"]
    cls = registry.get(name)
    if cls is None:
        raise ValueError(f"unknown hook {name!r}")
    return _build(cls, name, _field_names(cls), stored["fields"])


_PLAIN = frozenset({str, int, float, bool, type(None)})
_ALWAYS = object()  # a field without a plain default: always written
# Each message type's constructor fields and their defaults, looked up once: every event with a
# reply is encoded, and a field left at its default is not written (most of a message's are).
_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {
    cls: tuple(
        (f.name, _ALWAYS if f.default is dataclasses.MISSING else f.default)
        for f in dataclasses.fields(cls)
        if f.init
    )
    for cls in _EVENT_TYPES
}


@functools.cache
def _field_names(cls: type) -> frozenset[str]:
    """The constructor's field names of a message type or a hook, looked up once per class."""
    return frozenset(f.name for f in dataclasses.fields(cls) if f.init)


_UNKNOWN_TOLD: set[tuple[str, str]] = set()  # (type, field) already logged by this process


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:  # exact types: an enum such as Platform is a str too, and is tagged below
        return value
    fields = _FIELDS.get(kind)
    if fields is not None:
        encoded = {"~": kind.__name__}
        for name, default in fields:
            item = getattr(value, name)
            if default is _ALWAYS or item != default:
                encoded[name] = _encode(item)
        return encoded
    if isinstance(value, enum.Enum):
        return {"~e": kind.__name__, "v": value.value}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        raise NotKeepable(f"{kind.__name__} is not a message type that can be kept")
    if isinstance(value, datetime):
        return {"~t": value.isoformat()}
    if isinstance(value, bytes):
        return {"~b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Path):
        return {"~p": str(value)}
    if isinstance(value, frozenset):
        return {"~s": [_encode(item) for item in value]}  # any order: it is read back as a set
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    raise NotKeepable(f"a {type(value).__name__} cannot be kept with a reply")


_TAGGED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "~e": lambda d: _ENUMS[d["~e"]](d["v"]),
    "~t": lambda d: datetime.fromisoformat(d["~t"]),
    "~b": lambda d: base64.b64decode(d["~b"]),
    "~p": lambda d: Path(d["~p"]),
    "~s": lambda d: frozenset(_decode(item) for item in d["~s"]),
}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(item) for item in value)  # every sequence in a message is a tuple
    if not isinstance(value, dict):
        return value
    if "~" in value:
        cls = _TYPES.get(value["~"])
        if cls is None:
            raise ValueError(f"unknown message type {value['~']!r}")
        return _build(cls, cls.__name__, _field_names(cls), value)
    for tag, build in _TAGGED.items():
        if tag in value:
            return build(value)
    raise ValueError(f"not a stored value: {sorted(value)}")


def _build(cls: type, kind: str, known: frozenset[str], fields: Mapping[str, Any]) -> Any:
    """`cls` from its stored `fields`, less those it does not have in this version (and the "~"
    tag). A newer process on the same database (a rolling upgrade) keeps what it added, and a field
    with a default is by construction one this version does not act on: dropped, and logged once by
    name (its value may be a customer's words), rather than the event or reply lost. A missing
    field is the constructor's to refuse (TypeError)."""
    for name in fields.keys() - known - {"~"}:
        if not name.isidentifier():  # no version names a field so: damaged or forged, not newer
            raise ValueError(f"not a stored value: a {kind} with a field that is no name")
        if (kind, name) not in _UNKNOWN_TOLD:
            _UNKNOWN_TOLD.add((kind, name))
            log.warning("kept %s has a field this version does not know, ignored: %s", kind, name)
    return cls(**{name: _decode(item) for name, item in fields.items() if name in known})


@dataclasses.dataclass(frozen=True, slots=True)
class Owed:
    """A claim whose replies are still to be posted, as a sweep finds it."""

    claim_id: int
    replies: list[PendingDelivery]
    work: OwedWork | None = None
    """Work its event left for after the commit, not done yet (the process died first)."""


class OwedReplies:
    """The owed replies in the bot's database. Posted replies are cleared in batches (`posted`,
    then `clear_posted` every `CLEAR_EVERY`): nearly every event has replies, and a write of its own
    after each would cost about as much as the event's handling transaction. A process killed
    before its batch is cleared leaves those replies owed: another process posts them again, as
    resends, which the idempotency keys make harmless where the platform can recognise them."""

    def __init__(
        self,
        database: Database,
        *,
        lease: timedelta,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        self.database = database
        self.lease = lease
        self._clock = clock
        self._metrics = metrics or Metrics(process=False)
        self._posted: list[int] = []
        self._unreadable: set[int] = set()  # claims whose work this process has reported unreadable

    def until(self) -> datetime:
        """Until when a process that owes replies now has to post them before another one may."""
        return self._clock() + self.lease

    async def renew(self, held: Mapping[int, datetime], until: datetime) -> list[int]:
        """Hold on to claims this process is still posting (id -> until when it holds each) until
        `until`; those renewed."""
        async with self.database.transaction() as session:
            return await events_repo.renew_owed(session, held=held, until=until)

    async def keep(self, claim_id: int, replies: Sequence[PendingDelivery]) -> None:
        """The claim still owes `replies` (the platform refused them past every retry): any
        process's sweep posts them once its lease has run out again."""
        text = encode(replies)
        async with self.database.transaction() as session:
            await events_repo.keep_owed(session, claim_id=claim_id, owed=text, until=self.until())

    def posted(self, claim_id: int) -> None:
        """The claim's replies are out (or given up after the outbound retries): cleared with the
        next batch."""
        self._posted.append(claim_id)

    async def clear_posted(self) -> int:
        """Clear the batch of posted claims; how many. If that fails, they wait for the next try."""
        if not self._posted:
            return 0
        batch, self._posted = self._posted, []
        try:
            async with self.database.transaction() as session:
                await events_repo.settle_owed(session, ids=batch)
        except BaseException:
            self._posted[:0] = batch
            raise
        return len(batch)

    async def work_done(self, claim_id: int, replies: Sequence[PendingDelivery]) -> bool:
        """The claim's work is done: `replies` (what it owed, and what the work said) are owed
        instead. False when the work was no longer owed (`events_repo.work_done`): the replies are
        then not this process's to post."""
        text = encode(replies)
        async with self.database.transaction() as session:
            return await events_repo.work_done(session, claim_id=claim_id, owed=text)

    async def due(self, *, limit: int) -> list[Owed]:
        """Claim what is owed past its lease. Replies alone that cannot be read back, or owed since
        longer than `GIVE_UP_AFTER`, are cleared with a warning instead: they must not come back
        every sweep. Work is never too late (a lesson written late beats one lost), nor given up:
        work no class can read any more (`_unreadable`) is kept, and tried again later."""
        now = self._clock()
        async with self.database.transaction() as session:
            rows = await events_repo.claim_owed(session, now=now, lease=self.lease, limit=limit)
        owed: list[Owed] = []
        given_up: list[int] = []
        unreadable: list[int] = []
        for claim_id, text, handled_at, work in rows:
            if work is None and now - handled_at > GIVE_UP_AFTER:
                log.warning("replies owed since %s given up: too late to post", handled_at.isoformat())
                given_up.append(claim_id)
                continue
            try:
                owed.append(Owed(claim_id, decode(text), decode_work(work) if work is not None else None))
            except ValueError as error:
                if work is not None:
                    self._unreadable_work(claim_id, error)
                    unreadable.append(claim_id)
                    continue
                log.error("owed replies of claim %d cannot be read (%s); given up", claim_id, error)
                given_up.append(claim_id)
        if given_up or unreadable:
            async with self.database.transaction() as session:
                await events_repo.settle_owed(session, ids=given_up)
                await events_repo.renew_owed(
                    session,
                    held=dict.fromkeys(unreadable, now + self.lease),
                    until=now + UNREADABLE_AGAIN_AFTER,
                )
        return owed

    def _unreadable_work(self, claim_id: int, error: ValueError) -> None:
        """Report, once per process, work that no class of this version can read (a `@kept_work`
        class renamed or removed by a deploy): it is kept with its claim for a deploy that can read
        it, or a person, and not given up: a lesson or an export is not lost without a trace."""
        if claim_id in self._unreadable:
            return
        self._unreadable.add(claim_id)
        self._metrics.kept_work_unreadable.inc()
        log.error(
            "kept work of claim %d cannot be read (%s): kept, tried again in %s",
            claim_id,
            error,
            UNREADABLE_AGAIN_AFTER,
        )
