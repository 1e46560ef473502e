"""Tickets: open, follow, relay between customer and team, claim, close with confirmation, rate."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Indel

from bot.core.clock import humanize
from bot.core.commands import Option, OptionKind, Suggest
from bot.core.context import HandlerContext
from bot.core.echo import echo
from bot.core.errors import NotAllowed, TooEarly, UsageError, UserError
from bot.core.events import (
    ActionInvoked,
    Actor,
    CommandInvoked,
    InboundEvent,
    MessageReceived,
    OutboundMessage,
    ReactionAdded,
)
from bot.core.router import (
    Allow,
    Guard,
    Router,
    Skip,
    Verdict,
    action,
    always,
    command,
    emoji,
    text_predicate,
)
from bot.handlers.basics import command_lines
from bot.handlers.guards import customers_only, staff_only
from bot.handlers.kb_admin import teach_button
from bot.tickets import intents, messages
from bot.tickets.model import PRIORITIES, split_close_answer
from bot.tickets.workflows import (
    as_number,
    check_priority,
    claim,
    customer_conversation,
    due_at,
    escalate,
    parse_number,
    record_staff_answer,
    record_words,
    relay_from_customer,
    relay_from_staff,
    request_close,
    staff_thread,
    ticket_home,
    visible_ticket,
)
from storage import tickets_repo
from storage.models import Ticket

log = logging.getLogger(__name__)

router = Router("tickets")
NUMBER = Option("number", kind=OptionKind.NUMBER, suggest=Suggest.TICKET)
router.group("ticket", "Tickets: open one, or work on one")
router.command(
    "ticket", "Open a ticket so a person helps you", Option("summary", label="what happened"), implicit="new"
)
router.command("ticket status", "Where your ticket stands and what happens next", NUMBER)
router.command(
    "tickets",
    "Your open tickets",
    Option(
        "which", required=False, choices=("mine",), spell_choices=True, description="staff: the ones you hold"
    ),
)
router.command(
    "ticket reply",
    "Add to your ticket (staff: answer the customer, or reply in the ticket's staff thread)",
    NUMBER,
    Option("text"),
)
router.command(
    "ticket note", "Add an internal note the customer never sees", NUMBER, Option("text"), staff=True
)
router.command("ticket claim", "Take the ticket", NUMBER, staff=True)
router.command(
    "ticket close",
    # The reason is in the customer's "Did this solve it?": staff must not write it as a note.
    "Ask the customer to confirm it is solved; they see the reason",
    NUMBER,
    Option("reason", required=False, description="Shown to the customer"),
    staff=True,
)
PRIORITY_COMMAND = router.command(
    "ticket priority",
    "Change the first-response target",
    NUMBER,
    Option("level", choices=PRIORITIES, spell_choices=True),
    staff=True,
)

# `/ticket <word> …` as declared above: every subcommand, and the ones a customer may use.
_TICKET_SUBCOMMANDS = [c for c in router.commands if c.name == "ticket" and len(c.path) == 2]
SUBCOMMANDS = tuple(c.path[1] for c in _TICKET_SUBCOMMANDS)
CUSTOMER_SUBCOMMANDS = tuple(c.path[1] for c in _TICKET_SUBCOMMANDS if not c.staff)
# `/ticket <word>` alone, asking about tickets rather than describing a problem: the listing words
# are `/tickets` (True: `/tickets mine`), "help" the ticket commands. Not declared as commands:
# `/tickets` and `/support help` are, so platforms would offer the same thing twice.
# "show" followed by a ticket number is that ticket's status instead.
SHOW_WORD: Final = "show"
OPEN_WORD: Final = "open"
"""`/ticket open <summary>`: what people write for `/ticket new`, as the word for a ticket's opening."""
LISTING_WORDS: Final = {"list": False, "all": False, SHOW_WORD: False, "mine": True}
HELP_WORD: Final = "help"


# -- held conversations: while a person holds a ticket, the bot relays instead of answering ----


async def _in_staff_channel(event: MessageReceived, ctx: HandlerContext) -> Verdict:
    staff = ctx.services.staff.staff_channel
    same = event.conversation.channel_key == staff.channel_key or (
        event.conversation.platform == staff.platform and event.conversation.channel_id == staff.channel_id
    )
    return Allow() if same else Skip()


