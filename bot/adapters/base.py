"""The Adapter protocol: how the core talks to a chat platform, and the errors adapters raise
(`DeliveryError`, with a `DeliveryFailure` code in every platform's terms)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.core.events import Delivery, InboundEvent, Platform, SentRef, SharedFile

EventSink = Callable[[InboundEvent], Awaitable[None]]
"""Adapters hand every inbound event to the sink. The sink only enqueues, so it returns fast."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a platform can render. Adapters downgrade what they lack (buttons become a text hint)."""

    buttons: bool = True
    threads: bool = True
    private_replies: bool = True
    edits: bool = True
    max_text: int = 4000
    max_file_bytes: int = 0
    """The largest file the platform takes with a message; 0: it cannot attach files."""


class DeliveryFailure(StrEnum):
    """Why a delivery failed, in every platform's terms: each adapter maps its platform's own errors
    to these, and the core and the broadcast worker decide on these alone."""

    CHANNEL_GONE = "channel_gone"
    """The channel (or thread, or DM) no longer exists, or is archived."""
    NO_ACCESS = "no_access"
    """The bot may not see or post there (not invited, removed, a permission taken away)."""
    PERSON_UNREACHABLE = "person_unreachable"
    """A private reply could not reach its person (Discord: their DMs are closed to the bot); the
    channel it answers is fine, so there is nothing for staff to fix there."""
    MESSAGE_GONE = "message_gone"
    """The message to edit or to reply under was deleted; the channel itself is fine."""
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    """The bot's token was revoked or expired, or lacks a permission the app must be granted."""
    REJECTED = "rejected"
    """The platform refused this message (too long, malformed, not editable any more)."""
    UNAVAILABLE = "unavailable"
    """The platform did not answer, or failed on its side; later may work."""
    IN_DOUBT = "in_doubt"
    """Sent, but not confirmed in time, and not safe to send again (the platform cannot tell a
    second copy from the first): it may have been posted, so it is given up rather than repeated."""
    UNKNOWN = "unknown"


class DeliveryError(Exception):
    """Sending failed. `permanent` means retrying cannot help (channel gone, bot removed, no access).
    `detail` is the platform's own name for the error (Slack's `not_in_channel`), for the logs and
    for the adapter's own decisions."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        code: DeliveryFailure = DeliveryFailure.UNKNOWN,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.code = code
        self.detail = detail


@runtime_checkable
class Adapter(Protocol):
    platform: Platform
    capabilities: Capabilities

    async def start(self, sink: EventSink) -> None:
        """Connect and begin delivering inbound events to `sink`. Returns once connected."""

    async def stop(self) -> None:
        """Disconnect; after this no more events reach the sink."""

    async def send(self, delivery: Delivery) -> SentRef:
        """Post (or edit, when `delivery.edit` is set) a message. Raises DeliveryError on failure."""
        ...


@runtime_checkable
class SettlesEvents(Protocol):
    """Optional for adapters: told when the dispatcher is done with an event they delivered (handled,
    committed, every reply sent), e.g. to tidy up an interaction no reply answered. Adapters without
    it are unaffected; the dispatcher checks with isinstance. `duplicate`: another handling claimed
    the event (a redelivery, a replay, or the process a replay found still alive), so what was
    answered is that handling's, not this one's to tidy."""

    async def event_settled(self, event: InboundEvent, *, duplicate: bool) -> None: ...


@runtime_checkable
class ReportsConnection(Protocol):
    """Optional for adapters with a connection that can drop after `start` (Discord's gateway,
    Slack's socket): whether it is up now, for readiness and the metrics. An adapter without it
    counts as connected from a successful `start` until `stop`."""

    async def connected(self) -> bool: ...


RetryListener = Callable[[DeliveryFailure], None]
"""Told of each request an SDK sent again on its own while delivering, and why (`RATE_LIMITED` for
a 429, `UNAVAILABLE` for a server or connection error)."""


@runtime_checkable
class ReportsRetries(Protocol):
    """Optional for adapters whose SDK retries requests itself (slack-sdk, discord.py): they tell
    `listener` of each such retry, which the core never sees, so the metrics can count it."""

    def report_retries(self, listener: RetryListener) -> None: ...


class FileNotFetched(Exception):
    """Why a shared file's bytes could not be fetched, in words for the log: never its address,
    which may be all it takes to open it, nor a token."""


@runtime_checkable
class FetchesFiles(Protocol):
    """Optional for adapters: the bytes of a file a person shared with a message it received
    (`SharedFile.ref`), so the core can pass the file itself on, even to another platform. Adapters
    without it relay files as their lines (name, size, link)."""

    async def fetch_file(self, file: SharedFile, *, limit: int) -> bytes:
        """At most `limit` bytes, read as they come (never more held); `FileNotFetched` when the file
        is larger, gone, not the bot's to read, or its platform failed. The caller bounds the time."""
        ...
