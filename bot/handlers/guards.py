"""Guards shared by handlers, and the audit row of an allowed staff action."""

from __future__ import annotations

from bot.core.context import HandlerContext
from bot.core.events import InboundEvent
from bot.core.router import Allow, Deny, Guard, Skip, Verdict
from storage import audit_repo


def staff_only(action: str, *, hint: str = "If you need help, just ask me or use `/ticket`.") -> Guard:
    """Refuse non-staff with a clear message, what they can do instead (`hint`), and an audit row
    naming `action`."""

    async def guard(event: InboundEvent, ctx: HandlerContext) -> Verdict:
        if ctx.is_staff:
            return Allow()
        return Deny(f"That's for the support team only. {hint}", audit=action)

    return guard


async def customers_only(event: InboundEvent, ctx: HandlerContext) -> Verdict:
    """Skip the team's own messages: a staff member telling a customer "open a ticket" or "you can
    talk to a human" is not asking for one."""
    return Skip() if ctx.is_staff else Allow()


async def audit(ctx: HandlerContext, action: str, detail: str) -> None:
    """Record that the event's actor did `action` (refusals are recorded by the dispatcher)."""
    await audit_repo.record(
        ctx.session, actor_key=ctx.event.actor.key, action=action, allowed=True, detail=detail
    )