CARD_NOTED_WITHIN: Final = timedelta(minutes=2)
"""How long a staff card may be on its way, its thread not noted yet: the bot notes it right after
posting, within seconds even on a loaded machine or a slow database. A reply that matches no ticket
is waited on (`dispatch.TOO_EARLY_DELAYS`) only if it is under a post of the bot's this recent AND a
card was decided on this recently and is not noted yet (`Ticket.staff_card_queued_at`). Otherwise
(under a digest, a broadcast's copy, an answer, with no card on its way; or a card whose post
failed, once this has passed) it is the team's talk at once, holding no later event of the channel."""


NOT_PASSED_ON: Final = (
    "I haven't passed this on to anyone: I can't find a ticket for this thread yet. If it's an answer "
    "to a customer, send it again in a minute."
)
"""Said to a team member whose reply under a recent post of the bot's stays unmatched after every try
while a staff card was on its way: that card's thread noted late (a process killed right after
posting it leaves that to the next one, after its lease), or talk under another post of the bot's
at that moment, which the bot cannot tell apart. With no card on its way nothing is said."""


async def _under_a_card_not_noted_yet(event: MessageReceived, ctx: HandlerContext, *, thread: str) -> bool:
    """Whether the message may be an answer under a staff card whose thread is about to be noted:
    it is under a recent post of the bot's (one whose time the platform did not say counts), and a
    card is on its way, or was noted at `thread` since the ticket was looked up (then the next try
    finds it). The post's time comes first: it costs no query."""
    started = event.thread_started_at
    if not event.in_own_thread or (started is not None and ctx.now - started >= CARD_NOTED_WITHIN):
        return False
    return await tickets_repo.card_on_its_way(
        ctx.session,
        since=ctx.now - CARD_NOTED_WITHIN,
        platform=event.platform.value,
        channel_id=event.conversation.channel_id,
        thread_id=thread,
    )


@router.on(MessageReceived, always(0.99), guards=[_in_staff_channel])
async def staff_channel_message(event: MessageReceived, ctx: HandlerContext) -> None:
    """A reply in a ticket's staff thread goes to the customer; other staff-channel talk is ignored.
    A reply under a card just posted may come before the bot has noted the card's thread: it is
    handled again a moment later (`TooEarly`) while a card is on its way, and ignored only if no ticket
    has that thread by then."""
    thread = event.conversation.thread_id
    if thread is None or not (event.text.strip() or event.files):
        return
    ticket = await tickets_repo.by_staff_thread(
        ctx.session, platform=event.platform.value, channel_id=event.conversation.channel_id, thread_id=thread
    )
    if ticket is None:
        if await _under_a_card_not_noted_yet(event, ctx, thread=thread):
            raise TooEarly(
                f"no ticket has staff thread {thread} under the bot's post yet", finally_say=NOT_PASSED_ON
            )
        return
    if not ctx.is_staff:
        raise NotAllowed("Only the support team can answer customers from this thread.")
    if ticket.state == "closed":
        await ctx.reply(messages.closed_not_sent(ticket, ctx.now))
        return
    await relay_from_staff(ctx, ticket, event.text, files=event.files)


async def _held_here(event: MessageReceived, ctx: HandlerContext) -> Verdict:
    ticket = await tickets_repo.held_or_reopenable(
        ctx.session, conversation_key=event.conversation.key, closed_since=ctx.now - messages.REOPEN_WINDOW
    )
    return Skip() if ticket is None else Allow(ticket)


@router.on(MessageReceived, always(0.98), guards=[_held_here])
async def held_conversation(event: MessageReceived, ctx: HandlerContext) -> None:
    await _in_held_conversation(event, ctx, ctx.allowed)


async def _open_beside_here(event: MessageReceived, ctx: HandlerContext) -> Verdict:
    """DMs no ticket holds (`_held_here` skipped them) where open tickets of the customer's went on
    beside one that held them and has closed since (see `AdoptThread`)."""
    if not event.conversation.is_direct:
        return Skip()
    mine = await tickets_repo.open_for_requester(ctx.session, requester_key=event.actor.key)
    beside = [t for t in mine if customer_conversation(t).key == event.conversation.key]
    if len(beside) == 1:  # locked as `_held_here` locks what it finds: the handler changes it
        only = await tickets_repo.get_by_id(ctx.session, ticket_id=beside[0].id or 0, for_update=True)
        beside = [only] if only is not None and only.state in tickets_repo.OPEN_STATES else []
    return Allow(beside) if beside else Skip()


