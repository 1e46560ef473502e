"""Ticket workflows shared by the handlers: open or attach, escalate, relay, claim, close."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.core.context import HandlerContext, Services
from bot.core.echo import echo
from bot.core.errors import NotAllowed, UsageError, UserError
from bot.core.events import (
    ActionInvoked,
    Actor,
    Conversation,
    Delivery,
    InboundEvent,
    MessageReceived,
    NewThread,
    OutboundMessage,
    Platform,
    ReactionAdded,
    SentRef,
    SharedFile,
)
from bot.core.owed import sent_hook
from bot.tickets import messages
from bot.tickets.model import PRIORITIES
from storage import tickets_repo
from storage.models import Ticket
from storage.session import DbSession

MAX_SUMMARY = 2000


def customer_conversation(ticket: Ticket) -> Conversation:
    return Conversation(
        platform=Platform(ticket.platform),
        workspace_id=ticket.workspace_id,
        channel_id=ticket.channel_id,
        thread_id=ticket.thread_id,
        is_direct=ticket.is_direct,
    )


def holds_its_conversation(ticket: Ticket) -> bool:
    """Whether what the customer writes where the ticket lives reaches this ticket: not so for a
    ticket that went on in DMs another open ticket of theirs already held (see `AdoptThread`)."""
    return ticket.conversation_key == customer_conversation(ticket).key


def staff_thread(ctx: HandlerContext, ticket: Ticket) -> Conversation | None:
    if ticket.staff_thread_id is None:
        return None
    return ctx.services.staff.staff_channel.in_thread(ticket.staff_thread_id)


def ticket_home(event: InboundEvent) -> Conversation | None:
    """Where the customer and the team talk about a ticket opened from this event: the thread
    under the customer's message, the DM itself, or (for commands) decided once the bot posts."""
    conversation = event.conversation
    if conversation.is_direct or conversation.thread_id is not None:
        return conversation
    if isinstance(event, MessageReceived | ReactionAdded):
        return conversation.in_thread(event.message_id)
    return None


