"""Answer from the knowledge base when sure, ask when unsure, bring in a person otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.core.context import HandlerContext, KBArticle, KBCandidate
from bot.core.errors import UserError
from bot.core.events import (
    ActionInvoked,
    Button,
    ButtonStyle,
    MessageReceived,
    OutboundMessage,
    SharedFile,
)
from bot.core.relayed_files import files_kept, kept_files
from bot.core.router import Router, action, always
from bot.kb.model import MATCH_PREFIX, Band
from bot.tickets import intents, messages
from bot.tickets.workflows import as_number, escalate, relay_from_customer
from storage import decisions_repo, tickets_repo
from storage.models import KBDecision, Ticket

router = Router("answers")


def answer_message(entry: KBArticle, decision_id: int) -> OutboundMessage:
    text = entry.answer.strip()
    if entry.links:
        text += "\n\n" + "\n".join(f"- [{link.label}]({link.url})" for link in entry.links)
    return OutboundMessage(
        title=entry.title,
        text=text,
        buttons=(
            Button(
                action_id="kb.solved",
                label="That solved it",
                value=str(decision_id),
                style=ButtonStyle.PRIMARY,
            ),
            Button(action_id="kb.more", label="I still need help", value=str(decision_id)),
        ),
    )


def clarify_message(candidates: Sequence[KBCandidate], decision_id: int) -> OutboundMessage:
    buttons = [
        Button(action_id=f"kb.pick:{c.entry.id}", label=c.entry.title[:75], value=str(decision_id))
        for c in candidates[:3]
    ]
    one = len(buttons) == 1
    buttons.append(
        Button(action_id="kb.none", label="Not this" if one else "None of these", value=str(decision_id))
    )
    asked = "Did you mean this?" if one else "Did you mean one of these?"
    return OutboundMessage(text=f"I'm not quite sure what you mean. {asked}", buttons=tuple(buttons))


@router.on(MessageReceived, always(0.5))
async def answer_question(event: MessageReceived, ctx: HandlerContext) -> None:
    text = event.text.strip()
    addressed = event.mentions_bot or event.conversation.is_direct
    if not text:
        if addressed and event.files:
            # A screenshot alone: the knowledge base reads words only, and a file goes to the team
            # with an escalation, so the customer learns both instead of hearing it was empty.
            await ctx.reply(messages.files_without_words(event.files))
        elif addressed:
            await ctx.reply("I got an empty message. What can I help you with?")
        return
    if not addressed and (ctx.is_staff or not intents.looks_like_support_request(text)):
        return  # community chatter, or the team talking: not for the bot
    settings = ctx.services.settings
    recent = await decisions_repo.recent_questions(
        ctx.session,
        actor_key=event.actor.key,
        since=ctx.now - timedelta(minutes=settings.repeat_question_minutes),
    )
    reason = None
    if intents.frustration(text):
        reason = "frustration"
    elif intents.is_repeat(text, recent):
        reason = "repeat"
    decision = await ctx.services.kb.ask_async(text[:MATCH_PREFIX])
    band = Band(decision.band)
    ctx.services.metrics.kb_decisions.labels(band.value).inc()
    outcome = {Band.ANSWER: "answered", Band.CLARIFY: "clarifying"}.get(band, "pending")
    record = await decisions_repo.record(
        ctx.session,
        actor_key=event.actor.key,
        platform=event.platform.value,
        conversation_key=event.conversation.key,
        question=text,
        band=band.value,
        candidates=[(c.entry.id, c.confidence) for c in decision.candidates],
        reason=reason,
        outcome=outcome if reason is None else "pending",
        at=ctx.now,
        by_staff=ctx.is_staff,
        files=kept_files(event.files),
    )
    ticket = await _open_ticket_asking(ctx, text) if reason == "repeat" else None
    if ticket is not None:
        await ctx.reply(messages.asked_again(ticket))
        await relay_from_customer(ctx, ticket, text, files=event.files)
        await decisions_repo.settle(
            ctx.session, decision_id=record.id or 0, outcome="escalated", reason=reason, ticket_id=ticket.id
        )
    elif reason is not None:
        priority = "high" if reason == "frustration" else "normal"
        await _escalate(ctx, record, reason=reason, summary=text, priority=priority, files=event.files)
    elif band is Band.ANSWER:
        await ctx.reply(answer_message(decision.candidates[0].entry, record.id))
    elif band is Band.CLARIFY:
        await ctx.reply(clarify_message(decision.candidates, record.id))
    else:
        reason = "not_covered" if decision.declined is not None else "low_confidence"
        await _escalate(ctx, record, reason=reason, summary=text, files=event.files)


async def _open_ticket_asking(ctx: HandlerContext, text: str) -> Ticket | None:
    """The asker's open ticket about this same question, raised elsewhere (its own thread): asking
    again adds to it rather than paging the team about a second ticket. Not one the team asked them
    to confirm solved: that one would close as solved, the question with it."""
    mine = await tickets_repo.open_for_requester(ctx.session, requester_key=ctx.event.actor.key)
    waiting = (t for t in mine if t.state != "awaiting_confirmation")
    return next((t for t in waiting if intents.is_repeat(text, [t.summary])), None)


async def _escalate(
    ctx: HandlerContext,
    record: KBDecision | decisions_repo.RecordedDecision,
    *,
    reason: str,
    summary: str,
    priority: str = "normal",
    outcome: str = "escalated",
    files: Sequence[SharedFile] = (),
) -> None:
    """Open a ticket for the decision's question. `files`: those sent with it."""
    best = ctx.services.kb.get(record.top_entry_id) if record.top_entry_id else None
    ticket = await escalate(
        ctx,
        reason=reason,
        summary=summary,
        priority=priority,
        decision_id=record.id,
        component=best.component if best is not None and record.band != "escalate" else None,
        files=files,
    )
    await decisions_repo.settle(
        ctx.session,
        decision_id=record.id or 0,
        outcome=outcome,
        reason=record.reason or reason,
        ticket_id=ticket.id,
    )


