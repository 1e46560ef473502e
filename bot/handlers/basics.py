"""Greetings, help, and what to say when nothing else matched."""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.commands import Command
from bot.core.context import HandlerContext
from bot.core.echo import echo
from bot.core.events import ActionInvoked, CommandInvoked, MessageReceived, OutboundMessage
from bot.core.router import Allow, Router, Skip, Verdict, command, pattern, text_predicate
from bot.tickets import intents

router = Router("basics")
router.group("support", "What the bot can do")
router.command("support help", "What I can do, and the commands you can use")

GREETING = (
    r"^\s*(hi|hello|hey|howdy|good (morning|afternoon|evening)|hiya|yo)\b[\s!.,]*(there|team|bot)?[\s!.]*$"
)


@router.on(MessageReceived, pattern(GREETING, score=0.95))
async def greet(event: MessageReceived, ctx: HandlerContext) -> None:
    await ctx.reply(
        f"Hi {event.actor.name}! Ask me anything about the product, check `/status`, "
        "or type `help` to see what I can do."
    )


async def _direct(event: MessageReceived, ctx: HandlerContext) -> Verdict:
    # In a community channel people thank each other; only a DM's thank-you is meant for the bot.
    return Allow() if event.conversation.is_direct else Skip()


@router.on(MessageReceived, text_predicate(intents.says_solved, score=0.95), guards=[_direct])
async def thanked(event: MessageReceived, ctx: HandlerContext) -> None:
    await ctx.reply("Glad that's sorted! Ask me any time, or say *talk to a human* to reach the team.")


def command_lines(commands: Iterable[Command], *, staff: bool) -> list[str]:
    """A help line for each command everyone may use, then (for staff) the staff ones under a heading."""
    listed = list(commands)
    lines = [f"- `{c.usage}`: {c.summary}" for c in listed if not c.staff]
    theirs = [f"- `{c.usage}`: {c.summary}" for c in listed if c.staff]
    if theirs and staff:
        lines.extend(["", "**Staff**", *theirs])
    return lines


def help_message(ctx: HandlerContext) -> OutboundMessage:
    lines = [
        "Ask a question in your own words and I'll answer from our help articles, or bring in a person.",
        "Say *talk to a human* at any time to reach the team.",
        "",
        *command_lines(ctx.services.help, staff=ctx.is_staff),
    ]
    return OutboundMessage(title="How I can help", text="\n".join(lines), in_thread=True)


@router.on(MessageReceived, pattern(r"^\s*(help|\?|what can you do\??|commands)\s*$", score=0.95))
async def help_text(event: MessageReceived, ctx: HandlerContext) -> None:
    await ctx.reply(help_message(ctx))


@router.on(CommandInvoked, command("support"))
async def support_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    sub = ctx.match.rest.split(" ", 1)[0].lower()
    if sub not in ("", "help"):
        await ctx.reply(
            OutboundMessage(
                text=f"I don't know `/support {echo(sub, 20)}`. Try `/support help`.", private_to=event.actor
            )
        )
        return
    message = help_message(ctx)
    await ctx.reply(OutboundMessage(title=message.title, text=message.text, private_to=event.actor))


@router.fallback(CommandInvoked)
async def unknown_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    await ctx.reply(
        OutboundMessage(
            text=(
                f"I don't know the command `/{echo(event.name, 40)}`. "
                "Type `/support help` to see the ones I know."
            ),
            private_to=event.actor,
        )
    )


@router.fallback(ActionInvoked)
async def unknown_button(event: ActionInvoked, ctx: HandlerContext) -> None:
    await ctx.reply(
        OutboundMessage(
            text=(
                "That button no longer does anything (it may be on an old message). "
                "Ask me again, or type `help`."
            ),
            private_to=event.actor,
        )
    )


@router.fallback(MessageReceived)
async def not_understood(event: MessageReceived, ctx: HandlerContext) -> None:
    if not event.text.strip():
        await ctx.reply("I got an empty message. What can I help you with?")
        return
    await ctx.reply(
        "I'm not sure I can help with that yet. Type `help` to see what I can do, "
        "or `/ticket <what happened>` to reach a person."
    )
