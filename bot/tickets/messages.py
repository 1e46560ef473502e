"""The support conversation's messages, as neutral OutboundMessages. Wording lives here, in one place."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot.core.clock import ago, humanize
from bot.core.events import (
    Actor,
    Attachment,
    Button,
    ButtonStyle,
    FetchFrom,
    Field,
    Mention,
    OutboundMessage,
    Platform,
    SharedFile,
    TimeStyle,
    timestamp,
)
from bot.core.links import unmask_links
from bot.core.sizes import size_text
from bot.tickets.model import close_answer_value
from storage.models import Ticket
from storage.tickets_repo import TranscriptLine

REASONS = {
    "low_confidence": "I wasn't sure how to answer",
    "not_covered": "the team handles questions like this in person",
    "still_need_help": "the customer said the answer didn't help",
    "clarify_declined": "none of my suggestions fit",
    "none_of_these": "none of my suggestions fit",
    "asked_for_person": "the customer asked for a person",
    "frustration": "the customer sounds frustrated",
    "repeat": "the customer asked the same thing again",
    "requested": "the customer opened a ticket",
    "reaction": "a staff member flagged the message",
    "declined_close": "the customer said it is not solved",
}


def quote(text: str, limit: int = 600) -> str:
    """People's words as a quote, their links showing where they go."""
    text = unmask_links(text)
    clipped = text if len(text) <= limit else text[: limit - 1] + "…"
    return "\n".join(f"> {line}" for line in clipped.splitlines() or [""])


def which_ticket_here(tickets: Sequence[Ticket]) -> str:
    """The customer's words in DMs that several of their open tickets went on in, none of them
    holding it (the one that did has closed; see `AdoptThread`): no guess at which one they mean."""
    numbers = [f"**#{t.number}**" for t in tickets]
    listed = f"{', '.join(numbers[:-1])} and {numbers[-1]}"
    return (
        f"You have tickets {listed} open here, so I can't tell which one this is for, and I haven't "
        "passed it on. To add to one, use `/ticket reply <number> <what to add>`."
    )


def escalated_to_customer(ticket: Ticket, *, ahead: int, now: datetime) -> OutboundMessage:
    wait = humanize(ticket.first_response_due - now)
    queue = (
        "You're next in line"
        if ahead == 0
        else f"{ahead} {'request is' if ahead == 1 else 'requests are'} ahead of yours"
    )
    return OutboundMessage(
        text=(
            f"I've asked a person from the team to help: this is ticket **#{ticket.number}**. "
            f"{queue}, and we aim to reply within {wait}. "
            "You'll get the answer right here; add any details (error messages, IDs, what you tried) "
            "meanwhile."
        ),
        footer=f"Check on it any time with /ticket status {ticket.number}",
    )


def escalated_in_direct_messages(
    ticket: Ticket, *, ahead: int, now: datetime, beside: Ticket | None = None
) -> OutboundMessage:
    """The same, in the customer's DMs when the bot may not post where they asked. `beside`: their
    open ticket that already lives in these DMs, which keeps them (one ticket per conversation)."""
    message = escalated_to_customer(ticket, ahead=ahead, now=now)
    note = (
        "I'm not allowed to post in the channel where you asked, so we'll carry on in our direct messages. "
    )
    if beside is not None:
        note += (
            f"You already have ticket **#{beside.number}** open here, and what you write here goes to"
            f" it. To add to ticket **#{ticket.number}**, use `/ticket reply {ticket.number} <what to add>`. "
        )
    return replace(message, text=note + message.text)


def nothing_to_pass_on() -> OutboundMessage:
    """A customer's message in their ticket's thread with neither text nor files (a sticker)."""
    return OutboundMessage(
        text=(
            "That message had nothing I can pass on to the team (no words or files). "
            "Please write what you need, or attach the file again."
        )
    )


