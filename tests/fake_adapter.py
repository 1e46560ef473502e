"""An in-memory adapter for tests and benchmarks: inject events, inspect what the bot sent."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, replace
from urllib.parse import quote

from bot.adapters.base import Capabilities, DeliveryError, EventSink, FileNotFetched
from bot.core.events import Conversation, Delivery, InboundEvent, Platform, SentRef, SharedFile


@dataclass(frozen=True, slots=True)
class SentMessage:
    delivery: Delivery
    ref: SentRef

    @property
    def text(self) -> str:
        return self.delivery.message.plain_text

    @property
    def channel_id(self) -> str:
        return self.delivery.conversation.channel_id


class FakeAdapter:
    """Poses as a real platform (the console by default, whose limits and staff rules are the
    simplest), so tests configure the bot through the same settings a user has."""

    def __init__(self, platform: Platform = Platform.CONSOLE, *, workspace_id: str = "W1") -> None:
        self.platform = platform
        self.capabilities = Capabilities(max_text=4000)
        self.workspace_id = workspace_id
        self.sent: list[SentMessage] = []
        self.failures: dict[str, DeliveryError] = {}
        self.shared: dict[str, bytes] = {}  # a shared file's ref -> its bytes, as `fetch_file` finds them
        self.fetched: list[str] = []  # the refs of the files fetched, in order
        self._sink: EventSink | None = None
        self._ids = itertools.count(1)
        self._sent_signal = asyncio.Event()

    async def start(self, sink: EventSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None

    async def inject(self, event: InboundEvent) -> None:
        if self._sink is None:
            raise RuntimeError("adapter not started")
        await self._sink(event)

    def share(self, name: str, data: bytes, kind: str = "", *, size: int | None = None) -> SharedFile:
        """A file a person shares on this platform, which `fetch_file` serves (`size`: what the
        platform says of it, its length unless given)."""
        ref = f"fake-file:{next(self._ids)}"
        self.shared[ref] = data
        link = f"https://files.example/{ref}/{quote(name)}"
        return SharedFile(name=name, size=len(data) if size is None else size, kind=kind, link=link, ref=ref)

    async def fetch_file(self, file: SharedFile, *, limit: int) -> bytes:
        self.fetched.append(file.ref)
        data = self.shared.get(file.ref)
        if data is None:
            raise FileNotFetched("the platform has no such file")
        if len(data) > limit:
            raise FileNotFetched(f"over {limit} bytes")
        return data

    def fail_channel(self, channel_id: str, error: DeliveryError) -> None:
        self.failures[channel_id] = error

    async def send(self, delivery: Delivery) -> SentRef:
        if delivery.direct_to is not None:  # the person's DM with the bot, as `BotHarness.customer_dms`
            dm = Conversation(
                platform=self.platform,
                workspace_id=self.workspace_id,
                channel_id=f"D-{delivery.direct_to.id}",
                is_direct=True,
            )
            delivery = replace(delivery, conversation=dm)
        error = self.failures.get(delivery.conversation.channel_id)
        if error is not None:
            if not error.permanent:
                del self.failures[delivery.conversation.channel_id]
            raise error
        conversation = delivery.conversation
        thread_id = conversation.thread_id
        reply_to = delivery.reply_to
        if thread_id is None and delivery.message.in_thread and reply_to is not None:
            thread_id = getattr(reply_to, "message_id", None)
        message_id = delivery.edit.message_id if delivery.edit else f"m{next(self._ids)}"
        ref = SentRef(
            platform=self.platform,
            workspace_id=conversation.workspace_id,
            channel_id=conversation.channel_id,
            message_id=message_id,
            thread_id=thread_id,
            is_direct=conversation.is_direct,
        )
        self.sent.append(SentMessage(delivery, ref))
        return ref

    def in_channel(self, channel_id: str) -> list[SentMessage]:
        return [m for m in self.sent if m.channel_id == channel_id]
