"""A recipient outside the bot process: an HTTP "platform" that counts every request and, like
Discord's `nonce` + `enforce_nonce`, creates one message per idempotency key. Plus the adapter a
worker subprocess uses to post to it."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import aiohttp
from aiohttp import web

from bot.adapters.base import Capabilities, DeliveryError, DeliveryFailure, EventSink
from bot.core.events import Delivery, Platform, SentRef


class Sink:
    def __init__(
        self, *, delay: float = 0.0, hang_after: int | None = None, wait_for_owners: int = 0
    ) -> None:
        self.delay = delay
        # Hold every answer until this many senders have posted: proves they worked side by side.
        self.wait_for_owners = wait_for_owners
        self._owners_seen = asyncio.Event()
        self.hang_after = hang_after
        self.posts: Counter[str] = Counter()  # every request, per key
        self.created: dict[str, str] = {}  # key -> message id, once
        self.by_owner: Counter[str] = Counter()
        # Every request per key, in arrival order: [owner, status answered, answered while the sender
        # was still waiting]. A send the sender gave up on (timed out) is retried with the same key by
        # design; only answers the sender could have heard count as "accepted".
        self.attempts: dict[str, list[list[object]]] = {}
        self.reached = asyncio.Event()
        self._release = asyncio.Event()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = body["nonce"]
        self.posts[key] += 1
        owner = request.headers.get("X-Owner", "")
        self.by_owner[owner] += 1
        gives_up_at = float(request.headers.get("X-Gives-Up-At", "inf"))
        attempt: list[object] = [owner, 0, False]
        self.attempts.setdefault(key, []).append(attempt)
        if key not in self.created:
            self.created[key] = f"m{next(self._ids)}"
        if self.wait_for_owners:
            if len(self.by_owner) >= self.wait_for_owners:
                self._owners_seen.set()
            try:
                # Shorter than the worker's send timeout (half its 30 s lease): a sender never gives
                # up on an answer the sink then delivers, which would make a retry look like a duplicate.
                await asyncio.wait_for(self._owners_seen.wait(), 10)
            except TimeoutError:
                attempt[1:] = [503, time.time() < gives_up_at]
                return web.json_response({"error": "only one sender seen"}, status=503)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hang_after is not None and len(self.created) >= self.hang_after:
            # The message exists, but the sender never hears back: the crash window.
            self.reached.set()
            await self._release.wait()
        # A second of margin: the sender's clock for its timeout started just before this header was set.
        attempt[1:] = [200, time.time() < gives_up_at - 1.0]
        return web.json_response({"id": self.created[key]})

    def accepted_twice(self) -> dict[str, list[list[object]]]:
        """Keys the sink answered 200 more than once while the sender was still listening: a real
        duplicate (claimed by two processes, or resent after the sender heard "accepted")."""
        return {
            key: tries
            for key, tries in self.attempts.items()
            if sum(1 for _, status, heard in tries if status == 200 and heard) > 1
        }

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/messages", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


class SinkAdapter:
    """Posts every delivery to the sink with its idempotency key as the nonce."""

    platform = Platform.CONSOLE
    capabilities = Capabilities()

    def __init__(self, url: str, *, owner: str, gives_up_after: float | None = None) -> None:
        self.url = url
        self.owner = owner
        # The worker's send timeout, told to the sink so it can tell a resend after a timeout (allowed)
        # from a duplicate.
        self.gives_up_after = gives_up_after
        self._session: aiohttp.ClientSession | None = None

    async def start(self, sink: EventSink) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, delivery: Delivery) -> SentRef:
        assert self._session is not None
        payload = {
            "channel": delivery.conversation.channel_id,
            "content": delivery.message.plain_text,
            "nonce": delivery.idempotency_key,
            "enforce_nonce": True,
        }
        headers = {"X-Owner": self.owner}
        if self.gives_up_after is not None:
            headers["X-Gives-Up-At"] = repr(time.time() + self.gives_up_after)
        async with self._session.post(f"{self.url}/messages", json=payload, headers=headers) as r:
            if r.status >= 500:
                raise DeliveryError(f"HTTP {r.status}", permanent=False, code=DeliveryFailure.UNAVAILABLE)
            body = await r.json()
        conversation = delivery.conversation
        return SentRef(
            platform=conversation.platform,
            workspace_id=conversation.workspace_id,
            channel_id=conversation.channel_id,
            message_id=body["id"],
            thread_id=conversation.thread_id,
        )