# A content type as platforms state it ("image/png"): anything else a client sent is left out.
_CONTENT_TYPE = re.compile(r"[\w.+-]{1,60}/[\w.+-]{1,80}")
# What a file's name may not bring into the code span it is shown in: its end (a backtick), and the
# bold that Slack's rendering would still make of `**` there. A lookalike keeps the name readable.
_NAME_MARKS = str.maketrans({"`": "'", "*": "\u2217"})
# In a link's address: what would end `[label](url)` early on either platform, or start Slack markup.
_ADDRESS_BREAKS = {c: f"%{ord(c):02X}" for c in " ()<>|[]"}
MAX_FILE_NAME = 120


def _file_name(name: str) -> str:
    """A file's name shown as a name: one line, in a code span, so nothing in it pings, formats or
    links (a code span shows its text as it is on both platforms)."""
    shown = " ".join(unmask_links(name).translate(_NAME_MARKS).split()) or "unnamed file"
    return f"`{clip(shown, MAX_FILE_NAME)}`"


def _address(link: str) -> str | None:
    """A web address that stays one link whatever it holds, or None for anything that is not one."""
    if not re.match(r"https?://", link, re.IGNORECASE) or len(link) > 2000:
        return None
    return "".join(_ADDRESS_BREAKS.get(c, "%20" if c.isspace() else c) for c in link)


def _file_label(file: SharedFile) -> str:
    """A file's paperclip, name, and its size and type where known."""
    about = [size_text(file.size)] if file.size is not None and file.size >= 0 else []
    if _CONTENT_TYPE.fullmatch(file.kind):
        about.append(file.kind)
    return f"\N{PAPERCLIP} {_file_name(file.name)}" + (f" ({', '.join(about)})" if about else "")


def file_line(file: SharedFile) -> str:
    """One file sent with a message, as the team reads it: name, size, type and where to open it."""
    address = _address(file.link)
    if address is None:
        return f"{_file_label(file)}: no link came with it, ask the customer to send it another way"
    return f"{_file_label(file)}: [open it]({address})"


def team_file_line(file: SharedFile) -> str:
    """A team member's file that could not go to the customer, as the customer reads it: named,
    never linked, for its link opens only in the team's channel (a Slack file's page opens only for
    those who see the conversation it was shared in)."""
    return f"{_file_label(file)}: could not be attached here; reply if you need it sent another way"


def with_files(
    text: str, files: Sequence[SharedFile], *, line: Callable[[SharedFile], str] = file_line
) -> str:
    """A message's words followed by a line per file it carried (the file lines alone if no words)."""
    return "\n".join([text, *map(line, files)] if text.strip() else map(line, files))


SHOWN_FILES = 3
"""How many files a reply names; more are counted."""


def files_without_words(files: Sequence[SharedFile]) -> OutboundMessage:
    """For a customer who sent the bot files and no words, outside any ticket: the bot cannot read
    them, and a file reaches the team with a message whose words bring in a person."""
    names = [_file_name(f.name) for f in files[:SHOWN_FILES]]
    if len(files) > SHOWN_FILES:
        names.append(f"{len(files) - SHOWN_FILES} more")
    named = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    one = len(files) == 1
    them = "it" if one else "them"
    return OutboundMessage(
        text=(
            f"I got your {'file' if one else 'files'} {named}, but I can't read images or files, only"
            f" words. Tell me what you need help with. If a person should see {them}, send {them} again"
            ' with a few words that say so, such as "talk to a person, my export fails", and I\'ll pass'
            f" {them} on to the team."
        )
    )


def nowhere_to_answer(ticket: Ticket) -> str:
    """For the customer alone, when the bot may neither post where they asked nor DM them."""
    where = " (this server's Privacy Settings)" if ticket.platform == Platform.DISCORD.value else ""
    return (
        f"I've opened ticket **#{ticket.number}** for you and the team has it, but I'm not allowed to"
        " post in this channel and your direct messages are closed to me, so they can't write back"
        f" to you. Please allow direct messages from me{where} or ask in a channel where I can post."
        f" `/ticket status {ticket.number}` shows where it stands."
    )


def not_passed_on(ticket: Ticket) -> str:
    """For the team, when their answer could not reach the customer at all."""
    return (
        f"I couldn't pass that on to {ticket.requester_name}: I'm not allowed to post where their"
        " ticket is, or their direct messages are closed to me, so they haven't seen it."
        " Invite me to their channel, or reach them another way."
    )