@router.on(MessageReceived, always(0.98), guards=[_open_beside_here])
async def dms_beside_a_closed_ticket(event: MessageReceived, ctx: HandlerContext) -> None:
    """The customer's one open ticket left in their DMs has them now, as if it had held them all
    along; of several, the customer picks one with `/ticket reply`, for a guess could be wrong."""
    beside: list[Ticket] = ctx.allowed
    if len(beside) == 1:
        await _in_held_conversation(event, ctx, beside[0])
        return
    await ctx.reply(messages.which_ticket_here(beside))


async def _in_held_conversation(event: MessageReceived, ctx: HandlerContext, ticket: Ticket) -> None:
    if not event.text.strip() and not event.files:
        # A sticker alone, say: nothing reaches the team, and the customer must not think it did.
        if ticket.requester_key == event.actor.key:
            await ctx.reply(messages.nothing_to_pass_on())
        return
    if ticket.state == "closed":
        if ticket.requester_key != event.actor.key:
            return
        if intents.says_solved(event.text):
            # Closed for want of an answer, then thanked: the team hears it, nobody is paged.
            await relay_from_customer(ctx, ticket, event.text, files=event.files)
            await ctx.reply(messages.thanks_after_close(ticket))
            return
        await _reopen(
            ctx, ticket, why=f"{event.actor.name} replied after it was closed for lack of an answer"
        )
        await ctx.reply(f"I've reopened ticket **#{ticket.number}** and passed this on to the team.")
    if ticket.requester_key != event.actor.key and not ctx.is_staff:
        await _someone_else_here(event, ctx, ticket)
        return
    if ctx.is_staff:
        await relay_from_staff_in_thread(ctx, ticket, event)
        return
    if ticket.state == "awaiting_confirmation":
        await _reply_to_close_question(event, ctx, ticket)
        return
    await relay_from_customer(ctx, ticket, event.text, files=event.files)


async def _reply_to_close_question(event: MessageReceived, ctx: HandlerContext, ticket: Ticket) -> None:
    """Words instead of a click on "Did this solve it?". A yes or a thank-you is passed on with a
    reminder of the button; anything else means it is not solved yet: the ticket reopens, as its
    card says."""
    await relay_from_customer(ctx, ticket, event.text, files=event.files)
    if intents.says_solved(event.text):
        await ctx.reply(messages.thanks_instead_of_confirming(ticket))
        return
    await _reopen(ctx, ticket, why=f"{event.actor.name} replied instead of confirming it was solved")
    await ctx.reply(f"I've kept ticket **#{ticket.number}** open and passed this on to the team.")


async def _someone_else_here(event: MessageReceived, ctx: HandlerContext, ticket: Ticket) -> None:
    """Another customer writing in this ticket's thread: chatter stays theirs; a request for help
    is told where it can be answered (this thread belongs to someone else's ticket)."""
    text = event.text
    if not (
        intents.asks_for_person(text)
        or intents.asks_for_ticket(text)
        or intents.looks_like_support_request(text)
    ):
        return
    await ctx.reply(
        OutboundMessage(
            text=(
                f"This thread is about someone else's ticket (#{ticket.number}), so I can't take your "
                "question here. Ask in the channel itself or send me a direct message, and I'll help "
                "or bring in a person."
            ),
            private_to=event.actor,
        )
    )


async def relay_from_staff_in_thread(ctx: HandlerContext, ticket: Ticket, event: MessageReceived) -> None:
    """A team member answering in the customer's own thread: the customer sees it already; keep the
    transcript and the staff thread in step."""
    await record_staff_answer(ctx, ticket, messages.with_files(event.text, event.files))
    thread = staff_thread(ctx, ticket)
    if thread is not None:
        relayed = messages.relayed(
            event.actor.name, event.text, from_staff=True, files=event.files, fetch_from=event.platform
        )
        await ctx.post(thread, relayed)


async def _reopen(ctx: HandlerContext, ticket: Ticket, *, why: str) -> None:
    ticket.state = "claimed" if ticket.assignee_key else "open"
    ticket.closed_at = None
    ticket.closed_how = None
    ticket.close_requested_at = None
    if ticket.state == "open":
        ticket.first_response_due = ctx.now + due_at(ctx, ticket.priority)
        ticket.breached = False
    await tickets_repo.add_message(
        ctx.session, ticket=ticket, kind="system", text=f"Reopened: {why}", at=ctx.now
    )
    thread = staff_thread(ctx, ticket)
    mentions = ctx.services.staff.oncall_mentions(ctx.services.staff.staff_channel.platform)
    message = OutboundMessage(text=f"↩️ Ticket **#{ticket.number}** reopened: {why}.", mentions=mentions)
    await ctx.post(thread or ctx.services.staff.staff_channel, message)


