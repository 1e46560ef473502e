"""The Adapter protocol: how the core talks to a chat platform, and the errors adapters raise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.core.events import Delivery, InboundEvent, Platform, SentRef

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


class DeliveryError(Exception):
    """Sending failed. `permanent` means retrying cannot help (channel gone, bot removed, no access)."""

    def __init__(
        self, message: str, *, permanent: bool, retry_after: float | None = None, code: str = ""
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.code = code


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
    it are unaffected; the dispatcher checks with isinstance."""

    async def event_settled(self, event: InboundEvent) -> None: ...