def files_not_attached(ticket: Ticket) -> str:
    """For the team member whose files went to the customer as names (the bot adds which, and why)."""
    return f"Not sent to {ticket.requester_name} as files (they see only the names):"


def already_open(ticket: Ticket, *, added: bool) -> OutboundMessage:
    """`added`: the customer's words went to the ticket; a second click on the same answer adds nothing."""
    text = f"Your ticket **#{ticket.number}** is already open and a person will answer here."
    return OutboundMessage(text=f"{text} I've added this to it." if added else text)


def thread_held_by_another(ticket: Ticket, *, asked_by_them: bool) -> str:
    """A ticket asked for in a thread that already holds another customer's: by the person it
    would be for (`asked_by_them`), or by a team member for them."""
    if asked_by_them:
        return (
            f"This thread is about someone else's ticket (#{ticket.number}), so I can't open yours "
            "here. Ask in the channel itself or send me a direct message, and I'll help or bring in "
            "a person."
        )
    return (
        f"That message is in the thread of ticket #{ticket.number}, which is another customer's, so I "
        "haven't opened a ticket for it: the two would share one thread. Ask them to write in the "
        "channel or to send me a direct message."
    )


def flagged_in_its_ticket(ticket: Ticket, *, in_team_thread: bool) -> str:
    """A team member's 🎫 on a message in a ticket's own thread, the customer's or the team's under
    its card: the message belongs to that ticket, and the team has it (see `relay_from_customer`)."""
    if in_team_thread:
        return (
            f"That message is in the team's thread of ticket #{ticket.number}, so it belongs to that "
            "ticket. I haven't opened another ticket for it."
        )
    return (
        f"That message is in the thread of ticket #{ticket.number}, so it is part of that ticket already: "
        f"what {ticket.requester_name or 'the customer'} writes there reaches the team. I haven't opened "
        "another ticket for it."
    )


def flagged_its_first_message(ticket: Ticket) -> str:
    """A team member's 🎫 on the message a ticket was opened from, the ticket now in a thread of its own."""
    return (
        f"That message opened ticket #{ticket.number}, so it belongs to that ticket already. I haven't"
        " opened another ticket for it."
    )


def flagged_own_message() -> str:
    """A team member's 🎫 on one of the bot's own posts: it has no customer to open a ticket for."""
    return (
        "That's my own message, so there is no one to open a ticket for it. To open one for a customer, "
        "react 🎫 to their own message."
    )


def flagged_unread_message() -> str:
    """A team member's 🎫 on a message the platform would not let the bot read just now: without it
    the bot cannot tell whether the message is a reply in a ticket's thread, so it opened nothing."""
    return (
        "I couldn't read that message just now, so I can't tell whether it belongs to a ticket "
        "already, and I haven't opened one for it. Take your 🎫 off and add the 🎫 again in a minute."
    )


def asked_again(ticket: Ticket) -> OutboundMessage:
    """The same question again, elsewhere, while the ticket opened for it waits: no second ticket."""
    where = "in our direct messages" if ticket.is_direct else "in its thread"
    return OutboundMessage(
        text=(
            f"You asked this a moment ago, and ticket **#{ticket.number}** is already open for it: "
            f"a person will answer {where}. I've added this to it."
        )
    )


def due(moment: datetime, now: datetime) -> str:
    """`09:15 UTC (in 15 minutes)` in plain text; in chat the time in each reader's own zone, and
    (on Discord) how long until it kept current: a staff card is read for hours."""
    fmt = "%H:%M UTC" if abs(moment - now) < timedelta(hours=12) else "%b %d %H:%M UTC"
    until = f"in {humanize(moment - now)}" if moment > now else ago(moment, now)
    absolute = timestamp(moment, TimeStyle.DATETIME, fallback=moment.strftime(fmt))
    return f"{absolute} ({timestamp(moment, TimeStyle.RELATIVE, fallback=until)})"


def since(moment: datetime, now: datetime) -> str:
    """`3 hours ago`, kept current where the platform can (Discord)."""
    return timestamp(moment, TimeStyle.RELATIVE, fallback=ago(moment, now))