# -- asking in words ----------------------------------------------------------------------


@router.on(MessageReceived, text_predicate(intents.asks_for_person, score=0.92), guards=[customers_only])
async def wants_a_person(event: MessageReceived, ctx: HandlerContext) -> None:
    await escalate(ctx, reason="asked_for_person", summary=event.text, files=event.files)


@router.on(MessageReceived, text_predicate(intents.asks_for_ticket, score=0.9), guards=[customers_only])
async def wants_a_ticket(event: MessageReceived, ctx: HandlerContext) -> None:
    await escalate(ctx, reason="requested", summary=event.text, files=event.files)


# -- commands ------------------------------------------------------------------------------


def _staff_command(action: str) -> Guard:
    """Staff only, except that a customer's `/ticket close my account please` is a ticket whose
    summary happens to start with a staff word: `/ticket <summary>` takes it. A customer naming a
    ticket number (`/ticket close 12`) is refused as usual."""
    refuse = staff_only(action)

    async def guard(event: InboundEvent, ctx: HandlerContext) -> Verdict:
        first = ctx.match.rest.split(" ", 1)[0]
        if not ctx.is_staff and first and as_number(first.removeprefix("#")) is None:
            return Skip()
        return await refuse(event, ctx)

    return guard


def _typo_of(word: str, meant: str) -> bool:
    """Its letters in another order, or one left out. Not a letter changed: a short word with one
    letter changed is as often another word, and the whole problem ("slow", "lost", "call")."""
    if word == meant:
        return False
    return sorted(word) == sorted(meant) or (len(word) == len(meant) - 1 and Indel.distance(word, meant) == 1)


@router.on(CommandInvoked, command("ticket"))
async def open_or_show(event: CommandInvoked, ctx: HandlerContext) -> None:
    rest = ctx.match.rest
    if not rest:
        raise UsageError(
            "Tell me what happened and I'll open a ticket.",
            usage="/ticket <what happened>",
            example="/ticket my CSV export failed with error 500",
        )
    first = rest.split(" ", 1)[0].lower()
    words = rest.split()
    if first.lstrip("#").isdigit() and len(words) == 1:
        # `/ticket 12` is a status check; `/ticket 3 users cannot log in` is a new ticket.
        await show_status(event, ctx, number_text=rest)
        return
    if first == SHOW_WORD and len(words) == 2 and as_number(words[1].removeprefix("#")) is not None:
        # `/ticket show 12` is `/ticket status 12`; `/ticket show me how to export` a summary.
        await show_status(event, ctx, number_text=words[1])
        return
    if first == OPEN_WORD and len(words) > 1:
        await escalate(ctx, reason="requested", summary=ctx.match.as_typed(rest.split(None, 1)[1]))
        return
    word = first.rstrip(".,;:!?…") if len(words) == 1 else ""
    if word in LISTING_WORDS:
        await list_tickets(event, ctx, mine=LISTING_WORDS[word])
        return
    if word == HELP_WORD:
        await ctx.reply(ticket_help(event, ctx))
        return
    # A misspelt subcommand ("stauts"), not an ordinary first word of a summary ("cannot"). Only one
    # the person may use: a customer's "closed account still billed" is no typo of the staff's close.
    usable = SUBCOMMANDS if ctx.is_staff else CUSTOMER_SUBCOMMANDS
    guess = process.extractOne(first, usable, scorer=fuzz.ratio, score_cutoff=75)
    # An exact subcommand word gets here only as a customer's summary (see _staff_command).
    meant = guess[0] if guess is not None and guess[0] != first and len(words) <= 4 else None
    if meant is None and word:
        # "lsit" alone meant the list, not a ticket about "lsit" that pings on-call.
        meant = next((w for w in (*LISTING_WORDS, HELP_WORD) if _typo_of(word, w)), None)
    if meant is not None:
        raise UserError(
            f"I don't know `/ticket {echo(first, 20)}`. Did you mean `/ticket {meant}`? "
            "To open a ticket, describe the problem in a few words: `/ticket my export failed`."
        )
    await escalate(ctx, reason="requested", summary=ctx.match.as_typed(rest))


