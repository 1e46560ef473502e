"""Staff commands for the knowledge base: load it again after editing, without a restart."""

from __future__ import annotations

from bot.core.context import HandlerContext
from bot.core.errors import UsageError
from bot.core.events import CommandInvoked, OutboundMessage
from bot.core.router import Router, command
from bot.handlers.guards import staff_only
from bot.kb.loader import KBError

router = Router("kb_admin")
router.group("support kb", "The knowledge base")
router.command("support kb reload", "Load the knowledge base again after editing it", staff=True)


@router.on(CommandInvoked, command("support", "kb"), guards=[staff_only("support.kb")])
async def reload_knowledge_base(event: CommandInvoked, ctx: HandlerContext) -> None:
    if ctx.match.rest.strip().lower() != "reload":
        raise UsageError(
            "What should I do with the knowledge base?",
            usage="/support kb reload",
            example="/support kb reload",
        )
    try:
        summary = await ctx.services.kb.reload_async()
    except KBError as error:
        # The previous knowledge base stays in service; staff see exactly what to fix.
        lines = "\n".join(f"- `{problem}`" for problem in error.problems[:10])
        await ctx.reply(
            OutboundMessage(
                text=f"The knowledge base has problems, so I kept the previous one:\n{lines}",
                private_to=event.actor,
            )
        )
        return
    await ctx.reply(OutboundMessage(text=summary.text(), private_to=event.actor))