def staff_card(
    ticket: Ticket,
    *,
    where: str,
    transcript: Sequence[TranscriptLine],
    mentions: Sequence[Mention],
    now: datetime,
    files: Sequence[SharedFile] = (),
    fetch_from: Platform | None = None,
) -> OutboundMessage:
    """The team's card for a ticket; `files` sent with the words that opened it come with it as in
    `relayed`."""
    lines = [quote(f"{m.author_name or m.kind}: {m.text}", 400) for m in transcript[-5:]]
    attachments, listed = _files_passed_on(files, fetch_from)
    return OutboundMessage(
        title=f"Ticket #{ticket.number}: {clip(ticket.summary, 120)}",
        text=with_files("\n".join(lines) or quote(ticket.summary), listed),
        attachments=attachments,
        fields=(
            Field(name="Customer", value=ticket.requester_name or ticket.requester_key),
            Field(name="Where", value=where),
            Field(name="Why", value=REASONS.get(ticket.reason, ticket.reason)),
            Field(name="Priority", value=ticket.priority),
            Field(name="Answer due", value=due(ticket.first_response_due, now)),
        ),
        buttons=(
            Button(
                action_id="ticket.claim", label="Claim", value=str(ticket.number), style=ButtonStyle.PRIMARY
            ),
            Button(action_id="ticket.close", label="Close", value=str(ticket.number)),
        ),
        mentions=tuple(mentions),
        footer="Reply in this thread to answer the customer; /ticket note for internal notes.",
    )


def relayed(
    author: str,
    text: str,
    *,
    from_staff: bool,
    files: Sequence[SharedFile] = (),
    fetch_from: Platform | None = None,
    to_customer: bool = False,
) -> OutboundMessage:
    """Words passed on as written, and a line per file sent with them. A customer's links show the
    team where they go: a label of theirs is no link (the team's own links to the customer stay links).

    With `fetch_from` (the platform the files were shared on), each file its adapter can fetch goes
    as itself, its line only where it cannot be attached (see `FetchFrom`). `to_customer`: a team
    member's answer, whose files' lines are `team_file_line`s."""
    line = team_file_line if to_customer else file_line
    attachments, listed = _files_passed_on(files, fetch_from, line=line)
    if from_staff:
        said = f"**{author} (support team):**\n{with_files(text, listed, line=line)}"
    else:
        said = f"**{unmask_links(author)}:**\n{with_files(unmask_links(text), listed, line=line)}"
    return OutboundMessage(text=said.rstrip("\n"), attachments=attachments)


# What a file's name may not be as the name of a file uploaded elsewhere: a path, or unprintable.
_FILENAME_BREAKS = re.compile(r"[\x00-\x1f\x7f/\\]+")


def _files_passed_on(
    files: Sequence[SharedFile], platform: Platform | None, *, line: Callable[[SharedFile], str] = file_line
) -> tuple[tuple[Attachment, ...], list[SharedFile]]:
    """The files to pass on as themselves (fetched from `platform`), and those to list as lines;
    `line` is what a file that cannot go says instead."""
    if platform is None:
        return (), list(files)
    passed_on = tuple(_passed_on(f, platform, instead=line(f)) for f in files if f.ref)
    return passed_on, [f for f in files if not f.ref]


def _passed_on(file: SharedFile, platform: Platform, *, instead: str) -> Attachment:
    """A file to pass on as itself, fetched from `platform` when its message is sent."""
    filename = clip(_FILENAME_BREAKS.sub("_", file.name).strip(), MAX_FILE_NAME) or "file"
    return Attachment(
        filename=filename,
        title=filename,
        fetch=FetchFrom(platform=platform, file=file),
        instead=instead,
    )


def claimed_to_customer(ticket: Ticket, by: str) -> OutboundMessage:
    return OutboundMessage(
        text=f"{by} from the team has picked up ticket **#{ticket.number}** and will reply here."
    )


def _answer_button(ticket: Ticket, answer: str, label: str, style: ButtonStyle) -> Button:
    """An answer to the "Did this solve it?" asked last (`Ticket.close_round`), and to no other."""
    value = close_answer_value(ticket.number, ticket.close_round)
    return Button(action_id=f"ticket.confirm:{answer}", label=label, value=value, style=style)