@router.on(CommandInvoked, command("ticket", "new"))
async def new_ticket(event: CommandInvoked, ctx: HandlerContext) -> None:
    if not ctx.match.rest:
        raise UsageError(
            "Tell me what happened and I'll open a ticket.",
            usage="/ticket new <what happened>",
            example="/ticket new my CSV export failed with error 500",
        )
    await escalate(ctx, reason="requested", summary=ctx.match.as_typed(ctx.match.rest))


@router.on(CommandInvoked, command("ticket", "status"))
async def ticket_status(event: CommandInvoked, ctx: HandlerContext) -> None:
    rest = ctx.match.rest
    words = rest.split()
    if len(words) > 1 and as_number(words[0].removeprefix("#")) is None:
        # `/ticket status page shows old data`: a summary, not a lookup.
        await escalate(ctx, reason="requested", summary=f"status {ctx.match.as_typed(rest)}")
        return
    await show_status(event, ctx, number_text=rest)


async def show_status(event: CommandInvoked, ctx: HandlerContext, *, number_text: str) -> None:
    number, _ = parse_number(number_text, usage="/ticket status <number>", example="/ticket status 12")
    ticket = await visible_ticket(ctx, number)
    ahead = await tickets_repo.unclaimed_ahead_of(ctx.session, ticket=ticket)
    await ctx.reply(messages.ticket_card(ticket, ahead=ahead, now=ctx.now, viewer=event.actor))


@router.on(CommandInvoked, command("tickets"))
async def my_tickets(event: CommandInvoked, ctx: HandlerContext) -> None:
    asked = ctx.match.rest.strip().lower()
    if asked not in ("", "mine"):
        hint = (
            "`/tickets` lists the open queue, `/tickets mine` the tickets you hold; `/ticket status "
            "<number>` shows any ticket, closed ones too."
            if ctx.is_staff
            else "`/tickets` lists your open tickets; `/ticket status <number>` shows any of yours, "
            "closed ones too."
        )
        raise UserError(f"I don't know `/tickets {echo(asked, 20)}`. {hint}")
    await list_tickets(event, ctx, mine=asked == "mine")


async def list_tickets(event: CommandInvoked, ctx: HandlerContext, *, mine: bool) -> None:
    """Open tickets: staff see the queue, or with `mine` the ones they hold; anyone else their own."""
    if ctx.is_staff and mine:
        held = await tickets_repo.held_by(ctx.session, assignee_key=event.actor.key)
        await ctx.reply(messages.held_ticket_list(held, now=ctx.now, viewer=event.actor))
        return
    if ctx.is_staff:
        tickets = await tickets_repo.open_queue(ctx.session)
        await ctx.reply(messages.ticket_list(tickets, now=ctx.now, viewer=event.actor, staff=True))
        return
    tickets = await tickets_repo.open_for_requester(ctx.session, requester_key=event.actor.key)
    await ctx.reply(messages.ticket_list(tickets, now=ctx.now, viewer=event.actor, staff=False))


def ticket_help(event: CommandInvoked, ctx: HandlerContext) -> OutboundMessage:
    """The ticket commands this person may use, as `/support help` lists them."""
    ours = [c for c in ctx.services.help if c.name in ("ticket", "tickets")]
    return OutboundMessage(
        title="Ticket commands",
        text="\n".join(command_lines(ours, staff=ctx.is_staff)),
        private_to=event.actor,
    )


async def _staff_ticket(
    ctx: HandlerContext, usage: str, example: str, *, need_text: bool = False
) -> tuple[Ticket, str]:
    number, rest = parse_number(ctx.match.rest, usage=usage, example=example)
    if need_text and not rest:
        raise UsageError("What should it say?", usage=usage, example=example)
    ticket = await visible_ticket(ctx, number, for_update=True)
    return ticket, ctx.match.as_typed(rest)


async def _names_a_ticket(event: InboundEvent, ctx: HandlerContext) -> Verdict:
    """`/ticket reply 12 …` from anyone (a customer adds to their own ticket: `visible_ticket`
    refuses anyone else's); a customer's `/ticket reply to my email …` is a new ticket's summary."""
    first = ctx.match.rest.split(" ", 1)[0]
    if not ctx.is_staff and first and as_number(first.removeprefix("#")) is None:
        return Skip()
    return Allow()


