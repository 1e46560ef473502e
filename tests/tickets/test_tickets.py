"""Tickets through the fake adapter: open, follow, relay both ways, claim, close with the customer's
confirmation, rate; the /ticket commands. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.adapters.discord import translate as discord
from bot.adapters.slack import translate as slack
from bot.core.events import Actor, Button, MessageReceived, Platform, plain_moments
from storage.db import Database
from storage.models import AuditEntry
from tests.fake_adapter import SentMessage
from tests.harness import STAFF_CHANNEL, BotHarness, button, make_settings
from tests.tickets.conversation import escalated, tickets, transcript


async def test_asking_for_a_person_opens_a_ticket_and_tells_everyone_what_happens_next(
    bot: BotHarness,
) -> None:
    reply, card = await escalated(bot)
    assert reply.text.startswith("I've asked a person from the team to help: this is ticket **#1**")
    assert "You're next in line" in reply.text and "4 hours" in reply.text
    assert reply.ref.thread_id is not None, "the answer goes in the customer's thread"
    assert card.delivery.message.title.startswith("Ticket #1")
    assert "the customer asked for a person" in card.text
    assert "Casey" in card.text
    assert [b.label for b in card.delivery.message.buttons] == ["Claim", "Close"]
    assert [m.id for m in card.delivery.message.mentions] == ["oncall"], "on-call is pinged on purpose"
    (ticket,) = await tickets(bot)
    assert ticket.staff_thread_id == card.ref.message_id
    assert ticket.reason == "asked_for_person"


async def test_the_staff_card_says_when_the_answer_is_due_in_each_readers_own_time(bot: BotHarness) -> None:
    _, card = await escalated(bot)  # at 09:00 UTC, with a 4-hour target
    (due,) = [f.value for f in card.delivery.message.fields if f.name == "Answer due"]
    assert plain_moments(due) == "13:00 UTC (in 4 hours)", "the console and transcripts"
    unix = int(datetime(2026, 11, 24, 13, 0, tzinfo=UTC).timestamp())
    message = replace(card.delivery.message, mentions=())  # the console's on-call is no platform's id
    (on_discord,) = discord.render(message)
    assert on_discord.embed is not None
    assert f"<t:{unix}:f> (<t:{unix}:R>)" in [f.value for f in on_discord.embed.fields], "kept current"
    (on_slack,) = slack.render(message)
    assert f"<!date^{unix}^{{date_short_pretty}} {{time}}|13:00 UTC> (in 4 hours)" in str(on_slack.blocks)


async def test_queue_position_and_wait_are_honest(bot: BotHarness) -> None:
    await escalated(bot)
    sent = await bot.says(bot.other_customer, "I want to speak to a real person")
    assert "1 request is ahead of yours" in sent[0].text


async def test_the_whole_ticket_life(bot: BotHarness) -> None:
    reply, card = await escalated(bot, "talk to a human, my export keeps failing")
    customer_thread = reply.ref.thread_id
    staff_thread = card.ref.message_id

    # While a person holds the conversation the bot relays instead of answering.
    sent = await bot.customer_says("it fails with error 500 since this morning", thread=customer_thread)
    assert [m.channel_id for m in sent] == [STAFF_CHANNEL]
    assert sent[0].ref.thread_id == staff_thread
    assert "Casey:**" in sent[0].text and "error 500" in sent[0].text

    # Staff claim with the button: the customer is told who picked it up.
    sent = await bot.click(bot.staff, button(card, "Claim"), on=card)
    assert any("Sam (staff) from the team has picked up ticket **#1**" in m.text for m in sent)

    # Staff reply in the staff thread reaches the customer's thread.
    staff_channel = bot.community.__class__(
        platform=Platform.CONSOLE, workspace_id="W1", channel_id=STAFF_CHANNEL
    )
    sent = await bot.says(
        bot.staff,
        "We fixed the export worker, please try again",
        conversation=staff_channel,
        thread=staff_thread,
    )
    assert len(sent) == 1 and sent[0].channel_id == "community"
    assert sent[0].delivery.conversation.thread_id == customer_thread
    assert "We fixed the export worker" in sent[0].text

    # Internal notes never reach the customer.
    sent = await bot.staff_runs("/ticket note 1 root cause was the disk filling up")
    assert all(m.channel_id != "community" for m in sent)

    # Closing asks the customer first.
    sent = await bot.staff_runs("/ticket close 1 export worker fixed")
    question = next(m for m in sent if m.channel_id == "community")
    assert question.text.endswith("Did this solve it?")
    (ticket,) = await tickets(bot)
    assert ticket.state == "awaiting_confirmation"

    # Someone else cannot answer for the customer.
    sent = await bot.click(bot.other_customer, button(question, "Yes"), on=question)
    assert "Only Casey can answer that" in sent[0].text
    (ticket,) = await tickets(bot)
    assert ticket.state == "awaiting_confirmation"

    sent = await bot.click(bot.customer, button(question, "Yes"), on=question)
    rating = next(m for m in sent if m.delivery.message.buttons)
    assert [b.label for b in rating.delivery.message.buttons] == ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★"]
    assert any("confirmed ticket #1 is solved" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)

    sent = await bot.click(bot.customer, button(rating, "4"), on=rating)
    assert "Thanks for rating ticket #1 4/5" in sent[0].text
    (ticket,) = await tickets(bot)
    assert (ticket.state, ticket.closed_how, ticket.rating) == ("closed", "confirmed", 4)

    kinds = [kind for kind, _ in await transcript(bot, 1)]
    assert kinds.count("customer") == 2 and kinds.count("staff") == 1 and kinds.count("note") == 1


async def test_saying_no_reopens_and_tells_the_team(bot: BotHarness) -> None:
    await escalated(bot)
    await bot.staff_runs("/ticket claim 1")
    sent = await bot.staff_runs("/ticket close 1")
    question = next(m for m in sent if m.channel_id == "community")
    sent = await bot.click(bot.customer, button(question, "No"), on=question)
    assert any("reopened ticket **#1**" in m.text for m in sent if m.channel_id == "community")
    assert any("reopened" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)
    (ticket,) = await tickets(bot)
    assert ticket.state == "claimed" and ticket.closed_at is None


async def test_ticket_command_opens_a_ticket_and_status_shows_where_it_stands(bot: BotHarness) -> None:
    sent = await bot.customer_runs("/ticket my CSV export failed with error 500")
    assert any("ticket **#1**" in m.text for m in sent)
    bot.clock.advance(minutes=30)
    sent = await bot.customer_runs("/ticket status 1")
    card = sent[0].delivery.message
    assert card.private_to == bot.customer
    assert card.title == "Ticket #1: my CSV export failed with error 500"
    assert "waiting for a person" in card.plain_text
    assert "we aim to reply within 4 hours" in card.plain_text.replace("3 hours", "4 hours")
    sent = await bot.customer_runs("/tickets")
    assert "**#1** my CSV export failed" in sent[0].text


async def test_asking_in_words_opens_a_ticket(bot: BotHarness) -> None:
    sent = await bot.customer_says("could you open a ticket for my broken invoice export?")
    assert any("ticket **#1**" in m.text for m in sent)
    (ticket,) = await tickets(bot)
    assert ticket.reason == "requested"


async def test_someone_elses_ticket_stays_private(bot: BotHarness) -> None:
    await escalated(bot)
    sent = await bot.run(bot.other_customer, "/ticket status 1")
    assert sent[0].text == "I couldn't find a ticket #1 of yours. `/tickets` lists the ones you opened."
    sent = await bot.run(bot.other_customer, "/ticket status 99")
    assert sent[0].text == "I couldn't find a ticket #99 of yours. `/tickets` lists the ones you opened."


async def test_staff_only_commands_refuse_customers_and_are_audited(bot: BotHarness) -> None:
    await escalated(bot)
    sent = await bot.customer_runs("/ticket close 1")
    assert sent[0].text.startswith("That's for the support team only.")
    (ticket,) = await tickets(bot)
    assert ticket.state == "open"
    async with bot.bot.database.session() as session:
        audit = (await session.execute(select(AuditEntry))).scalars().all()
    assert [(a.action, a.allowed, a.actor_key) for a in audit] == [("ticket.close", False, "console:C1")]


async def test_a_claim_button_with_a_mangled_number_says_so(bot: BotHarness) -> None:
    _reply, card = await escalated(bot)
    for value in ("99999999999999999999", "²"):
        mangled = Button(action_id="ticket.claim", label="Claim", value=value)
        (answer,) = await bot.click(bot.staff, mangled, on=card)
        assert answer.text == "That button is broken; please use the `/ticket` commands instead.", value
    (ticket,) = await tickets(bot)
    assert ticket.state == "open"


async def test_bad_ticket_arguments_get_usage_lines(bot: BotHarness) -> None:
    sent = await bot.customer_runs("/ticket status abc")
    assert "`abc` isn't a ticket number." in sent[0].text and "Example: `/ticket status 12`" in sent[0].text
    sent = await bot.customer_runs("/ticket status")
    assert "Which ticket?" in sent[0].text
    sent = await bot.customer_runs("/ticket status ²")
    assert "`²` isn't a ticket number." in sent[0].text, "a superscript is a digit to str.isdigit, not to int"
    sent = await bot.customer_runs("/ticket")
    assert "Usage: `/ticket <what happened>`" in sent[0].text
    sent = await bot.customer_runs("/ticket stauts 4")
    assert "Did you mean `/ticket status`?" in sent[0].text
    sent = await bot.customer_runs("/ticket cannot invite teammate")
    assert any("ticket **#1**" in m.text for m in sent), "an ordinary short summary opens a ticket"
    sent = await bot.staff_runs("/ticket priority 9 whenever")
    assert "I couldn't find ticket #9." in sent[0].text
    sent = await bot.staff_runs("/ticket priority 1 whenever")
    assert "`whenever` isn't a priority." in sent[0].text
    sent = await bot.staff_runs("/ticket priority 1")
    assert "Usage: `/ticket priority <number> urgent|high|normal|low`" in sent[0].text
    sent = await bot.staff_runs("/ticket reply 1")
    assert "What should it say?" in sent[0].text
    assert len(await tickets(bot)) == 1


async def test_what_was_typed_is_echoed_whole_or_with_an_ellipsis_where_it_was_cut(bot: BotHarness) -> None:
    """Twenty of 23 digits shown bare read as if the bot misread the number: a cut says so."""
    (answer,) = await bot.customer_runs("/ticket 12345678901234567890123")
    assert answer.text.startswith("`1234567890123456789…` isn't a ticket number."), answer.text
    (answer,) = await bot.customer_runs("/ticket 1234567890")
    assert answer.text.startswith("`1234567890` isn't a ticket number."), answer.text
    (answer,) = await bot.customer_runs("/tickets all of them please, open or closed")
    assert answer.text.startswith("I don't know `/tickets all of them please,…`."), answer.text
    (answer,) = await bot.customer_runs("/support troubleshooting-guides")
    assert answer.text.startswith("I don't know `/support troubleshooting-gui…`."), answer.text
    await bot.customer_runs("/ticket cannot invite teammate")
    (answer,) = await bot.staff_runs("/ticket priority 1 whenever-you-can-really")
    assert answer.text.startswith("`whenever-you-can-re…` isn't a priority."), answer.text


async def test_a_backtick_typed_stays_inside_the_echo_and_nothing_pings(bot: BotHarness) -> None:
    """A backtick of theirs would end the code span, and the rest would be formatting of their own."""
    (answer,) = await bot.customer_runs("/tickets `*x*` @here <!here>")
    assert answer.text.startswith("I don't know `/tickets '*x*' @here <!here>`."), answer.text
    (on_slack,) = slack.render(answer.delivery.message)
    (on_discord,) = discord.render(answer.delivery.message)
    assert "@\u200bhere" in on_discord.content and "<!here>" not in str(on_slack.blocks)


async def test_an_override_typed_cannot_turn_the_rest_of_the_answer_around(bot: BotHarness) -> None:
    (answer,) = await bot.customer_runs("/support \u202eplh")
    assert answer.text == "I don't know `/support plh`. Try `/support help`.", answer.text


async def test_a_misspelt_listing_word_gets_a_hint_not_a_ticket(bot: BotHarness) -> None:
    """`/ticket lsit` meant the list: opening a ticket about "lsit" would ping on-call for nothing.
    A one-word summary close to a listing word is asked for a few more words instead."""
    for typed, meant in (("lsit", "list"), ("hlep", "help"), ("mien", "mine")):
        sent = await bot.customer_runs(f"/ticket {typed}")
        assert f"Did you mean `/ticket {meant}`?" in sent[0].text, typed
    assert await tickets(bot) == []
    sent = await bot.customer_runs("/ticket billing")
    assert any("ticket **#1**" in m.text for m in sent), "a one-word summary like no command opens a ticket"


async def test_a_one_word_problem_a_letter_away_from_a_listing_word_opens_a_ticket(
    bot: BotHarness,
) -> None:
    """A lone "slow" is no typo of show, nor "lost" of list nor "call" of all: each is the whole
    problem, and the customer gets a ticket. Letters swapped or left out are still typos."""
    for number, problem in enumerate(("slow", "lost", "call"), 1):
        sent = await bot.customer_runs(f"/ticket {problem}")
        assert any(f"ticket **#{number}**" in m.text for m in sent), problem
    for typed, meant in (("lst", "list"), ("hlp", "help"), ("mien", "mine")):
        sent = await bot.customer_runs(f"/ticket {typed}")
        assert f"Did you mean `/ticket {meant}`?" in sent[0].text, typed
    assert [t.summary for t in await tickets(bot)] == ["slow", "lost", "call"]


async def test_a_staff_ticket_reaction_turns_a_message_into_a_ticket(bot: BotHarness) -> None:
    message = MessageReceived(
        actor=bot.customer,
        conversation=bot.community,
        text="the dashboard shows yesterday's numbers",
        message_id="m77",
    )
    sent = await bot.react(bot.staff, "ticket", to=message)
    reply = next(m for m in sent if m.channel_id == "community")
    assert reply.delivery.conversation.thread_id == "m77"
    (ticket,) = await tickets(bot)
    assert (ticket.requester_key, ticket.reason, ticket.summary) == ("console:C1", "reaction", message.text)
    # A customer's 🎫 is just an emoji.
    other = MessageReceived(actor=bot.other_customer, conversation=bot.community, text="hm", message_id="m78")
    assert await bot.react(bot.customer, "ticket", to=other) == []
    assert len(await tickets(bot)) == 1


async def test_a_ticket_reaction_in_someone_elses_ticket_thread_leaves_that_ticket_theirs(
    bot: BotHarness,
) -> None:
    reply, _ = await escalated(bot)
    thread = bot.community.in_thread(reply.ref.thread_id or "")
    robins = MessageReceived(
        actor=bot.other_customer, conversation=thread, text="same here, my export fails", message_id="m77"
    )
    (refusal,) = await bot.react(bot.staff, "ticket", to=robins)
    assert refusal.delivery.message.private_to == bot.staff
    assert refusal.text == (
        "That message is in the thread of ticket #1, which is another customer's, so I haven't opened "
        "a ticket for it: the two would share one thread. Ask them to write in the channel or to send "
        "me a direct message."
    )
    assert len(await tickets(bot)) == 1
    sent = await bot.customer_says("any news on this?", thread=reply.ref.thread_id)
    assert [m.text for m in sent] == ["**Casey:**\nany news on this?"], "Casey's thread is still Casey's"


async def _staff_ticket_reaction_to(bot: BotHarness, message: MessageReceived) -> str:
    """Sam's 🎫 on the message: what he alone is told."""
    (told,) = await bot.react(bot.staff, "ticket", to=message)
    assert told.delivery.message.private_to == bot.staff
    return told.text