def _solved_button(ticket: Ticket) -> Button:
    return _answer_button(ticket, "yes", "Yes, it's solved", ButtonStyle.PRIMARY)


def _answer_buttons(ticket: Ticket) -> tuple[Button, ...]:
    return (
        _solved_button(ticket),
        _answer_button(ticket, "no", "No, I still need help", ButtonStyle.DEFAULT),
    )


def close_question(ticket: Ticket, *, by: str, reason: str | None) -> OutboundMessage:
    because = f" ({reason})" if reason else ""
    return OutboundMessage(
        text=f"{by} thinks ticket **#{ticket.number}** is solved{because}. Did this solve it?",
        buttons=_answer_buttons(ticket),
    )


def close_question_not_asked(ticket: Ticket) -> str:
    """For the team, when "Did this solve it?" could not reach the customer: the ticket stays theirs."""
    return (
        f"I couldn't ask {ticket.requester_name} whether ticket #{ticket.number} is solved: their"
        " direct messages are closed to me, or I'm not allowed to post where their ticket is, so they"
        " haven't seen the question. The ticket stays open and won't close by itself; reach them"
        f" another way, then ask again with `/ticket close {ticket.number}`."
    )


def earlier_close_question(ticket: Ticket, *, viewer: Actor) -> OutboundMessage:
    """A click on an answer button of a "Did this solve it?" the team has asked again since."""
    return OutboundMessage(
        text=(
            f'That button answers an earlier "Did this solve it?" about ticket **#{ticket.number}**, '
            "and the team has asked again since, so I've left the ticket as it is. Please use the "
            "buttons on the latest message asking whether it's solved."
        ),
        private_to=viewer,
    )


def unknown_close_question(ticket: Ticket, *, viewer: Actor) -> OutboundMessage:
    """A click on a button posted before questions were counted, on a ticket asked more than once:
    it may answer an earlier one. The latest question's buttons come with the reply, as the ones in
    the thread may be just as old."""
    return OutboundMessage(
        text=(
            f"The team has asked more than once whether ticket **#{ticket.number}** is solved, and that "
            "button may belong to an earlier question, so I've left the ticket as it is. "
            "Is it solved now? Please answer with these buttons:"
        ),
        buttons=_answer_buttons(ticket),
        private_to=viewer,
    )


def thanks_instead_of_confirming(ticket: Ticket) -> OutboundMessage:
    """The button comes with the reminder: the question may have scrolled away, or (the console, after
    a restart) no longer be clickable at all."""
    return OutboundMessage(
        text=f"Glad to hear it! Press **Yes, it's solved** and I'll close ticket **#{ticket.number}**.",
        buttons=(_solved_button(ticket),),
    )


def thanks_after_close(ticket: Ticket) -> OutboundMessage:
    """A thank-you in the thread of a ticket closed because nobody answered the close question."""
    return OutboundMessage(
        text=f"Glad to hear it! Ticket **#{ticket.number}** stays closed; if you need more help, just ask."
    )


def rating_request(ticket: Ticket) -> OutboundMessage:
    return OutboundMessage(
        text=f"Ticket **#{ticket.number}** is closed. How did we do? One click is enough.",
        buttons=tuple(
            Button(action_id=f"ticket.rate:{n}", label=f"{n} ★" if n > 1 else "1 ★", value=str(ticket.number))
            for n in range(1, 6)
        ),
    )


# A ticket closed because nobody answered "Did this solve it?" reopens on the customer's reply for
# this long; one the customer confirmed solved stays closed (a new question starts afresh). The
# notice says "within 14 days", which a customer reads as including the 14th: the edge reopens, here
# and in the query (`tickets_repo.held_or_reopenable`, closed at or after now - REOPEN_WINDOW).
REOPEN_WINDOW = timedelta(days=14)


def reopens_on_reply(ticket: Ticket, now: datetime) -> bool:
    return (
        ticket.state == "closed"
        and ticket.closed_how == "no_answer"
        and ticket.closed_at is not None
        and now - ticket.closed_at <= REOPEN_WINDOW
    )