@router.on(CommandInvoked, command("ticket", "reply"), guards=[_names_a_ticket])
async def reply_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    ticket, text = await _staff_ticket(
        ctx, "/ticket reply <number> <text>", "/ticket reply 12 Fixed now, please try again", need_text=True
    )
    if not ctx.is_staff:
        await _add_to_own_ticket(ctx, ticket, text)
        return
    await relay_from_staff(ctx, ticket, text)
    await ctx.reply(
        OutboundMessage(
            text=f"Sent to {ticket.requester_name} on ticket #{ticket.number}.", private_to=event.actor
        )
    )


async def _add_to_own_ticket(ctx: HandlerContext, ticket: Ticket, text: str) -> None:
    """A customer's words for one of their tickets, from wherever they typed them: the way to add
    to a ticket whose conversation another one holds (two tickets going on in their DMs)."""
    if ticket.state == "closed":
        raise UserError(f"Ticket #{ticket.number} is closed. {messages.after_close(ticket, ctx.now)}")
    await relay_from_customer(ctx, ticket, text)
    await ctx.reply(
        OutboundMessage(
            text=f"Added to ticket #{ticket.number}; the team sees it in the ticket.",
            private_to=ctx.event.actor,
        )
    )


@router.on(CommandInvoked, command("ticket", "note"), guards=[_staff_command("ticket.note")])
async def note_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    ticket, text = await _staff_ticket(
        ctx, "/ticket note <number> <text>", "/ticket note 12 customer is on the legacy plan", need_text=True
    )
    await record_words(ctx, ticket, kind="note", text=text, author=event.actor)
    thread = staff_thread(ctx, ticket)
    if thread is not None:
        await ctx.post(thread, OutboundMessage(text=f"📝 Note from {event.actor.name}:\n{text}"))
    await ctx.reply(
        OutboundMessage(
            text=f"Note added to ticket #{ticket.number}. The customer doesn't see notes.",
            private_to=event.actor,
        )
    )


@router.on(CommandInvoked, command("ticket", "claim"), guards=[_staff_command("ticket.claim")])
async def claim_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    ticket, _ = await _staff_ticket(ctx, "/ticket claim <number>", "/ticket claim 12")
    await claim(ctx, ticket)
    await ctx.reply(OutboundMessage(text=f"Ticket #{ticket.number} is yours.", private_to=event.actor))


@router.on(CommandInvoked, command("ticket", "close"), guards=[_staff_command("ticket.close")])
async def close_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    ticket, reason = await _staff_ticket(
        ctx, "/ticket close <number> [reason]", "/ticket close 12 fixed in 2.4.1"
    )
    await request_close(ctx, ticket, reason or None)
    await ctx.reply(
        OutboundMessage(
            text=f"Asked {ticket.requester_name} to confirm ticket #{ticket.number} is solved.",
            private_to=event.actor,
        )
    )


@router.on(CommandInvoked, command("ticket", "priority"), guards=[_staff_command("ticket.priority")])
async def priority_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    # The catalogue spells the levels from Priority, so this usage never lists a stale one.
    usage, example = PRIORITY_COMMAND.usage, "/ticket priority 12 high"
    ticket, level = await _staff_ticket(ctx, usage, example, need_text=True)
    if ticket.state == "closed":
        raise UserError(f"Ticket #{ticket.number} is closed; its priority no longer matters.")
    ticket.priority = check_priority(level.lower())
    ticket.first_response_due = ticket.created_at + due_at(ctx, ticket.priority)
    await tickets_repo.add_message(
        ctx.session,
        ticket=ticket,
        kind="system",
        text=f"Priority set to {ticket.priority} by {event.actor.name}",
        at=ctx.now,
    )
    left = ticket.first_response_due - ctx.now
    if ticket.first_responded_at is not None:
        when = "it has had its first answer"
    elif left.total_seconds() >= 0:
        when = f"answer due in {humanize(left)}"
    else:
        when = f"its answer is {humanize(-left)} overdue at this priority"
    await ctx.reply(
        OutboundMessage(
            text=f"Ticket #{ticket.number} is now {ticket.priority}; {when}.", private_to=event.actor
        )
    )


# -- buttons -------------------------------------------------------------------------------


BROKEN_BUTTON = "That button is broken; please use the `/ticket` commands instead."


async def _ticket_from_button(ctx: HandlerContext, value: str | None = None) -> Ticket:
    """The ticket whose number the button carries (`value` when it carries more than that)."""
    value = ctx.match.rest if value is None else value
    number = as_number(value)
    if number is None:
        raise UserError(BROKEN_BUTTON)
    ticket = await tickets_repo.get_by_number(ctx.session, number=number, for_update=True)
    if ticket is None:
        raise UserError(f"Ticket #{value} doesn't exist any more.")
    return ticket


