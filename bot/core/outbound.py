"""Sends deliveries through the right adapter, retrying what is transient, reporting what is not."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from bot.adapters.base import Adapter, DeliveryError, DeliveryFailure
from bot.core.events import Conversation, Delivery, OutboundMessage, Platform, SentRef
from bot.core.metrics import Metrics
from bot.core.relayed_files import fetch_relayed

log = logging.getLogger(__name__)


class GaveUp:
    """What `Outbound.attempt` returns when every retry met a transient failure: the platform may
    take the message later (nothing said it never will)."""

    def __repr__(self) -> str:
        return "GAVE_UP"


GAVE_UP = GaveUp()


_REFUSED_THERE = frozenset(
    {DeliveryFailure.NO_ACCESS, DeliveryFailure.CHANNEL_GONE, DeliveryFailure.PERSON_UNREACHABLE}
)
"""Failures of the place (a channel, a person's DMs), not of the message: the same message, or
what stands for it, may go elsewhere (`or_else`)."""


def _instead(delivery: Delivery) -> Delivery:
    """`delivery.or_else` as the same logical message: its key follows from the first one's and a
    resend stays a resend, so that a replay (another process posting what a killed one owed) is
    recognised where it did land the first time, instead of posted there twice."""
    instead = delivery.or_else
    assert instead is not None
    return replace(
        instead,
        idempotency_key=instead.idempotency_key or f"{delivery.idempotency_key}-else",
        resend=instead.resend or delivery.resend,
    )


class Outbound:
    def __init__(
        self,
        adapters: Mapping[Platform, Adapter],
        *,
        staff_channel: Conversation | None = None,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self.adapters = dict(adapters)
        self.metrics = metrics or Metrics(process=False)
        self.staff_channel = staff_channel
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self._sleep = sleep
        self._reported: set[str] = set()

    async def send(self, delivery: Delivery) -> SentRef | None:
        """The message's ref, or None when it could not be sent (already logged and reported)."""
        sent = await self.attempt(delivery)
        return None if isinstance(sent, GaveUp) else sent

    async def attempt(self, delivery: Delivery) -> SentRef | GaveUp | None:
        """As `send`, but `GAVE_UP` when the retries ran out on transient failures, for a caller
        that can keep the message and try again later."""
        adapter = self.adapters.get(delivery.conversation.platform)
        if adapter is None:
            log.error("no adapter for %s; message dropped", delivery.conversation.platform)
            self.metrics.delivered(delivery.conversation.platform.value, ok=False)
            return None
        # Before the first try, so a retry sends the same files without fetching them again.
        delivery, files_not_attached = await fetch_relayed(delivery, self.adapters)
        sent = await self._attempt(adapter, delivery)
        if files_not_attached is not None and isinstance(sent, SentRef) and not sent.fallback:
            # Only once the message reached them: one that went elsewhere says so itself.
            await self.send(files_not_attached)
        return sent

    async def _attempt(self, adapter: Adapter, delivery: Delivery) -> SentRef | GaveUp | None:
        if delivery.idempotency_key is None:
            # A key from the first attempt on, so a retry after a timeout can be recognised as the
            # same message (Discord's nonce, Slack's message metadata) instead of posted twice.
            delivery = replace(delivery, idempotency_key=f"r{uuid.uuid4().hex[:20]}")
        platform = delivery.conversation.platform.value
        for attempt in range(1, self.max_attempts + 1):
            try:
                ref = await adapter.send(delivery)
            except DeliveryError as error:
                if error.retry_after is not None:
                    self.metrics.rate_limited.labels(platform).inc()
                if error.code is DeliveryFailure.IN_DOUBT:
                    # Perhaps posted: sending it again could show it twice, and nothing says the bot
                    # may not post there, so staff are not asked to fix access.
                    log.error("gave up on %s, perhaps posted: %s", delivery.conversation.key, error)
                    self.metrics.delivered(platform, ok=False)
                    return None
                if error.permanent:
                    log.warning("cannot post in %s: %s", delivery.conversation.key, error)
                    if delivery.or_else is not None and error.code in _REFUSED_THERE:
                        # Planned for, so nothing is lost: staff are not asked to let the bot into
                        # a channel that may not be theirs (a customer's private one), and it is no
                        # failure: the message counts where it goes instead.
                        log.info("sending it where it may go instead")
                        self.metrics.fell_back(platform, error.code)
                        instead = await self.attempt(_instead(delivery))
                        return replace(instead, fallback=True) if isinstance(instead, SentRef) else instead
                    self.metrics.delivered(platform, ok=False)
                    if error.code is not DeliveryFailure.PERSON_UNREACHABLE:
                        await self._report_once(delivery.conversation, error)
                    return None
                if attempt == self.max_attempts:
                    log.error(
                        "giving up on %s after %d attempts: %s", delivery.conversation.key, attempt, error
                    )
                    self.metrics.delivered(platform, ok=False)
                    return GAVE_UP
                self.metrics.delivery_retries.labels(platform).inc()
                if error.retry_after is None:
                    # A rate limit says nothing was posted; a timeout or server error may have been.
                    delivery = replace(delivery, resend=True)
                delay = error.retry_after if error.retry_after is not None else self._backoff(attempt)
                log.info("transient failure (%s); retry %d in %.2fs", error, attempt, delay)
                await self._sleep(delay)
                continue
            self.metrics.delivered(platform, ok=True)
            return ref
        return None

    def _backoff(self, attempt: int) -> float:
        return self.base_delay * (2.0 ** (attempt - 1)) * (0.5 + random.random())

    async def _report_once(self, where: Conversation, error: DeliveryError) -> None:
        """Tell staff about a channel the bot cannot post in, once per channel and process."""
        if self.staff_channel is None or where.channel_key == self.staff_channel.channel_key:
            return
        if where.channel_key in self._reported:
            return
        self._reported.add(where.channel_key)
        adapter = self.adapters.get(self.staff_channel.platform)
        if adapter is None:
            return
        text = (
            f"I can't post in channel `{where.channel_id}` on {where.platform.value}"
            f" ({error.code or error}). Please invite me or check my permissions there."
        )
        try:
            await adapter.send(Delivery(conversation=self.staff_channel, message=OutboundMessage(text=text)))
        except DeliveryError as second:
            log.error("could not tell staff about %s: %s", where.key, second)
