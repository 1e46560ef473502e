"""Staff commands for the knowledge base: load it again after editing, without a restart; approve
an article drafted from a lesson; forget a phrasing the bot was taught."""

from __future__ import annotations

import asyncio

from bot.core.commands import Option
from bot.core.context import HandlerContext
from bot.core.errors import UsageError, UserError
from bot.core.events import CommandInvoked, OutboundMessage
from bot.core.router import Router, command
from bot.handlers.guards import staff_only
from bot.insights.messages import inert
from bot.kb import teach
from bot.kb.learned import LearnedFileError
from bot.kb.loader import KBError

router = Router("kb_admin")
router.group("support kb", "The knowledge base")
router.command("support kb reload", "Load the knowledge base again after editing it", staff=True)
router.command(
    "support kb approve",
    "Publish an article drafted from a lesson",
    Option("id", description="The drafted article's id"),
    staff=True,
)
router.command(
    "support kb forget",
    "Undo a phrasing the bot was taught",
    Option("phrasing", description="The learned phrasing's id, e.g. p12"),
    staff=True,
)
USAGE = "/support kb reload | approve <id> | forget <phrasing>"


@router.on(CommandInvoked, command("support", "kb"), guards=[staff_only("support.kb")])
async def knowledge_base_admin(event: CommandInvoked, ctx: HandlerContext) -> None:
    words = ctx.match.rest.split()
    action = words[0].lower() if words else ""
    if action == "reload" and len(words) == 1:
        await _reload(event, ctx, prefix="")
        return
    if action in ("approve", "forget") and len(words) == 2:
        root = ctx.services.settings.kb_path  # the folder the KB in service was read from
        try:
            if action == "approve":
                article = await asyncio.to_thread(teach.approve, root, words[1])
                done = f"Approved `{article.id}` ({inert(article.title)})."
            else:
                phrasing = await asyncio.to_thread(teach.forget, root, words[1])
                done = f"Forgot `{phrasing.id}` (\u201c{inert(phrasing.text)}\u201d, on `{phrasing.entry}`)."
        except (teach.TeachError, LearnedFileError) as error:
            raise UserError(str(error)) from None
        await _reload(event, ctx, prefix=done + "\n")
        return
    raise UsageError("What should I do with the knowledge base?", usage=USAGE, example="/support kb reload")


async def _reload(event: CommandInvoked, ctx: HandlerContext, *, prefix: str) -> None:
    try:
        summary = await ctx.services.kb.reload_async()
    except KBError as error:
        # The previous knowledge base stays in service; staff see exactly what to fix.
        lines = "\n".join(f"- `{problem}`" for problem in error.problems[:10])
        await ctx.reply(
            OutboundMessage(
                text=f"{prefix}The knowledge base has problems, so I kept the previous one:\n{lines}",
                private_to=event.actor,
            )
        )
        return
    await ctx.reply(OutboundMessage(text=prefix + summary.text(), private_to=event.actor))
