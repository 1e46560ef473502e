"""What support teams need to see: which questions keep coming back, how the bot handled them, and
the report on a period (figures, answer quality, knowledge gaps)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.core.commands import Option, OptionKind
from bot.core.context import HandlerContext
from bot.core.errors import UsageError
from bot.core.events import CommandInvoked, OutboundMessage
from bot.core.router import Router, command
from bot.handlers.guards import staff_only
from bot.insights import messages as report_messages
from bot.insights import report
from bot.insights.lessons import teach_buttons
from storage import decisions_repo

router = Router("insights")
router.command(
    "support questions",
    "The questions that keep coming back, and how they went",
    Option("days", kind=OptionKind.NUMBER, required=False, description="How far back (default 7)"),
    staff=True,
)
router.command(
    "support report",
    "How support went over a period: figures, answer quality, knowledge gaps",
    Option("days", kind=OptionKind.NUMBER, required=False, description="How far back (default 7)"),
    staff=True,
)


def _days(ctx: HandlerContext, command_name: str) -> int:
    """`[days]`: 7 when left out, else a whole number from 1 to 365."""
    days_text = ctx.match.rest.strip() or "7"
    days = report.days_of(days_text)
    if days is None:
        raise UsageError(
            f"`{report_messages.inert(days_text, 20)}` isn't a number of days (1 to 365).",
            usage=f"/support {command_name} [days]",
            example=f"/support {command_name} 30",
        )
    return days


@router.on(CommandInvoked, command("support", "questions"), guards=[staff_only("support.questions")])
async def recurring_questions(event: CommandInvoked, ctx: HandlerContext) -> None:
    days = _days(ctx, "questions")
    rows = await decisions_repo.recurring(ctx.session, since=ctx.now - timedelta(days=days))
    period = "last day" if days == 1 else f"last {days} days"
    if not rows:
        await ctx.reply(OutboundMessage(text=f"No questions in the {period}.", private_to=event.actor))
        return
    lines = []
    for row in rows:
        topic = f"`{row.entry_id}`" if row.entry_id else "_no matching article_"
        lines.append(
            f"- {topic}: asked {row.asked}×, solved {row.solved}, escalated {row.escalated}"
            f" (e.g. \u201c{report_messages.inert(row.example, 80)}\u201d)"
        )
    lines.append("")
    lines.append("Articles with many escalations need a better answer; questions with no article need one.")
    await ctx.reply(
        OutboundMessage(title=f"Recurring questions, {period}", text="\n".join(lines), private_to=event.actor)
    )


@router.on(CommandInvoked, command("support", "report"), guards=[staff_only("support.report")])
async def support_report(event: CommandInvoked, ctx: HandlerContext) -> None:
    """The report in chat, privately: it is for the team, wherever the command was typed."""
    days = _days(ctx, "report")
    settings = ctx.services.settings
    built = await report.build(
        ctx.session,
        kb=ctx.services.kb,
        days=days,
        now=ctx.now,
        zone=settings.report_zone,
        answer_precision=settings.answer_precision,
    )
    footer = f"Charts and every gap: supportbot report --days {days} --out DIR"
    summary = report_messages.summary(built, footer=footer, private_to=event.actor)
    await ctx.reply(replace(summary, buttons=teach_buttons(built, shown=report_messages.GAPS_IN_CHAT)))