def closed_for_no_answer(ticket: Ticket) -> OutboundMessage:
    """To the customer: the close question went unanswered. A reply reopens it only for a while."""
    return OutboundMessage(
        text=(
            f"I've closed ticket **#{ticket.number}** as solved, since nobody answered "
            '"Did this solve it?". '
            f"If you still need help, reply here within {REOPEN_WINDOW.days} days and it reopens."
        )
    )


def closed_for_no_answer_to_staff(ticket: Ticket) -> str:
    return f"Ticket #{ticket.number} closed: {ticket.requester_name} didn't answer the close question."


def closed_not_passed_on(ticket: Ticket) -> str:
    """For the team, when the no-answer close notice could not reach the customer: they do not know
    it closed, nor that a reply would reopen it."""
    return (
        f"I couldn't tell {ticket.requester_name} that ticket #{ticket.number} is closed: their direct"
        " messages are closed to me, or I'm not allowed to post where their ticket is, so they don't"
        f" know that a reply within {REOPEN_WINDOW.days} days reopens it. Reach them another way if"
        " they may still need help."
    )


def after_close(ticket: Ticket, now: datetime) -> str:
    """What a reply to a closed ticket does, for the customer and the team alike."""
    if reopens_on_reply(ticket, now):
        return "A reply in its thread reopens it."
    return "To get more help, ask again or open a new ticket with `/ticket`."


def after_close_for_staff(ticket: Ticket, now: datetime) -> str:
    if reopens_on_reply(ticket, now):
        return "The customer can reopen it by replying."
    return "It stays closed; if the customer needs more help, their next question opens a new ticket."


def closed_not_sent(ticket: Ticket, now: datetime) -> str:
    """To a team member answering a closed ticket."""
    return f"Ticket #{ticket.number} is closed, so that wasn't sent. {after_close_for_staff(ticket, now)}"


def what_next(ticket: Ticket, *, ahead: int, now: datetime) -> str:
    if ticket.state == "open":
        if ticket.breached:
            return "It's waiting longer than we aim for; the team has been reminded and will reply here."
        if now >= ticket.first_response_due:
            # Past the raw target but not marked late: maintenance paused the clock, or the next
            # check has not run yet. Say nothing we have not done.
            return "It's taking a little longer than usual; the team will reply here as soon as they can."
        queue = "it's next in line" if ahead == 0 else f"{ahead} ahead of it"
        wait = humanize(ticket.first_response_due - now)
        return f"Waiting for a person ({queue}); we aim to reply within {wait}."
    if ticket.state == "claimed":
        holder = ticket.assignee_name or "Someone from the team"
        return f"{holder} is working on it; you'll hear back in its thread."
    if ticket.state == "awaiting_confirmation":
        return (
            'The team thinks it\'s solved: please answer "Did this solve it?" so we can close it, '
            "or reply to reopen."
        )
    return f"Closed. {after_close(ticket, now)}"


def _what_next_for_staff(ticket: Ticket, *, ahead: int, now: datetime) -> str:
    """The same, for the team: the customer's part in the third person."""
    if ticket.state == "awaiting_confirmation":
        return (
            f"{ticket.requester_name or 'The customer'} has been asked whether it's solved; it closes "
            "when they confirm, or by itself if they don't answer."
        )
    if ticket.state == "closed":
        return f"Closed. {after_close_for_staff(ticket, now)}"
    return what_next(ticket, ahead=ahead, now=now)


STATE_LABELS = {
    "open": "waiting for a person",
    "claimed": "being worked on",
    "awaiting_confirmation": "waiting for your confirmation",
    "closed": "closed",
}
# What the team reads: the confirmation awaited is the customer's, not theirs.
STAFF_STATE_LABELS = STATE_LABELS | {"awaiting_confirmation": "waiting for the customer's confirmation"}


def state_label(ticket: Ticket, *, for_staff: bool = False) -> str:
    return (STAFF_STATE_LABELS if for_staff else STATE_LABELS).get(ticket.state, ticket.state)


