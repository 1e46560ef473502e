"""Staff commands for the knowledge base: load it again after editing, without a restart; teach it
from a closed ticket (the Teach button); approve an article drafted from a lesson; forget a
phrasing the bot was taught."""

from __future__ import annotations

import asyncio

from bot.core.commands import Option
from bot.core.context import HandlerContext
from bot.core.errors import UsageError, UserError
from bot.core.events import ActionInvoked, Button, ButtonStyle, CommandInvoked, OutboundMessage
from bot.core.router import Router, action, command
from bot.handlers.guards import staff_only
from bot.insights.messages import inert
from bot.kb import teach
from bot.kb.knowledge_base import KnowledgeBaseHolder
from bot.kb.learned import LearnedFileError
from bot.kb.loader import KBError
from storage import tickets_repo
from storage.models import Ticket

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


async def _reload(event: CommandInvoked | ActionInvoked, ctx: HandlerContext, *, prefix: str) -> None:
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


# -- teaching from a closed ticket ------------------------------------------------------------


def teach_button(ticket_number: int) -> Button:
    """On the staff note that a ticket was closed: teach the bot its question."""
    return Button(action_id="kb.teach", label="Teach", value=str(ticket_number))


async def _lesson(ctx: HandlerContext) -> tuple[KnowledgeBaseHolder, Ticket, str]:
    """The KB in service, the clicked ticket and the team's last reply on it."""
    holder = ctx.services.kb
    if not isinstance(holder, KnowledgeBaseHolder):
        raise UserError("This knowledge base cannot be taught from chat.")
    number = ctx.match.rest.split(":", 1)[0]
    ticket = await tickets_repo.get_by_number(ctx.session, number=int(number)) if number.isdigit() else None
    if ticket is None:
        raise UserError("That button is broken; the ticket is gone.")
    lines = await tickets_repo.transcript(ctx.session, ticket=ticket, limit=200)
    reply = next((line.text for line in reversed(lines) if line.kind == "staff"), "")
    return holder, ticket, reply


def _draft(holder: KnowledgeBaseHolder, ticket: Ticket, reply: str) -> teach.Change:
    return teach.draft_change(
        holder.entries, title=ticket.summary, questions=[ticket.summary], answer=reply or "(write the answer)"
    )


@router.on(ActionInvoked, action("kb.teach"), guards=[staff_only("kb.teach")])
async def teach_from_ticket(event: ActionInvoked, ctx: HandlerContext) -> None:
    holder, ticket, reply = await _lesson(ctx)
    arg = ctx.match.captures.get("arg")
    if arg is None:
        await ctx.reply(await _offer(holder, ticket, reply, event))
        return
    try:
        if arg == "attach":
            entry_id = ctx.match.rest.split(":", 1)[1] if ":" in ctx.match.rest else ""
            change = teach.attach_change(holder.entries, entry_id=entry_id, questions=[ticket.summary])
        elif arg == "draft":
            change = _draft(holder, ticket, reply)
        else:
            raise UserError("That button is broken; please teach from the close card again.")
        article, ids = await asyncio.to_thread(
            teach.publish,
            ctx.services.settings.kb_path,
            change,
            taught_by=event.actor.key,
            from_ticket=ticket.number,
        )
    except (teach.TeachError, LearnedFileError) as error:
        raise UserError(str(error)) from None
    if change.new:
        done = (
            f"Drafted `{article}` from ticket #{ticket.number}; `/support kb approve {article}` publishes it."
        )
    else:
        done = f"Taught `{article}` the question of ticket #{ticket.number} (phrasing `{ids[0]}`)."
    await _reload(event, ctx, prefix=done + "\n")


async def _offer(
    holder: KnowledgeBaseHolder, ticket: Ticket, reply: str, event: ActionInvoked
) -> OutboundMessage:
    """Both ways to teach, each with its replay: attach to the nearest article, or draft one."""
    question = ticket.summary
    decision = await holder.ask_async(question)
    nearest = decision.best.entry.id if decision.best is not None else None
    lines = [f"\u201c{inert(question, 200)}\u201d"]
    buttons = []
    if nearest is not None:
        try:
            attach = teach.attach_change(holder.entries, entry_id=nearest, questions=[question])
        except teach.TeachError as error:
            lines.append(f"Attach to `{nearest}`: {error}")
        else:
            replayed = await asyncio.to_thread(teach.preview, holder, attach)
            lines.append(f"Attach to `{nearest}`: {replayed.text()}")
            buttons.append(
                Button(
                    action_id="kb.teach:attach",
                    label=f"Attach to {nearest}"[:75],
                    value=f"{ticket.number}:{nearest}",
                    style=ButtonStyle.PRIMARY,
                )
            )
    try:
        draft = _draft(holder, ticket, reply)
    except teach.TeachError as error:
        lines.append(f"Draft a new article: {error}")
    else:
        replayed = await asyncio.to_thread(teach.preview, holder, draft)
        lines.append(f"Draft `{draft.entry.id}` from the team's reply: {replayed.text()}")
        buttons.append(
            Button(action_id="kb.teach:draft", label="Draft new article", value=str(ticket.number))
        )
    return OutboundMessage(
        title=f"Teach the bot from ticket #{ticket.number}",
        text="\n".join(lines),
        buttons=tuple(buttons),
        private_to=event.actor,
    )
