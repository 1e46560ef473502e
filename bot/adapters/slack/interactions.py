"""Commands and clicks: the response_url Slack gives each (5 uses in 30 minutes), kept so the answer
reaches the one who asked privately, or publicly where the bot may not post (a channel it is not in)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters.base import DeliveryFailure
from bot.adapters.retries import SdkRetries
from bot.adapters.slack.retries import retry_handlers
from bot.adapters.slack.translate import Part
from bot.core.events import InboundEvent

log = logging.getLogger(__name__)


class Interactions:
    """event_id → response_url for commands and clicks, bounded, with Slack's limits on its use."""

    USES = 5
    LIFETIME = 30 * 60

    def __init__(
        self, *, timeout: float, rate_limit_retries: int, retries: SdkRetries, size: int = 10_000
    ) -> None:
        self._timeout = timeout
        self._rate_limit_retries = rate_limit_retries
        self._retries = retries
        self._size = size
        self._urls: OrderedDict[str, tuple[str, float, int]] = OrderedDict()

    def remember(self, event: InboundEvent, url: str | None, *, age: float = 0.0) -> None:
        """Keep the response_url of a command or click Slack sent `age` seconds ago (a replay's is
        older): it expires 30 minutes after Slack sent it, and then the answer goes through the Web
        API instead (`reply` says False)."""
        if not url:
            return
        if age >= self.LIFETIME:
            log.info("the response_url of %s has expired; answering through the Web API", event.event_id)
            return
        self._urls[event.event_id] = (url, time.monotonic() + self.LIFETIME - age, 0)
        while len(self._urls) > self._size:
            self._urls.popitem(last=False)

    def take(self, event: InboundEvent) -> str | None:
        """The event's response_url for one more use, or None when it has none left."""
        entry = self._urls.get(event.event_id)
        if entry is None:
            return None
        url, expires, uses = entry
        if expires < time.monotonic() or uses >= self.USES:
            del self._urls[event.event_id]
            return None
        self._urls[event.event_id] = (url, expires, uses + 1)
        return url

    async def reply(
        self,
        event: InboundEvent | None,
        part: Part,
        *,
        response_type: str,
        session: aiohttp.ClientSession | None,
    ) -> bool:
        """Answer through the event's response_url; False when there is none left or it failed."""
        url = self.take(event) if event is not None else None
        if url is None:
            return False
        webhook = AsyncWebhookClient(
            url,
            timeout=int(max(1, self._timeout)),
            session=session,
            retry_handlers=retry_handlers(self._retries, rate_limit_retries=self._rate_limit_retries),
        )
        try:
            response = await webhook.send_dict(
                {
                    "response_type": response_type,
                    "replace_original": False,
                    "text": part.text,
                    "blocks": part.blocks,
                }
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
            log.info("response_url failed (%s); falling back to the Web API", type(error).__name__)
            return False
        if response.status_code != 200:
            log.info("response_url answered %s (%s)", response.status_code, response.body[:100])
            if response.status_code == 429:
                # Retried through the Web API, which the core does not see either.
                self._retries.saw(DeliveryFailure.RATE_LIMITED)
            return False
        return True
