"""Guards shared by handlers."""

from __future__ import annotations

from bot.context import HandlerContext
from bot.events import InboundEvent
from bot.router import Allow, Deny, Verdict


def staff_only(action: str):  # type: ignore[no-untyped-def]
    """Refuse non-staff with a clear message and an audit row naming `action`."""

    async def guard(event: InboundEvent, ctx: HandlerContext) -> Verdict:
        if ctx.is_staff:
            return Allow()
        return Deny(
            "That's for the support team only. If you need help, just ask me or use `/ticket`.", audit=action
        )

    return guard