async def test_a_ticket_reaction_in_a_tickets_own_threads_names_that_ticket_and_opens_no_other(
    bot: BotHarness,
) -> None:
    """Sam's 🎫 on Casey's follow-up in her ticket's thread, or on words in the team's thread under
    its card: both are ticket #1's already, and the team has seen them. Sam is told so, privately;
    no second ticket takes either thread, nothing reaches the team twice, Casey hears nothing."""
    reply, card = await escalated(bot)
    await bot.customer_says("it says error 500", thread=reply.ref.thread_id)
    in_her_thread = bot.community.in_thread(reply.ref.thread_id or "")
    followup = MessageReceived(
        actor=bot.customer, conversation=in_her_thread, text="it says error 500", message_id="m77"
    )
    assert await _staff_ticket_reaction_to(bot, followup) == (
        "That message is in the thread of ticket #1, so it is part of that ticket already: what Casey"
        " writes there reaches the team. I haven't opened another ticket for it."
    )
    in_team_thread = bot.staff_room.in_thread(card.ref.message_id)
    team_talk = MessageReceived(
        actor=bot.staff, conversation=in_team_thread, text="looks like last week's bug", message_id="m78"
    )
    assert await _staff_ticket_reaction_to(bot, team_talk) == (
        "That message is in the team's thread of ticket #1, so it belongs to that ticket. I haven't"
        " opened another ticket for it."
    )
    assert len(await tickets(bot)) == 1
    assert [line for line in await transcript(bot, 1) if line[1] == "it says error 500"] == [
        ("customer", "it says error 500")
    ], "in the ticket once"
    sent = await bot.says(bot.staff, "Which file?", conversation=bot.staff_room, thread=card.ref.message_id)
    assert [m.channel_id for m in sent] == ["community"], "the team's thread still answers Casey"