@router.on(ActionInvoked, action("ticket.claim"), guards=[staff_only("ticket.claim")])
async def claim_button(event: ActionInvoked, ctx: HandlerContext) -> None:
    await claim(ctx, await _ticket_from_button(ctx))


@router.on(ActionInvoked, action("ticket.close"), guards=[staff_only("ticket.close")])
async def close_button(event: ActionInvoked, ctx: HandlerContext) -> None:
    await request_close(ctx, await _ticket_from_button(ctx), None)


async def _requester_ticket(ctx: HandlerContext, value: str | None = None) -> Ticket:
    ticket = await _ticket_from_button(ctx, value)
    if ticket.requester_key != ctx.event.actor.key:
        raise NotAllowed(
            f"Only {ticket.requester_name or 'the person who asked'} can answer that "
            f"for ticket #{ticket.number}."
        )
    return ticket


@router.on(ActionInvoked, action("ticket.confirm"))
async def confirm_button(event: ActionInvoked, ctx: HandlerContext) -> None:
    answer = ctx.match.captures.get("arg")
    if answer not in ("yes", "no"):
        raise UserError(BROKEN_BUTTON)  # anything else used to be taken for No, and reopened it
    number, asked = split_close_answer(ctx.match.rest)
    ticket = await _requester_ticket(ctx, number)
    if answer == "no" and _closed_unanswered_by(ticket, asked, ctx):
        # The question closed the ticket for want of an answer; "No" now is a reply that reopens it.
        await _not_solved(ctx, ticket)
        return
    if ticket.state != "awaiting_confirmation":
        text = f"Ticket #{ticket.number} is {messages.state_label(ticket)} now; nothing to confirm."
        if ticket.state == "closed":
            text += f" {messages.after_close(ticket, ctx.now)}"
        await ctx.reply(OutboundMessage(text=text, private_to=event.actor))
        return
    if not await _answers_the_latest_question(ctx, ticket, asked):
        return
    if answer == "yes":
        ticket.state = "closed"
        ticket.closed_at = ctx.now
        ticket.closed_how = "confirmed"
        await tickets_repo.add_message(
            ctx.session,
            ticket=ticket,
            kind="system",
            text="Customer confirmed it is solved; closed",
            at=ctx.now,
        )
        await ctx.post(customer_conversation(ticket), messages.rating_request(ticket))
        note = OutboundMessage(
            text=f"✅ {ticket.requester_name} confirmed ticket #{ticket.number} is solved. Closed.",
            buttons=(teach_button(ticket.number),),  # the close card: teach the bot this question
        )
    else:
        await _not_solved(ctx, ticket)
        return
    thread = staff_thread(ctx, ticket)
    await ctx.post(thread or ctx.services.staff.staff_channel, note)


def _closed_unanswered_by(ticket: Ticket, asked: str | None, ctx: HandlerContext) -> bool:
    """Whether the question this button answers closed the ticket unanswered, recently enough that a
    reply would still reopen it (a button from before rounds were counted: when it was asked once)."""
    latest = asked == str(ticket.close_round) or (asked is None and ticket.close_round == 1)
    return latest and messages.reopens_on_reply(ticket, ctx.now)


async def _not_solved(ctx: HandlerContext, ticket: Ticket) -> None:
    await _reopen(ctx, ticket, why=f"{ticket.requester_name} says it is not solved")
    await ctx.post(
        customer_conversation(ticket),
        f"Sorry it isn't solved yet. I've reopened ticket **#{ticket.number}** and told the team; "
        "they'll reply here.",
    )


async def _answers_the_latest_question(ctx: HandlerContext, ticket: Ticket, asked: str | None) -> bool:
    """Whether a close answer button belongs to the question asked last; if not, the customer is told
    what to do instead and nothing changes. A button posted before questions were counted carries no
    round (`asked` None): it is taken for the only question on a ticket asked once, and for none on
    one asked more often, since it may answer an earlier one."""
    if asked is None:
        if ticket.close_round == 1:
            return True
        log.info(
            "close answer of unknown round on ticket #%d, asked %d times: asked again",
            ticket.number,
            ticket.close_round,
        )
        await ctx.reply(messages.unknown_close_question(ticket, viewer=ctx.event.actor))
        return False
    if as_number(asked) is None:
        raise UserError(BROKEN_BUTTON)
    if int(asked) == ticket.close_round:
        return True
    log.info(
        "answer to an earlier close question on ticket #%d (round %s, latest %d) left it as it is",
        ticket.number,
        asked,
        ticket.close_round,
    )
    await ctx.reply(messages.earlier_close_question(ticket, viewer=ctx.event.actor))
    return False