def as_number(text: str) -> int | None:
    """A row number typed or carried by a button: ASCII digits ("²" is a digit to isdigit, not to
    int) that fit the database's INTEGER; None otherwise."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def parse_number(text: str, *, usage: str, example: str) -> tuple[int, str]:
    """`12 rest of text` or `#12 rest` -> (12, "rest of text")."""
    head, _, rest = text.strip().partition(" ")
    digits = head.removeprefix("#")
    if not digits:
        raise UsageError("Which ticket? Give its number.", usage=usage, example=example)
    number = as_number(digits)
    if number is None:
        raise UsageError(f"`{echo(head, 20)}` isn't a ticket number.", usage=usage, example=example)
    return number, rest.strip()


async def visible_ticket(ctx: HandlerContext, number: int, *, for_update: bool = False) -> Ticket:
    """The ticket if the actor may see it: its requester or staff. Others learn nothing about it.
    `for_update` when the handler changes it (see `tickets_repo.get_by_number`)."""
    ticket = await tickets_repo.get_by_number(ctx.session, number=number, for_update=for_update)
    if ticket is None:
        raise UserError(f"I couldn't find ticket #{number}." if ctx.is_staff else _not_yours(number))
    if not ctx.is_staff and ticket.requester_key != ctx.event.actor.key:
        raise NotAllowed(_not_yours(number))
    return ticket


def _not_yours(number: int) -> str:
    return f"I couldn't find a ticket #{number} of yours. `/tickets` lists the ones you opened."


def due_at(ctx: HandlerContext, priority: str) -> timedelta:
    return timedelta(minutes=ctx.services.settings.first_response_targets[priority])


async def escalate(
    ctx: HandlerContext,
    *,
    reason: str,
    summary: str,
    requester: Actor | None = None,
    priority: str = "normal",
    decision_id: int | None = None,
    component: str | None = None,
    files: Sequence[SharedFile] = (),
) -> Ticket:
    """Open a ticket (or add to the open one here), tell the customer what happens next and how
    long it should take, and bring the team in on the staff channel. `files`, sent with the words
    that asked, come with the card (see `relay_from_customer`)."""
    event = ctx.event
    requester = requester or event.actor
    said = summary.strip() or "(no description)"  # kept whole in the transcript
    summary = said[:MAX_SUMMARY]
    home = ticket_home(event)
    if home is not None:
        # Two processes escalating in one thread at once must not open two tickets for it.
        await tickets_repo.lock_conversation(ctx.session, conversation_key=home.key)
        existing = await tickets_repo.open_in_conversation(ctx.session, conversation_key=home.key)
        if existing is None and decision_id is not None and isinstance(event, ActionInvoked):
            # A second click on the same answer, after its ticket moved to a thread of its own.
            mine = await tickets_repo.open_for_requester(ctx.session, requester_key=requester.key)
            existing = next((t for t in mine if t.decision_id == decision_id), None)
        if existing is None and isinstance(event, ReactionAdded):
            # A 🎫 on the message a ticket was opened from, the ticket living in a thread that is
            # not that message's (a Discord private thread): it is that ticket's already.
            first = await tickets_repo.open_from_message(
                ctx.session,
                platform=event.platform.value,
                channel_id=event.conversation.channel_id,
                message_id=event.message_id,
            )
            if first is not None:
                flagged = messages.flagged_its_first_message(first)
                await ctx.reply(OutboundMessage(text=flagged, private_to=event.actor))
                return first
        if existing is not None and existing.requester_key != requester.key:
            # A 🎫 on another customer's message in this ticket's thread, or their `/ticket` typed in
            # it: a second ticket there would take the thread from its owner, whose follow-ups would
            # then count as a stranger's.
            raise UserError(messages.thread_held_by_another(existing, asked_by_them=requester == event.actor))
        if existing is not None and isinstance(event, ReactionAdded):
            # A team member's 🎫 on the customer's words in their ticket's thread: what they write there
            # reached the team already, and telling them "added" would answer what they never asked.
            flagged = messages.flagged_in_its_ticket(existing, in_team_thread=False)
            await ctx.reply(OutboundMessage(text=flagged, private_to=event.actor))
            return existing
        if existing is not None:
            # A second click on the same answer adds nothing the team has not seen.
            adds = decision_id is None or existing.decision_id != decision_id
            await ctx.reply(messages.already_open(existing, added=adds))
            if adds:
                await relay_from_customer(ctx, existing, said, author=requester, files=files)
            return existing
    where = home or event.conversation
    # One instant for the ticket and its first message: its updated_at then needs no second UPDATE.
    now = ctx.now
    first_line = tickets_repo.NewLine(
        kind="customer", text=messages.with_files(said, files), author_name=requester.name, at=now
    )
    opened = await tickets_repo.open_ticket(
        ctx.session,
        requester_key=requester.key,
        requester_name=requester.name,
        platform=where.platform.value,
        workspace_id=where.workspace_id,
        channel_id=where.channel_id,
        thread_id=where.thread_id,
        is_direct=where.is_direct,
        conversation_key=_conversation_key(where, command_in_channel=home is None),
        summary=summary,
        reason=reason,
        priority=priority,
        now=now,
        first_response_due=now + due_at(ctx, priority),
        first_line=first_line,
        author_key=requester.key,
        component=component,
        decision_id=decision_id,
        first_message_id=event.message_id if isinstance(event, MessageReceived | ReactionAdded) else None,
        staff_card_queued_at=now,  # its card, below
    )
    ticket, ahead = opened.ticket, opened.ahead
    message = messages.escalated_to_customer(ticket, ahead=ahead, now=now)
    room = _private_room(event, ticket, requester)
    if home is None:
        # A slash command has no message to thread under: post in a thread of its own where the
        # platform can open one, else in the channel, and make that thread the ticket's home. A
        # command works in channels the bot was never let into: there, the customer's DMs.
        # Where their DMs are closed too, all that is left is the command's own private answer.
        told_only_here = Delivery(
            conversation=event.conversation,
            message=OutboundMessage(text=messages.nowhere_to_answer(ticket), private_to=requester),
            reply_to=event,
        )
        mine = await tickets_repo.open_for_requester(ctx.session, requester_key=requester.key)
        in_dms = next(
            (t for t in mine if t.is_direct and t.id != ticket.id and holds_its_conversation(t)), None
        )
        in_direct_messages = Delivery(
            conversation=event.conversation,
            message=messages.escalated_in_direct_messages(ticket, ahead=ahead, now=now, beside=in_dms),
            direct_to=requester,
            or_else=told_only_here,
        )
        await ctx.post(
            event.conversation,
            message,
            new_thread=room,
            on_sent=AdoptThread(ticket.id or 0),
            or_else=in_direct_messages,
        )
    elif isinstance(event, ReactionAdded):
        await ctx.post(home, message, new_thread=room, on_sent=_adopt_new_thread(ticket, room))
    else:
        await ctx.reply(message, new_thread=room, on_sent=_adopt_new_thread(ticket, room))
    # A new ticket's whole transcript; its files go with the card, each as its line where it cannot.
    words = replace(first_line, text=said) if files else first_line
    await post_staff_card(ctx, ticket, transcript=[words], files=files, queued_at=now)
    return ticket


def _conversation_key(where: Conversation, *, command_in_channel: bool) -> str:
    """Where the ticket holds the conversation. A command's ticket lives in the thread its first
    post opens (adopted once sent); until then it must not claim the bare channel, or every later
    message there, anyone's, would count as this ticket's (for good, if that post fails)."""
    if command_in_channel and not where.is_direct and where.thread_id is None:
        return f"{where.key}#ticket-thread-pending"
    return where.key


def _private_room(event: InboundEvent, ticket: Ticket, requester: Actor) -> NewThread | None:
    """A ticket raised in a community channel (a message, a 🎫 on one, a click on the bot's answer)
    asks for a thread of its own with the customer in it, private where the platform can. Not for a
    DM, nor for a message already inside a thread (it may be the ticket's own room)."""
    conversation = event.conversation
    if conversation.is_direct:
        return None
    if isinstance(event, MessageReceived | ReactionAdded) and conversation.thread_id is not None:
        return None
    return NewThread(title=f"Ticket #{ticket.number}: {ticket.summary}", invite=(requester,))


def _adopt_new_thread(ticket: Ticket, room: NewThread | None) -> AdoptNewThread | None:
    """Where the platform opened a new thread for the customer's message, that thread is the
    ticket's home from now on; where it did not, the home stays the thread it already has."""
    if room is None or ticket.is_direct:
        return None
    return AdoptNewThread(ticket.id or 0, ticket.channel_id, ticket.thread_id)


@sent_hook
@dataclass(frozen=True, slots=True)
class AdoptNewThread:
    ticket_id: int
    home_channel_id: str
    home_thread_id: str | None

    async def __call__(self, session: DbSession, ref: SentRef, services: Services) -> None:
        if ref.thread_id is None or (ref.channel_id, ref.thread_id) == (
            self.home_channel_id,
            self.home_thread_id,
        ):
            return  # no new thread (Slack, console, a refusing server): nothing to read or change
        ticket = await tickets_repo.get_by_id(session, ticket_id=self.ticket_id)
        if ticket is None or ticket.is_direct:
            return
        if (ref.channel_id, ref.thread_id) == (ticket.channel_id, ticket.thread_id):
            return
        ticket.channel_id, ticket.thread_id = ref.channel_id, ref.thread_id
        ticket.conversation_key = customer_conversation(ticket).key


@sent_hook
@dataclass(frozen=True, slots=True)
class AdoptThread:
    """A command's ticket lives in the thread its first post opened."""

    ticket_id: int

    async def __call__(self, session: DbSession, ref: SentRef, services: Services) -> None:
        ticket = await tickets_repo.get_by_id(session, ticket_id=self.ticket_id)
        if ticket is None or ticket.is_direct or ref.is_private:
            return  # only the customer saw it (DMs closed too): nothing to thread under
        if ref.is_direct:  # the channel refused the bot: the customer's DMs are the ticket's home
            ticket.is_direct, ticket.thread_id = True, None
            ticket.channel_id, ticket.workspace_id = ref.channel_id, ref.workspace_id
            dm = ref.conversation.key
            # One ticket per conversation: DMs another open ticket already holds stay its. This one
            # is answered there by its number, and added to with `/ticket reply` (the DM said so).
            await tickets_repo.lock_conversation(session, conversation_key=dm)
            held = await tickets_repo.open_in_conversation(session, conversation_key=dm)
            ticket.conversation_key = dm if held is None else f"{dm}#ticket-{ticket.number}"
        else:
            ticket.thread_id = ref.thread_id or ref.message_id
            ticket.conversation_key = ref.conversation.in_thread(ticket.thread_id).key
            ticket.workspace_id = ref.workspace_id or ticket.workspace_id


@sent_hook
@dataclass(frozen=True, slots=True)
class RememberStaffThread:
    """Staff replies in the thread under the ticket's card reach the customer."""

    ticket_id: int

    async def __call__(self, session: DbSession, ref: SentRef, services: Services) -> None:
        await tickets_repo.set_staff_thread(
            session,
            ticket_id=self.ticket_id,
            platform=ref.platform.value,
            channel_id=ref.channel_id,
            thread_id=ref.thread_id or ref.message_id,
        )


async def post_staff_card(
    ctx: HandlerContext,
    ticket: Ticket,
    *,
    transcript: Sequence[tickets_repo.TranscriptLine] | None = None,
    files: Sequence[SharedFile] = (),
    queued_at: datetime | None = None,
) -> None:
    """Post the ticket's card in the staff channel; its thread is noted once the post returns
    (`RememberStaffThread`). Until then the card is on its way (`Ticket.staff_card_queued_at`,
    committed with the event), so a reply under it that comes first is waited for. `queued_at`: the
    instant a new ticket was written with (the same value: no UPDATE of its own)."""
    ticket.staff_card_queued_at = queued_at or ctx.now
    staff = ctx.services.staff
    if transcript is None:
        transcript = await tickets_repo.transcript(ctx.session, ticket=ticket, limit=5)
    where = "a direct message" if ticket.is_direct else f"{ticket.platform} channel {ticket.channel_id}"
    card = messages.staff_card(
        ticket,
        where=where,
        transcript=transcript,
        mentions=staff.oncall_mentions(staff.staff_channel.platform),
        now=ctx.now,
        files=files,
        fetch_from=ctx.event.platform,
    )
    await ctx.post(staff.staff_channel, card, on_sent=RememberStaffThread(ticket.id or 0))


async def _post_to_staff_thread_or_card(ctx: HandlerContext, ticket: Ticket, message) -> None:  # type: ignore[no-untyped-def]
    thread = staff_thread(ctx, ticket)
    if thread is None:
        await post_staff_card(ctx, ticket)
    else:
        await ctx.post(thread, message)


async def record_words(
    ctx: HandlerContext, ticket: Ticket, *, kind: str, text: str, author: Actor, with_id: bool = False
) -> int | None:
    """One line of the ticket's transcript, written by a person (customer, staff, or a note); with
    `with_id`, its id (for a line marked later, such as an answer that never reached the customer)."""
    return await tickets_repo.add_message(
        ctx.session,
        ticket=ticket,
        kind=kind,
        text=text,
        author_key=author.key,
        author_name=author.name,
        at=ctx.now,
        with_id=with_id,
    )


async def record_staff_answer(ctx: HandlerContext, ticket: Ticket, text: str) -> None:
    """A team member's answer written where the customer sees it (their own thread): kept in the
    transcript; the first one stops the first-response clock, and whoever answers an unclaimed
    ticket holds it."""
    actor = ctx.event.actor
    await record_words(ctx, ticket, kind="staff", text=text, author=actor)
    if ticket.first_responded_at is None:
        ticket.first_responded_at = ctx.now
    if ticket.state == "open":
        ticket.state = "claimed"
        ticket.assignee_key, ticket.assignee_name = actor.key, actor.name


@sent_hook
@dataclass(frozen=True, slots=True)
class ReachedCustomer:
    """What the team told the customer counts once it reached them, not when it was written: the
    first such message stops the first-response clock (and an answer's writer takes the ticket, as
    `record_staff_answer`). A message that went to its fallback instead never reached them: an
    answer's transcript line (`line_id`) is marked unsent, so no report takes it for a response.
    A message that was not sent at all (refused with no fallback, given up) runs no hook: nothing
    counts. One kept owed and posted later counts from when it was posted."""

    ticket_id: int
    line_id: int | None = None
    by_key: str = ""
    by_name: str = ""

    async def __call__(self, session: DbSession, ref: SentRef, services: Services) -> None:
        if ref.fallback:
            if self.line_id is not None:
                await tickets_repo.answer_not_delivered(session, line_id=self.line_id)
            return
        await tickets_repo.answer_reached_customer(
            session, ticket_id=self.ticket_id, at=services.clock(), by_key=self.by_key, by_name=self.by_name
        )


async def relay_from_customer(
    ctx: HandlerContext,
    ticket: Ticket,
    text: str,
    *,
    author: Actor | None = None,
    files: Sequence[SharedFile] = (),
) -> None:
    """Keep the customer's words, and a line per file they sent, in the transcript and pass them to
    the team's thread, each file as itself where the platform it came from lets the bot fetch it."""
    actor = author or ctx.event.actor
    await record_words(ctx, ticket, kind="customer", text=messages.with_files(text, files), author=actor)
    relayed = messages.relayed(actor.name, text, from_staff=False, files=files, fetch_from=ctx.event.platform)
    await _post_to_staff_thread_or_card(ctx, ticket, relayed)


async def relay_from_staff(
    ctx: HandlerContext, ticket: Ticket, text: str, *, files: Sequence[SharedFile] = ()
) -> None:
    """Keep a team member's answer, and a line per file they sent, in the transcript and pass it to
    the customer, each file as itself where the platform it came from lets the bot fetch it (the
    team's platform, which may not be the customer's)."""
    actor = ctx.event.actor
    if ticket.state == "closed":
        raise UserError(messages.closed_not_sent(ticket, ctx.now))
    said = messages.with_files(text, files)
    line_id = await record_words(ctx, ticket, kind="staff", text=said, author=actor, with_id=True)
    not_passed_on = Delivery(
        conversation=ctx.event.conversation,
        message=OutboundMessage(text=messages.not_passed_on(ticket)),
        reply_to=ctx.event,
    )
    files_not_attached = replace(
        not_passed_on, message=OutboundMessage(text=messages.files_not_attached(ticket))
    )
    relayed = messages.relayed(
        actor.name, text, from_staff=True, files=files, fetch_from=ctx.event.platform, to_customer=True
    )
    if not holds_its_conversation(ticket):  # it shares the customer's DMs with the ticket there
        relayed = replace(relayed, text=f"About ticket #{ticket.number}: {relayed.text}")
    await ctx.post(
        customer_conversation(ticket),
        relayed,
        on_sent=ReachedCustomer(ticket.id or 0, line_id, by_key=actor.key, by_name=actor.name),
        or_else=not_passed_on,
        files_not_attached=files_not_attached if files else None,
    )


async def claim(ctx: HandlerContext, ticket: Ticket) -> None:
    actor = ctx.event.actor
    if ticket.state == "closed":
        raise UserError(f"Ticket #{ticket.number} is closed.")
    if ticket.assignee_key == actor.key:
        raise UserError(f"You already hold ticket #{ticket.number}.")
    previous = ticket.assignee_name
    ticket.state = "claimed" if ticket.state == "open" else ticket.state
    ticket.assignee_key, ticket.assignee_name = actor.key, actor.name
    note = f"Claimed by {actor.name}" + (f" (from {previous})" if previous else "")
    await tickets_repo.add_message(ctx.session, ticket=ticket, kind="system", text=note, at=ctx.now)
    await ctx.post(
        customer_conversation(ticket),
        messages.claimed_to_customer(ticket, actor.name),
        on_sent=ReachedCustomer(ticket.id or 0),
    )
    await _post_to_staff_thread_or_card(ctx, ticket, f"{note}.")


async def request_close(ctx: HandlerContext, ticket: Ticket, reason: str | None) -> None:
    if ticket.state == "closed":
        raise UserError(f"Ticket #{ticket.number} is already closed.")
    if ticket.state == "awaiting_confirmation":
        raise UserError(f"Ticket #{ticket.number} is already waiting for the customer to confirm.")
    actor = ctx.event.actor
    ticket.state = "awaiting_confirmation"
    ticket.close_requested_at = ctx.now
    ticket.close_round += 1
    ticket.close_reason = reason[:500] if reason else None
    if ticket.assignee_key is None:
        ticket.assignee_key, ticket.assignee_name = actor.key, actor.name
    await tickets_repo.add_message(
        ctx.session,
        ticket=ticket,
        kind="system",
        text=f"{actor.name} asked the customer to confirm it is solved",
        at=ctx.now,
    )
    hours = ctx.services.settings.close_confirm_hours
    # Told first: should the question not reach the customer, the team's next line says so.
    await _post_to_staff_thread_or_card(
        ctx,
        ticket,
        f"Asked {ticket.requester_name} whether #{ticket.number} is solved. It closes when they confirm, "
        f"or after {hours:g} hour{'' if hours == 1 else 's'} without an answer.",
    )
    not_asked = Delivery(
        conversation=staff_thread(ctx, ticket) or ctx.services.staff.staff_channel,
        message=OutboundMessage(text=messages.close_question_not_asked(ticket)),
    )
    await ctx.post(
        customer_conversation(ticket),
        messages.close_question(ticket, by=actor.name, reason=reason),
        on_sent=CloseQuestionAsked(ticket.id or 0, ticket.close_round),
        or_else=not_asked,
    )


@sent_hook
@dataclass(frozen=True, slots=True)
class CloseQuestionAsked:
    """A ticket waits for the customer's "Did this solve it?", and closes without it after
    `close_confirm_hours`, only if the question reached them. One that went to its fallback (their
    DMs closed, the bot not allowed where the ticket lives; the team is told in the fallback) puts
    the ticket back as it was, held and open, its auto-close clock stopped, unless it was asked
    again since (`close_round`)."""

    ticket_id: int
    close_round: int

    async def __call__(self, session: DbSession, ref: SentRef, services: Services) -> None:
        if not ref.fallback:
            return
        ticket = await tickets_repo.get_by_id(session, ticket_id=self.ticket_id, for_update=True)
        asked = ("awaiting_confirmation", self.close_round)
        if ticket is None or (ticket.state, ticket.close_round) != asked:
            return  # answered, closed, or asked again since: this question is not what it waits for
        ticket.state = "claimed" if ticket.assignee_key else "open"
        ticket.close_requested_at = None
        await tickets_repo.add_message(
            session,
            ticket=ticket,
            kind="system",
            text="The close question did not reach the customer; not closing by itself",
            at=services.clock(),
        )


def check_priority(text: str) -> str:
    if text not in PRIORITIES:
        raise UsageError(
            f"`{echo(text, 20)}` isn't a priority.",
            usage=f"/ticket priority <number> {'|'.join(PRIORITIES)}",
            example="/ticket priority 12 high",
        )
    return text
