"""What support teams need to see: which questions keep coming back and how the bot handled them."""

from __future__ import annotations

from datetime import timedelta

from bot.core.commands import Option, OptionKind
from bot.core.context import HandlerContext
from bot.core.errors import UsageError
from bot.core.events import CommandInvoked, OutboundMessage
from bot.core.router import Router, command
from bot.handlers.guards import staff_only
from bot.tickets import messages
from storage import decisions_repo

router = Router("insights")
router.command(
    "support questions",
    "The questions that keep coming back, and how they went",
    Option("days", kind=OptionKind.NUMBER, required=False, description="How far back (default 7)"),
    staff=True,
)


@router.on(CommandInvoked, command("support", "questions"), guards=[staff_only("support.questions")])
async def recurring_questions(event: CommandInvoked, ctx: HandlerContext) -> None:
    days_text = ctx.match.rest.strip() or "7"
    if not days_text.isdigit() or not 1 <= int(days_text) <= 365:
        raise UsageError(
            f"`{days_text[:20]}` isn't a number of days (1 to 365).",
            usage="/support questions [days]",
            example="/support questions 30",
        )
    days = int(days_text)
    rows = await decisions_repo.recurring(ctx.session, since=ctx.now - timedelta(days=days))
    if not rows:
        await ctx.reply(
            OutboundMessage(text=f"No questions in the last {days} days.", private_to=event.actor)
        )
        return
    lines = []
    for row in rows:
        topic = f"`{row.entry_id}`" if row.entry_id else "_no matching article_"
        lines.append(
            f"- {topic}: asked {row.asked}×, solved {row.solved}, escalated {row.escalated}"
            f" (e.g. \u201c{_one_line(row.example, 80)}\u201d)"
        )
    lines.append("")
    lines.append("Articles with many escalations need a better answer; questions with no article need one.")
    await ctx.reply(
        OutboundMessage(
            title=f"Recurring questions, last {days} days", text="\n".join(lines), private_to=event.actor
        )
    )


def _one_line(text: str, limit: int) -> str:
    """A customer's words quoted inside one line of a staff report: line breaks, markdown and code
    marks flattened, so a question cannot add lines or formatting of its own."""
    plain = text.replace("`", "'").replace("*", "").replace("_", " ").replace("~", "")
    return messages.clip(plain, limit)