@router.on(ActionInvoked, action("ticket.rate"))
async def rate_button(event: ActionInvoked, ctx: HandlerContext) -> None:
    ticket = await _requester_ticket(ctx)
    score = ctx.match.captures.get("arg", "")
    if score not in {"1", "2", "3", "4", "5"}:
        raise UserError("Ratings go from 1 to 5.")
    if ticket.state != "closed":
        raise UserError(f"Ticket #{ticket.number} isn't closed yet; you can rate it once it is.")
    earlier, ticket.rating = ticket.rating, int(score)
    number = ticket.number
    if earlier == ticket.rating:
        # The same star again (or a double click): nothing changes, nobody is told twice.
        said = f"You rated ticket #{number} {score}/5 already; thanks!"
        await ctx.reply(OutboundMessage(text=said, private_to=event.actor))
        return
    if earlier:
        # Another star after rating: the newer counts, and the customer learns it replaced the first.
        change = f"from {earlier}/5 to {score}/5"
        logged = f"Rated {score}/5 (was {earlier}/5)"
        said = f"Changed your rating of ticket #{number} {change}."
        for_team = f"changed their rating of ticket #{number} {change}"
    else:
        logged, said = f"Rated {score}/5", f"Thanks for rating ticket #{number} {score}/5!"
        for_team = f"rated ticket #{number} {score}/5"
    await tickets_repo.add_message(ctx.session, ticket=ticket, kind="system", text=logged, at=ctx.now)
    await ctx.reply(OutboundMessage(text=said, private_to=event.actor))
    thread = staff_thread(ctx, ticket)
    if thread is not None:
        await ctx.post(thread, f"{ticket.requester_name} {for_team}.")


# -- the 🎫 reaction ------------------------------------------------------------------------


async def _staff_ticket_reaction(event: ReactionAdded, ctx: HandlerContext) -> Verdict:
    # Customers' reactions are not commands: skip silently rather than refuse.
    return Allow() if ctx.is_staff else Skip()


async def _team_thread_ticket(event: ReactionAdded, ctx: HandlerContext) -> Ticket | None:
    """The ticket whose thread under its card holds the message (the card itself included), if any."""
    home = ticket_home(event)
    if home is None or home.thread_id is None:
        return None
    return await tickets_repo.by_staff_thread(
        ctx.session, platform=event.platform.value, channel_id=home.channel_id, thread_id=home.thread_id
    )


@router.on(ReactionAdded, emoji("ticket", "admission_tickets", "🎫"), guards=[_staff_ticket_reaction])
async def ticket_reaction(event: ReactionAdded, ctx: HandlerContext) -> None:
    """A team member's 🎫 makes the message a ticket for its author. Not in a ticket's own threads:
    there it belongs to that ticket already (`escalate` answers for the customer's thread)."""
    ticket = await _team_thread_ticket(event, ctx)
    if ticket is not None:
        # The bot's copies of the customer's words, the team's talk: a ticket opened there would
        # take the team's thread, and be the bot's or a colleague's.
        flagged = messages.flagged_in_its_ticket(ticket, in_team_thread=True)
        await ctx.reply(OutboundMessage(text=flagged, private_to=event.actor))
        return
    if event.on_own_message:
        # The bot is nobody's requester; silence would look as if the 🎫 had not been seen.
        await ctx.reply(OutboundMessage(text=messages.flagged_own_message(), private_to=event.actor))
        return
    if event.thread_unknown:
        # The platform could not say where the message is: a reply in a ticket's thread would get
        # a second ticket, taking that thread from its own. A 🎫 added again is read afresh.
        log.info("🎫 on %s, which could not be read: no ticket opened", event.message_id)
        await ctx.reply(OutboundMessage(text=messages.flagged_unread_message(), private_to=event.actor))
        return
    author = event.message_author_id
    if author is None:
        return
    requester = Actor(platform=event.platform, id=author)
    summary = event.message_text or "(flagged message; see the thread)"
    await escalate(ctx, reason="reaction", summary=summary, requester=requester, files=event.message_files)