async def _escalate_asked_before(
    ctx: HandlerContext, decision: KBDecision, *, reason: str, outcome: str = "escalated"
) -> None:
    """Open a ticket for a question asked before, from a button under the bot's reply: with its
    words and the files it was asked with, fetched now."""
    await _escalate(
        ctx,
        decision,
        reason=reason,
        summary=decision.question,
        outcome=outcome,
        files=files_kept(decision.files),
    )


async def _own_decision(ctx: HandlerContext, value: str) -> KBDecision:
    number = as_number(value)
    decision = await decisions_repo.get(ctx.session, decision_id=number) if number is not None else None
    if decision is None:
        raise UserError("That button belongs to an old conversation I no longer have. Ask me again?")
    if decision.actor_key != ctx.event.actor.key:
        raise UserError("Those buttons are for the person who asked. Ask me yourself and I'll answer you.")
    return decision


@router.on(ActionInvoked, action("kb.solved"))
async def solved(event: ActionInvoked, ctx: HandlerContext) -> None:
    decision = await _own_decision(ctx, ctx.match.rest)
    ticket = (
        await tickets_repo.get_by_id(ctx.session, ticket_id=decision.ticket_id)
        if decision.ticket_id
        else None
    )
    if ticket is not None and ticket.state != "closed":
        # A person already has it: the ticket closes with the customer's confirmation, not here.
        await ctx.reply(
            OutboundMessage(
                text=(
                    "Glad it's sorted! Your ticket stays open until you confirm with the team; "
                    "just tell them here."
                ),
                private_to=event.actor,
            )
        )
        return
    decision.outcome = "solved"
    await ctx.reply(
        OutboundMessage(text="Glad that solved it! Thanks for letting me know.", private_to=event.actor)
    )


@router.on(ActionInvoked, action("kb.more"))
async def still_need_help(event: ActionInvoked, ctx: HandlerContext) -> None:
    decision = await _own_decision(ctx, ctx.match.rest)
    await _escalate_asked_before(ctx, decision, reason="still_need_help", outcome="still_need_help")


@router.on(ActionInvoked, action("kb.pick"))
async def picked(event: ActionInvoked, ctx: HandlerContext) -> None:
    decision = await _own_decision(ctx, ctx.match.rest)
    entry = ctx.services.kb.get(ctx.match.captures.get("arg", ""))
    if entry is None:
        # The knowledge base was edited since the choices were offered: keep the promise of help.
        await ctx.reply("That article is no longer in our help centre, so I've asked a person instead.")
        await _escalate_asked_before(ctx, decision, reason="none_of_these")
        return
    decision.outcome = f"picked:{entry.id}"
    await ctx.reply(answer_message(entry, decision.id or 0))


@router.on(ActionInvoked, action("kb.none"))
async def none_of_these(event: ActionInvoked, ctx: HandlerContext) -> None:
    decision = await _own_decision(ctx, ctx.match.rest)
    await _escalate_asked_before(ctx, decision, reason="clarify_declined", outcome="none_of_these")