def ticket_card(ticket: Ticket, *, ahead: int, now: datetime, viewer: Actor) -> OutboundMessage:
    """`/ticket status`: for its customer, or (anyone else who may see it) for the team."""
    for_staff = viewer.key != ticket.requester_key
    fields = [
        Field(name="State", value=state_label(ticket, for_staff=for_staff)),
        Field(name="Held by", value=ticket.assignee_name or "nobody yet"),
        Field(name="Last update", value=since(ticket.updated_at, now)),
        Field(name="Opened", value=since(ticket.created_at, now)),
    ]
    if ticket.rating:
        label = "Customer's rating" if for_staff else "Your rating"
        fields.append(Field(name=label, value=f"{ticket.rating}/5"))
    next_step = (_what_next_for_staff if for_staff else what_next)(ticket, ahead=ahead, now=now)
    return OutboundMessage(
        title=f"Ticket #{ticket.number}: {clip(ticket.summary, 120)}",
        text=f"**What happens next:** {next_step}",
        fields=tuple(fields),
        private_to=viewer,
    )


def ticket_list(tickets: Sequence[Ticket], *, now: datetime, viewer: Actor, staff: bool) -> OutboundMessage:
    if not tickets:
        text = (
            "No open tickets."
            if staff
            else "You have no open tickets. Ask me anything, or open one with `/ticket <what happened>`."
        )
        return OutboundMessage(text=text, private_to=viewer)
    title = "Open tickets" if staff else "Your open tickets"
    return OutboundMessage(title=title, text=_ticket_lines(tickets, now=now, staff=staff), private_to=viewer)


def held_ticket_list(tickets: Sequence[Ticket], *, now: datetime, viewer: Actor) -> OutboundMessage:
    """A team member's `/tickets mine`: the open tickets they hold, each with who asked."""
    if not tickets:
        return OutboundMessage(
            text="You hold no open tickets. `/tickets` shows the queue.", private_to=viewer
        )
    return OutboundMessage(
        title="Tickets you hold", text=_ticket_lines(tickets, now=now, staff=True), private_to=viewer
    )


def _ticket_lines(tickets: Sequence[Ticket], *, now: datetime, staff: bool) -> str:
    lines = []
    for t in tickets:
        holder = f", {t.assignee_name}" if t.assignee_name else ""
        who = f" from {t.requester_name}" if staff else ""
        breach = " ⚠ overdue" if t.breached and t.state == "open" else ""
        lines.append(
            f"- **#{t.number}** {clip(t.summary, 60)}{who}: {state_label(t, for_staff=staff)}{holder}"
            f" (updated {ago(t.updated_at, now)}){breach}"
        )
    return "\n".join(lines)


def breach_to_customer(ticket: Ticket) -> OutboundMessage:
    return OutboundMessage(
        text=(
            f"We haven't forgotten you: ticket **#{ticket.number}** is taking longer than we aim for. "
            "I've reminded the team and someone will reply here as soon as possible."
        )
    )


def breach_not_passed_on(ticket: Ticket) -> str:
    """For the team, when "we haven't forgotten you" could not reach the customer: they were
    reminded, the customer was not, and only the team can reach them now."""
    return (
        f"I couldn't tell {ticket.requester_name} that ticket #{ticket.number} is taking longer than we"
        " aim for: their direct messages are closed to me, or I'm not allowed to post where their"
        " ticket is. Reach them another way."
    )


def breach_to_staff(ticket: Ticket, mentions: Sequence[Mention], *, overdue: str) -> OutboundMessage:
    return OutboundMessage(
        text=(
            f"⏰ Ticket **#{ticket.number}** has waited {overdue} past its first-response target "
            "and nobody has claimed it."
        ),
        buttons=(
            Button(
                action_id="ticket.claim", label="Claim", value=str(ticket.number), style=ButtonStyle.PRIMARY
            ),
        ),
        mentions=tuple(mentions),
    )


def clip(text: str, limit: int) -> str:
    """People's words on one line of at most `limit` characters: whitespace runs (line breaks too)
    become one space, and links show where they go."""
    single = " ".join(unmask_links(text).split())
    return single if len(single) <= limit else single[: limit - 1] + "…"