async def test_a_ticket_reaction_on_the_bots_own_message_opens_no_ticket(bot: BotHarness) -> None:
    """Sam's 🎫 on the bot's own post outside any ticket: the bot is nobody's requester. Sam alone
    is told so, and how to open a ticket for the customer; nobody else hears anything."""
    (answer,) = await bot.customer_says("how do i reset my api key?")
    (told,) = await bot.react(bot.staff, "ticket", to=answer)
    assert told.delivery.message.private_to == bot.staff
    assert told.text == (
        "That's my own message, so there is no one to open a ticket for it. To open one for a"
        " customer, react 🎫 to their own message."
    )
    assert await tickets(bot) == []


async def test_a_ticket_command_in_someone_elses_ticket_thread_points_the_customer_elsewhere(
    bot: BotHarness,
) -> None:
    reply, _ = await escalated(bot)
    thread = bot.community.in_thread(reply.ref.thread_id or "")
    (answer,) = await bot.run(bot.other_customer, "/ticket my export fails too", conversation=thread)
    assert answer.delivery.message.private_to == bot.other_customer
    assert answer.text.startswith("This thread is about someone else's ticket (#1), so I can't open yours")
    assert len(await tickets(bot)) == 1


async def test_relayed_text_is_inert_and_mentions_are_explicit(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    sent = await bot.customer_says("@everyone <!channel> <@&123> look at this", thread=reply.ref.thread_id)
    relayed = sent[0].delivery.message
    assert relayed.mentions == (), "only deliberate mentions ping; adapters escape the text"
    assert "@everyone <!channel> <@&123>" in relayed.text


async def test_a_link_in_a_customers_words_shows_the_team_where_it_goes(bot: BotHarness) -> None:
    # On Discord `[label](url)` is a link showing only its label; Slack's `<url|label>` too.
    reply, _ = await escalated(bot)
    sent = await bot.customer_says(
        "it says [Reset your password](https://evil.example/login) then [docs](<https://evil.example/x>)",
        thread=reply.ref.thread_id,
    )
    relayed = sent[0].delivery.message
    assert "Reset your password (https://evil.example/login)" in relayed.text
    assert "docs (https://evil.example/x)" in relayed.text
    (on_slack,) = slack.render(relayed)
    assert "|Reset your password>" not in str(on_slack.blocks), "no Slack link with the customer's label"
    sent = await bot.run(bot.other_customer, "/ticket [Billing portal](https://evil.example/pay) is down")
    (card,) = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert card.delivery.message.title == "Ticket #2: Billing portal (https://evil.example/pay) is down"


async def test_a_reply_typed_with_no_break_spaces_reaches_the_customer_as_typed(bot: BotHarness) -> None:
    await escalated(bot)
    # French puts a no-break space before "?"; Option+Space on a Mac may also sit between the words.
    answer = "Bonjour, l'export remarche\u00a0?\u00a0Merci de réessayer\u202f!"
    sent = await bot.staff_runs(f"/ticket reply\u00a01\u00a0{answer}")
    (to_customer,) = [m for m in sent if m.channel_id == "community"]
    assert to_customer.text.endswith(answer), to_customer.text
    assert ("staff", answer) in await transcript(bot, 1)

    await bot.staff_runs("/ticket note\u00a01 le client a dit\u00a0: «\u00a0merci\u00a0»")
    assert ("note", "le client a dit\u00a0: «\u00a0merci\u00a0»") in await transcript(bot, 1)


async def test_a_ticket_opened_with_no_break_spaces_keeps_its_summary_as_typed(bot: BotHarness) -> None:
    await bot.customer_runs("/ticket l'export échoue\u00a0!")
    await bot.customer_runs("/ticket new\u00a0la facture\u00a0?")
    assert [t.summary for t in await tickets(bot)] == ["l'export échoue\u00a0!", "la facture\u00a0?"]


async def test_escalating_twice_in_one_thread_attaches_to_the_open_ticket(bot: BotHarness) -> None:
    sent = await bot.customer_dms("I need a human")
    assert any("ticket **#1**" in m.text for m in sent)
    sent = await bot.customer_dms("hello??")
    assert [m.channel_id for m in sent] == [STAFF_CHANNEL], "in a held DM, messages go to the team"
    assert len(await tickets(bot)) == 1


async def test_tickets_get_sequential_numbers(bot: BotHarness) -> None:
    for index in range(3):
        customer = Actor(platform=Platform.CONSOLE, id=f"N{index}", display_name=f"N{index}")
        await bot.run(customer, f"/ticket problem number {index}")
    assert [t.number for t in await tickets(bot)] == [1, 2, 3]


async def test_a_second_customer_asking_for_a_person_in_a_ticket_thread_gets_an_answer(
    bot: BotHarness,
) -> None:
    reply, _ = await escalated(bot)
    sent = await bot.says(bot.other_customer, "can I talk to a human too please?", thread=reply.ref.thread_id)
    assert sent, "Robin asked for a person and got no reply at all; nothing reached the team"


async def test_a_ticket_whose_first_post_failed_does_not_swallow_the_whole_channel(bot: BotHarness) -> None:
    bot.adapter.fail_channel("community", DeliveryError("missing_access", permanent=True))
    await bot.customer_runs("/ticket my export failed with error 500")
    del bot.adapter.failures["community"]
    (ticket,) = await tickets(bot)
    sent = await bot.says(bot.other_customer, "how do I reset my api key?")
    assert sent and not any("someone else's ticket" in m.text for m in sent), (
        f"ticket #1 kept the whole channel as its home ({ticket.conversation_key}); "
        "another customer's question in the channel got no answer"
    )


async def test_a_long_escalated_message_is_kept_whole_in_the_transcript(bot: BotHarness) -> None:
    log = "\n".join(f"line {i}: ERROR worker crashed at step {i}" for i in range(200))
    text = "can I talk to a human please, here is the log:\n" + log
    assert 2000 < len(text) <= 20_000
    await bot.customer_dms(text)
    lines = await transcript(bot, 1)
    assert lines[0] == ("customer", text), f"kept {len(lines[0][1])} of {len(text)} characters"


async def test_replying_while_asked_to_confirm_reopens_as_the_status_card_promises(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket claim 1")
    await bot.staff_runs("/ticket close 1 should be fixed")
    (card,) = await bot.customer_runs("/ticket status 1")
    assert "or reply to reopen" in card.text  # what the customer is promised
    await bot.customer_says("no, it still fails with error 500", thread=reply.ref.thread_id)
    (ticket,) = await tickets(bot)
    assert ticket.state != "awaiting_confirmation", "the customer replied, but the ticket was not reopened"


async def test_a_thank_you_instead_of_the_button_keeps_the_close_question_open(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1 should be fixed")
    sent = await bot.customer_says("thanks, works now", thread=reply.ref.thread_id)
    (answer,) = [m for m in sent if m.channel_id != STAFF_CHANNEL]
    assert "Yes, it's solved" in answer.text
    (ticket,) = await tickets(bot)
    assert ticket.state == "awaiting_confirmation"
    assert ("customer", "thanks, works now") in await transcript(bot, 1)
    # The reminder carries the button: the question may be out of sight, or no longer clickable.
    await bot.click(bot.customer, button(answer, "Yes, it's solved"), on=answer)
    (ticket,) = await tickets(bot)
    assert ticket.state == "closed"


async def test_yes_in_words_to_did_this_solve_it_does_not_reopen_the_ticket(bot: BotHarness) -> None:
    reply, _ = await escalated(bot)
    await bot.staff_runs("/ticket close 1 should be fixed")
    sent = await bot.customer_says("Yes!", thread=reply.ref.thread_id)
    (answer,) = [m for m in sent if m.channel_id != STAFF_CHANNEL]
    assert answer.text == "Glad to hear it! Press **Yes, it's solved** and I'll close ticket **#1**."
    assert not any("reopened" in m.text for m in sent), "the team was told it is not solved"
    (ticket,) = await tickets(bot)
    assert ticket.state == "awaiting_confirmation"


async def test_a_confirmed_closed_ticket_is_not_promised_to_reopen_on_reply(bot: BotHarness) -> None:
    reply, card = await escalated(bot)
    sent = await bot.staff_runs("/ticket close 1")
    question = next(m for m in sent if m.channel_id == "community")
    await bot.click(bot.customer, button(question, "Yes"), on=question)
    (status,) = await bot.customer_runs("/ticket status 1")
    promised = "Reply in its thread if you still need help and it reopens" in status.text
    await bot.customer_says("it broke again, same error", thread=reply.ref.thread_id)
    (ticket, *_) = await tickets(bot)
    assert not promised or ticket.state != "closed", (
        "the status card promises a reply reopens the ticket, but replying left it closed"
    )
    # The staff side says the same: "The customer can reopen it by replying."
    staff_thread = bot.staff_room.in_thread(card.ref.message_id)
    (answer,) = await bot.says(bot.staff, "one more thing", conversation=staff_thread)
    reopens = "customer can reopen it by replying" in answer.text
    await bot.customer_says("hello? still broken", thread=reply.ref.thread_id)
    (ticket, *_) = await tickets(bot)
    assert not reopens or ticket.state != "closed"


async def test_that_solved_it_does_not_claim_a_closed_ticket_stays_open(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    sent = await bot.staff_runs("/ticket close 1")
    question = next(m for m in sent if m.text.endswith("Did this solve it?"))
    await bot.click(bot.customer, button(question, "Yes"), on=question)
    (ack,) = await bot.click(bot.customer, button(reply, "That solved it"), on=reply)
    assert "stays open" not in ack.text, ack.text


async def test_a_closed_tickets_priority_is_left_alone(bot: BotHarness) -> None:
    await escalated(bot)
    sent = await bot.staff_runs("/ticket close 1")
    question = next(m for m in sent if m.channel_id == "community")
    await bot.click(bot.customer, button(question, "Yes"), on=question)
    (answer,) = await bot.staff_runs("/ticket priority 1 urgent")
    assert answer.text == "Ticket #1 is closed; its priority no longer matters."
    assert [t.priority for t in await tickets(bot)] == ["normal"]


async def test_a_ticket_summary_starting_with_a_number_opens_a_ticket(bot: BotHarness) -> None:
    sent = await bot.customer_runs("/ticket 3 users cannot log in since the upgrade")
    assert any("ticket **#1**" in m.text for m in sent), [m.text for m in sent]
    assert len(await tickets(bot)) == 1


async def test_a_customers_summary_may_start_with_a_staff_word(bot: BotHarness) -> None:
    sent = await bot.customer_runs("/ticket close my account please, I am moving to another tool")
    assert any("ticket **#1**" in m.text for m in sent), [m.text for m in sent]
    sent = await bot.customer_runs("/ticket status page shows yesterday's data")
    assert any("ticket **#2**" in m.text for m in sent), [m.text for m in sent]
    assert [t.summary for t in await tickets(bot)] == [
        "close my account please, I am moving to another tool",
        "status page shows yesterday's data",
    ]


async def test_a_ticket_number_alone_still_shows_its_status(bot: BotHarness) -> None:
    await escalated(bot)
    (card,) = await bot.customer_runs("/ticket 1")
    assert card.text.startswith("Ticket #1: can I talk to a human please")


async def test_unknown_tickets_subcommand_gets_a_clear_reply(bot: BotHarness) -> None:
    (reply,) = await bot.customer_runs("/tickets closed")
    assert "closed" in reply.text or "don't know" in reply.text, reply.text


async def test_a_customer_naming_a_ticket_with_a_staff_command_is_refused(bot: BotHarness) -> None:
    await escalated(bot)
    (refusal,) = await bot.customer_runs("/ticket close 1")
    assert refusal.text.startswith("That's for the support team only.")
    assert [t.state for t in await tickets(bot)] == ["open"]


async def test_a_right_to_left_override_typed_in_a_command_does_not_reverse_the_answer(
    bot: BotHarness,
) -> None:
    (answer,) = await bot.customer_runs("/ticket status \u202e12x")
    assert "\u202e" not in answer.text
    assert answer.text.startswith("`12x` isn't a ticket number.")


async def test_ticket_list_shows_the_customers_tickets_and_adds_nothing_to_the_open_one(
    bot: BotHarness,
) -> None:
    await escalated(bot, "talk to a human, my export keeps failing")
    (listed,) = await bot.customer_runs("/tickets")
    assert "**#1** talk to a human, my export keeps failing" in listed.text
    for line in ("/ticket list", "/ticket LIST", "/ticket mine.", "/ticket all", "/ticket show?"):
        (reply,) = await bot.customer_runs(line)
        assert reply.delivery.message == listed.delivery.message, line
    assert len(await tickets(bot)) == 1
    assert [text for kind, text in await transcript(bot, 1) if kind == "customer"] == [
        "talk to a human, my export keeps failing"
    ]


async def test_ticket_list_shows_staff_what_tickets_shows_them(bot: BotHarness) -> None:
    await escalated(bot)
    (queue,) = await bot.staff_runs("/tickets")
    (own,) = await bot.staff_runs("/tickets mine")
    assert "**#1**" in queue.text and "**#1**" not in own.text
    (listed,) = await bot.staff_runs("/ticket list")
    assert listed.delivery.message == queue.delivery.message
    (mine,) = await bot.staff_runs("/ticket Mine")
    assert mine.delivery.message == own.delivery.message


async def test_staff_tickets_mine_lists_the_open_tickets_they_hold_most_urgent_first(
    database: Database, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, staff_user_ids=["console:S1", "console:S2"])
    bot = await BotHarness.create(settings, database=database)
    colleague = Actor(platform=Platform.CONSOLE, id="S2", display_name="Alex (staff)")
    try:
        await escalated(bot, "talk to a human, my export keeps failing")
        await bot.staff_runs("/ticket claim 1")
        await bot.staff_runs("/ticket close 1")  # still Sam's while the customer confirms
        bot.clock.advance(minutes=10)
        await bot.run(bot.other_customer, "/ticket invoices show the wrong currency")
        await bot.staff_runs("/ticket claim 2")
        await bot.staff_runs("/ticket priority 2 urgent")  # due long before #1
        await bot.run(bot.staff, "/ticket my laptop cannot reach the VPN", conversation=bot.community)
        await bot.run(colleague, "/ticket claim 3", conversation=bot.staff_room)
        await bot.run(bot.customer, "/ticket the audit log is empty")  # nobody holds #4

        (held,) = await bot.staff_runs("/tickets mine")
        assert held.delivery.message.title == "Tickets you hold"
        assert re.findall(r"\*\*#(\d+)\*\*", held.text) == ["2", "1"]
        assert "from Robin" in held.text and "from Casey" in held.text
        (same,) = await bot.staff_runs("/ticket mine")
        assert same.delivery.message == held.delivery.message
        (theirs,) = await bot.run(colleague, "/tickets mine", conversation=bot.staff_room)
        assert re.findall(r"\*\*#(\d+)\*\*", theirs.text) == ["3"]
        (customers,) = await bot.customer_runs("/tickets mine")
        assert "**#1**" in customers.text and "**#4**" in customers.text, "a customer's own, as before"
    finally:
        await bot.close()


async def test_staff_holding_no_ticket_are_pointed_to_the_queue(bot: BotHarness) -> None:
    await escalated(bot)
    (held,) = await bot.staff_runs("/tickets mine")
    assert held.text == "You hold no open tickets. `/tickets` shows the queue."


async def test_ticket_show_with_a_number_shows_its_status(bot: BotHarness) -> None:
    await escalated(bot)
    (status,) = await bot.customer_runs("/ticket status 1")
    for line in ("/ticket show 1", "/ticket show #1", "/ticket SHOW 1"):
        (card,) = await bot.customer_runs(line)
        assert card.delivery.message == status.delivery.message, line
    (refused,) = await bot.run(bot.other_customer, "/ticket show 1")
    assert refused.text == "I couldn't find a ticket #1 of yours. `/tickets` lists the ones you opened."
    (staff_card,) = await bot.staff_runs("/ticket show #1")
    assert staff_card.text.startswith("Ticket #1: can I talk to a human please")
    assert len(await tickets(bot)) == 1


async def test_ticket_show_followed_by_words_opens_a_ticket(bot: BotHarness) -> None:
    sent = await bot.customer_runs("/ticket show me how to export")
    assert any("ticket **#1**" in m.text for m in sent), [m.text for m in sent]
    assert [t.summary for t in await tickets(bot)] == ["show me how to export"]


async def test_ticket_open_followed_by_words_opens_a_ticket_about_those_words(bot: BotHarness) -> None:
    sent = await bot.customer_runs("/ticket open my export failed")
    assert any("ticket **#1**" in m.text for m in sent), [m.text for m in sent]
    assert [t.summary for t in await tickets(bot)] == ["my export failed"]


async def test_ticket_help_lists_the_ticket_commands_each_person_may_use(bot: BotHarness) -> None:
    (customer,) = await bot.customer_runs("/ticket help")
    assert customer.delivery.message.private_to == bot.customer
    assert "`/ticket <what happened>`" in customer.text
    assert "`/ticket status <number>`" in customer.text
    assert "`/tickets [mine]`" in customer.text
    assert "/ticket claim" not in customer.text and "/support" not in customer.text
    (staff,) = await bot.staff_runs("/ticket Help?")
    assert "`/ticket claim <number>`: Take the ticket" in staff.text
    assert "`/ticket status <number>`" in staff.text
    assert await tickets(bot) == []


async def test_a_one_word_summary_that_is_no_ticket_command_still_opens_a_ticket(bot: BotHarness) -> None:
    sent = await bot.customer_runs("/ticket outage")
    assert any("ticket **#1**" in m.text for m in sent), [m.text for m in sent]
    sent = await bot.run(bot.other_customer, "/ticket list of invoices is empty")
    assert any("ticket **#2**" in m.text for m in sent), [m.text for m in sent]
    assert [t.summary for t in await tickets(bot)] == ["outage", "list of invoices is empty"]


async def test_a_ticket_asked_for_where_the_bot_may_not_post_carries_on_in_direct_messages(
    bot: BotHarness,
) -> None:
    bot.adapter.fail_channel(
        "community", DeliveryError("not_in_channel", permanent=True, code=DeliveryFailure.NO_ACCESS)
    )
    sent = await bot.customer_runs("/ticket new my CSV export failed with error 500")

    (to_customer,) = [m for m in sent if m.channel_id == "D-C1"]
    assert to_customer.text.startswith("I'm not allowed to post in the channel where you asked")
    assert "ticket **#1**" in to_customer.text
    card = next(m for m in sent if m.channel_id == STAFF_CHANNEL and "#1" in m.text)
    asked_to_fix = [m.text for m in bot.staff_posts() if "I can't post" in m.text]
    assert asked_to_fix == [], "nothing was lost: staff are not asked into a channel that is not theirs"

    # The team's answer reaches the customer there, and what they add there reaches the team.
    sent = await bot.says(
        bot.staff, "Which file format was it?", conversation=bot.staff_room, thread=card.ref.message_id
    )
    assert [m.channel_id for m in sent] == ["D-C1"]
    assert "Which file format" in sent[0].text
    sent = await bot.customer_dms("a CSV of 2 MB")
    assert [m.channel_id for m in sent] == [STAFF_CHANNEL]
    assert sent[0].ref.thread_id == card.ref.message_id
    assert await transcript(bot, 1) == [
        ("customer", "my CSV export failed with error 500"),
        ("staff", "Which file format was it?"),
        ("customer", "a CSV of 2 MB"),
    ]


def _card(sent: SentMessage) -> tuple[dict[str, str], str]:
    """A `/ticket status` card as read: its fields by name, and its text."""
    message = sent.delivery.message
    return {f.name: f.value for f in message.fields}, message.text


async def test_staff_looking_at_a_ticket_read_it_as_the_team_not_as_its_customer(bot: BotHarness) -> None:
    await escalated(bot)
    await bot.staff_runs("/ticket close 1 fixed in 2.4.1")
    fields, text = _card((await bot.staff_runs("/ticket status 1"))[0])
    assert fields["State"] == "waiting for the customer's confirmation"
    assert text == (
        "**What happens next:** Casey has been asked whether it's solved; it closes when they confirm, "
        "or by itself if they don't answer."
    )
    (queue,) = await bot.staff_runs("/tickets")
    assert "waiting for the customer's confirmation" in queue.text

    close_question = next(m for m in bot.adapter.sent if m.delivery.message.buttons and "solve it?" in m.text)
    confirmed = await bot.click(bot.customer, button(close_question, "Yes"), on=close_question)
    (rating,) = [m for m in confirmed if m.channel_id != STAFF_CHANNEL]
    await bot.click(bot.customer, button(rating, "4"), on=rating)
    fields, text = _card((await bot.staff_runs("/ticket status 1"))[0])
    assert fields["Customer's rating"] == "4/5"
    assert text == (
        "**What happens next:** Closed. It stays closed; if the customer needs more help, their next "
        "question opens a new ticket."
    )
    fields, _ = _card((await bot.customer_runs("/ticket status 1"))[0])
    assert fields["Your rating"] == "4/5", "the customer's own view"
