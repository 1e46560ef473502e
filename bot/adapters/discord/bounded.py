"""Bounds on the Discord requests a send awaits. discord.py sets no timeout of its own, and one
channel's events are handled in order, so a request that hangs would hold its channel until Discord
answered. What a timeout then means depends on whether the request may be sent again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Final, TypeVar

from bot.adapters.base import DeliveryError, DeliveryFailure

T = TypeVar("T")

SEND_TIMEOUT: Final = 5.0
"""Seconds a request a send awaits may take before it is given up. discord.py waits out a 429
inside the request, so a Retry-After longer than this is cut too: a request that may be sent again
is then sent later (never twice); one that may not is given up in doubt. The broadcast worker uses
the same bound."""


async def bounded(request: Awaitable[T], seconds: float) -> T:
    """A request that is harmless to send again: a post with its enforced nonce (Discord keeps one
    message however often it arrives), an edit of a known message, a read, a PUT. Its timeout is a
    transient failure (`TimeoutError`, which the adapter reports as `UNAVAILABLE`), so the core sends
    the delivery again."""
    return await asyncio.wait_for(request, seconds)


async def once(request: Awaitable[T], seconds: float, *, what: str) -> T:
    """A request that would make a second copy if sent again (a webhook follow-up takes no nonce):
    after its timeout it is in doubt, and given up (`IN_DOUBT`, permanent) rather than repeated."""
    try:
        return await asyncio.wait_for(request, seconds)
    except TimeoutError:
        raise in_doubt(what, seconds) from None


def in_doubt(what: str, seconds: float) -> DeliveryError:
    return DeliveryError(
        f"Discord did not confirm {what} within {seconds:g} s; it may exist, so it is not sent again",
        permanent=True,
        code=DeliveryFailure.IN_DOUBT,
    )
