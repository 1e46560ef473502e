"""Answering from the knowledge base: answer when sure, ask when unsure, bring in a person otherwise.
Every decision is stored. Runs on SQLite and PostgreSQL through the fake adapter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.core.events import Button
from storage.db import Database
from storage.models import KBDecision, Ticket, TicketMessage
from tests.harness import STAFF_CHANNEL, BotHarness, button, make_settings
from tests.kb.test_cli import NEEDS_SEMANTIC

KB = """
- id: reset-api-key
  title: Reset an API key
  questions:
    - How do I reset my API key?
    - How can I rotate an API key?
    - My API key leaked, how do I revoke it?
    - Where do I regenerate my API token?
  answer: |
    Open **Settings → API keys**, pick the key and choose _Roll key_. The old key stops working at once.
  links: [{label: API keys, url: "https://docs.example.com/api-keys"}]
  component: api
- id: export-failed
  title: An export failed
  questions:
    - My CSV export failed
    - Why did my data export fail?
    - The export is stuck and never finishes
    - Export download gives an error
  answer: |
    Exports over 1 GB are split into parts. Retry from **Data → Exports**; failed parts are retried for free.
  component: exports
- id: invoice-download
  title: Download an invoice
  questions:
    - Where can I download my invoices?
    - How do I get a PDF of my invoice?
    - I need a copy of last month's invoice
  answer: Invoices are under **Billing → Invoices**; each has a PDF button.
- id: invoice-address
  title: Change the address on invoices
  questions:
    - How do I change the billing address on my invoices?
    - Can I put a different company name on the invoice?
    - Update the address printed on invoices
  answer: Edit **Billing → Details**; new invoices use the new address.
"""


@pytest.fixture
async def bot(database: Database, tmp_path: Path) -> AsyncIterator[BotHarness]:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "faq.yml").write_text(KB)
    harness = await BotHarness.create(
        make_settings(tmp_path, kb_path=str(kb), matcher="lexical"), database=database
    )
    yield harness
    await harness.close()


async def _decisions(bot: BotHarness) -> list[KBDecision]:
    async with bot.bot.database.session() as session:
        return list((await session.execute(select(KBDecision).order_by(KBDecision.id))).scalars())


async def _tickets(bot: BotHarness) -> list[Ticket]:
    async with bot.bot.database.session() as session:
        return list((await session.execute(select(Ticket))).scalars())


async def test_a_known_question_is_answered_in_thread_with_feedback_buttons(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("how do i reset my api key?")
    message = reply.delivery.message
    assert message.title == "Reset an API key"
    assert "Roll key" in message.text and "[API keys](https://docs.example.com/api-keys)" in message.text
    assert [b.label for b in message.buttons] == ["That solved it", "I still need help"]
    assert reply.ref.thread_id is not None
    (decision,) = await _decisions(bot)
    assert (decision.band, decision.top_entry_id, decision.outcome) == ("answer", "reset-api-key", "answered")
    assert json.loads(decision.candidates)[0][0] == "reset-api-key"


async def test_typos_still_find_the_answer(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("how do I rest my api kee?")
    assert reply.delivery.message.title == "Reset an API key"


async def test_that_solved_it_is_recorded(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    (ack,) = await bot.click(bot.customer, button(reply, "That solved it"), on=reply)
    assert ack.text.startswith("Glad that solved it")
    (decision,) = await _decisions(bot)
    assert decision.outcome == "solved"


async def test_i_still_need_help_escalates_with_the_question(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    sent = await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    to_customer = [m for m in sent if m.channel_id != STAFF_CHANNEL]
    card = next(m for m in sent if m.channel_id == STAFF_CHANNEL)
    assert "ticket **#1**" in to_customer[0].text
    assert to_customer[0].delivery.conversation.thread_id == reply.ref.thread_id, "same thread as the answer"
    assert "the customer said the answer didn't help" in card.text
    (ticket,) = await _tickets(bot)
    assert (ticket.summary, ticket.reason, ticket.component) == (
        "my csv export failed",
        "still_need_help",
        "exports",
    )
    (decision,) = await _decisions(bot)
    assert (decision.outcome, decision.ticket_id) == ("still_need_help", ticket.id)


async def test_clicking_i_still_need_help_twice_tells_the_team_once(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    again = await bot.click(bot.customer, button(reply, "I still need help"), on=reply)

    assert [m.channel_id for m in again] != [] and all(m.channel_id != STAFF_CHANNEL for m in again)
    assert "already" in again[0].text
    (ticket,) = await _tickets(bot)
    async with bot.bot.database.session() as session:
        lines = (
            (await session.execute(select(TicketMessage.text).where(TicketMessage.ticket_id == ticket.id)))
            .scalars()
            .all()
        )
    assert lines.count("my csv export failed") == 1


async def test_a_feedback_button_with_a_mangled_number_says_so(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    for value in ("99999999999999999999", "²"):
        mangled = Button(action_id="kb.solved", label="That solved it", value=value)
        (answer,) = await bot.click(bot.customer, mangled, on=reply)
        assert answer.text.startswith("That button belongs to an old conversation"), value
    (decision,) = await _decisions(bot)
    assert decision.outcome == "answered"


async def test_only_the_asker_can_use_the_buttons(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    (refusal,) = await bot.click(bot.other_customer, button(reply, "That solved it"), on=reply)
    assert "for the person who asked" in refusal.text
    (decision,) = await _decisions(bot)
    assert decision.outcome == "answered"


async def test_an_unrelated_question_goes_to_a_person(bot: BotHarness) -> None:
    sent = await bot.customer_says("do you have an office in Lisbon where I can drop by?")
    assert any(m.text.startswith("I've asked a person from the team") for m in sent)
    assert any(m.channel_id == STAFF_CHANNEL for m in sent)
    (decision,) = await _decisions(bot)
    assert (decision.band, decision.outcome, decision.reason) == ("escalate", "escalated", "low_confidence")


async def test_an_ambiguous_question_offers_choices_and_a_way_out(bot: BotHarness) -> None:
    (reply,) = await bot.customer_dms("my invoice")
    message = reply.delivery.message
    if message.title is not None:
        pytest.fail(f"expected a clarifying question, got an answer: {message.title}")
    assert message.text.startswith("I'm not quite sure what you mean")
    labels = [b.label for b in message.buttons]
    assert labels[-1] == ("Not this" if len(labels) == 2 else "None of these") and 2 <= len(labels) <= 4
    assert "Download an invoice" in labels
    assert set(labels[:-1]) <= {"Download an invoice", "Change the address on invoices"}
    (answer,) = await bot.click(bot.customer, button(reply, "Download an invoice"), on=reply)
    assert answer.delivery.message.title == "Download an invoice"
    (decision,) = await _decisions(bot)
    assert (decision.band, decision.outcome) == ("clarify", "picked:invoice-download")


async def test_picking_an_article_removed_since_brings_in_a_person_as_promised(
    bot: BotHarness, tmp_path: Path
) -> None:
    (reply,) = await bot.customer_dms("my invoice")
    pick = button(reply, "Download an invoice")
    # Staff edit the knowledge base and reload it before the customer clicks.
    (tmp_path / "kb" / "faq.yml").write_text(KB.split("- id: invoice-download")[0])
    await bot.bot.services.kb.reload_async()
    sent = await bot.click(bot.customer, pick, on=reply)
    to_customer = [m.text for m in sent if m.channel_id != STAFF_CHANNEL]
    assert to_customer[0].startswith("That article is no longer in our help centre, so I've asked a person")
    assert any("ticket **#1**" in text for text in to_customer)
    assert any(m.channel_id == STAFF_CHANNEL for m in sent), "the team heard about it"
    (ticket,) = await _tickets(bot)
    assert ticket.summary == "my invoice"
    (decision,) = await _decisions(bot)
    assert decision.ticket_id == ticket.id


async def test_a_picked_article_with_a_long_id_is_recorded_whole(bot: BotHarness, tmp_path: Path) -> None:
    """Article ids may be 64 characters long; a pick recorded under a cut id credits an article that
    does not exist in the report's answer quality and the teach replay."""
    long_id = "download-an-invoice-as-a-pdf-from-billing-invoices-in-settings"
    assert 40 < len(long_id) <= 64
    (tmp_path / "kb" / "faq.yml").write_text(KB.replace("id: invoice-download", f"id: {long_id}"))
    await bot.bot.services.kb.reload_async()
    (reply,) = await bot.customer_dms("my invoice")
    await bot.click(bot.customer, button(reply, "Download an invoice"), on=reply)
    (decision,) = await _decisions(bot)
    assert decision.outcome == f"picked:{long_id}"


async def test_none_of_these_brings_in_a_person(bot: BotHarness) -> None:
    (reply,) = await bot.customer_dms("my invoice")
    sent = await bot.click(bot.customer, button(reply, "No"), on=reply)  # "None of these" or "Not this"
    assert any("none of my suggestions fit" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)
    (ticket,) = await _tickets(bot)
    assert ticket.reason == "clarify_declined"


async def test_frustration_escalates_even_when_the_answer_is_known(bot: BotHarness) -> None:
    sent = await bot.customer_says("THE CSV EXPORT FAILED AGAIN, THIS IS RIDICULOUS")
    card = next(m for m in sent if m.channel_id == STAFF_CHANNEL)
    assert "the customer sounds frustrated" in card.text
    (ticket,) = await _tickets(bot)
    assert ticket.priority == "high"


async def test_the_same_question_again_within_minutes_escalates(bot: BotHarness) -> None:
    (first,) = await bot.customer_says("my csv export failed")
    assert first.delivery.message.title == "An export failed"
    bot.clock.advance(minutes=3)
    sent = await bot.customer_says("my CSV export failed")
    assert any(
        "the customer asked the same thing again" in m.text for m in sent if m.channel_id == STAFF_CHANNEL
    )


async def test_the_same_question_much_later_is_just_answered(bot: BotHarness) -> None:
    await bot.customer_says("my csv export failed")
    bot.clock.advance(minutes=30)
    (again,) = await bot.customer_says("my CSV export failed")
    assert again.delivery.message.title == "An export failed"


async def test_community_chatter_is_left_alone(bot: BotHarness) -> None:
    assert await bot.customer_says("thanks, that worked!") == []
    assert await bot.customer_says("lol same") == []
    assert await bot.says(bot.staff, "how do I reset my api key? asking for a customer") == []
    assert await _decisions(bot) == []


async def test_empty_and_huge_messages_get_clear_replies(bot: BotHarness) -> None:
    (empty,) = await bot.customer_dms("   ")
    assert empty.text == "I got an empty message. What can I help you with?"
    huge = "my csv export failed " + "x" * 20_000
    sent = await bot.customer_says(huge)
    assert sent, "a 20,000-character message still gets an answer"
    (decision,) = await _decisions(bot)
    assert decision.question.startswith("my csv export failed")


async def test_a_pasted_nul_character_does_not_lose_the_question(bot: BotHarness) -> None:
    # PostgreSQL text cannot hold NUL; the question is kept without it.
    (reply,) = await bot.customer_dms("my csv export failed\x00\x00 with this log")
    assert reply.delivery.message.title == "An export failed"
    (decision,) = await _decisions(bot)
    assert decision.question == "my csv export failed with this log"
    sent = await bot.customer_dms("talk to a human\x00 please")
    assert any(m.channel_id == STAFF_CHANNEL for m in sent)
    (ticket,) = await _tickets(bot)
    assert ticket.summary == "talk to a human please"


async def test_emoji_and_right_to_left_text_do_not_break_anything(bot: BotHarness) -> None:
    sent = await bot.customer_dms("🙂🙂 كيف يمكنني إعادة تعيين مفتاح API؟ 🔑")
    assert sent and bot.last_outcome is not None and bot.last_outcome.value == "handled"


@NEEDS_SEMANTIC[0]
@NEEDS_SEMANTIC[1]
async def test_the_semantic_matcher_answers_live_traffic_off_the_event_loop(
    sqlite_database: Database, tmp_path: Path
) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "faq.yml").write_text(KB)
    harness = await BotHarness.create(
        make_settings(tmp_path, kb_path=str(tmp_path / "kb"), matcher="semantic"), database=sqlite_database
    )
    try:
        (reply,) = await harness.customer_dms("I need a new API key, the old one was exposed")
        assert reply.delivery.message.title == "Reset an API key"
    finally:
        await harness.close()


async def test_that_solved_it_after_escalating_keeps_the_ticket_honest(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    (ack,) = await bot.click(bot.customer, button(reply, "That solved it"), on=reply)
    assert "stays open until you confirm with the team" in ack.text
    (decision,) = await _decisions(bot)
    assert decision.outcome == "still_need_help"


async def test_rephrasing_after_did_you_mean_is_not_treated_as_asking_again(bot: BotHarness) -> None:
    (clarify,) = await bot.customer_dms("my invoice")
    assert clarify.text.startswith("I'm not quite sure what you mean")
    bot.clock.advance(minutes=1)
    sent = await bot.customer_dms("my invoice address is wrong, how do I change it?")
    card = [m.text for m in sent if m.channel_id == STAFF_CHANNEL]
    assert not any("the customer asked the same thing again" in t for t in card), (
        f"a more precise follow-up was escalated as a repeat: {card}"
    )


async def test_asking_again_while_a_ticket_is_open_on_it_adds_to_that_ticket(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    bot.clock.advance(minutes=3)
    sent = await bot.customer_says("my CSV export failed")

    to_customer = [m.text for m in sent if m.channel_id != STAFF_CHANNEL]
    assert to_customer == [
        "You asked this a moment ago, and ticket **#1** is already open for it: a person will answer "
        "in its thread. I've added this to it."
    ]
    to_team = [m for m in sent if m.channel_id == STAFF_CHANNEL]
    assert [m.text for m in to_team] == ["**Casey:**\nmy CSV export failed"], "in ticket #1's thread"
    assert not to_team[0].delivery.message.mentions, "on-call is not paged again"
    (ticket,) = await _tickets(bot)
    _, again = await _decisions(bot)
    assert (again.reason, again.ticket_id) == ("repeat", ticket.id)


async def test_a_second_click_on_i_still_need_help_does_not_claim_to_add_anything(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    (again,) = await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    assert again.text == "Your ticket **#1** is already open and a person will answer here."


async def test_did_you_mean_with_a_single_article_asks_about_that_one(bot: BotHarness) -> None:
    (reply,) = await bot.customer_dms("my invoice")  # only one article is close enough to offer
    message = reply.delivery.message
    assert message.text == "I'm not quite sure what you mean. Did you mean this?"
    assert [b.label for b in message.buttons] == ["Download an invoice", "Not this"]
    sent = await bot.click(bot.customer, button(reply, "Not this"), on=reply)
    assert any("none of my suggestions fit" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)


async def test_asking_again_while_the_team_waits_for_a_confirmation_is_not_solved(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("my csv export failed")
    await bot.click(bot.customer, button(reply, "I still need help"), on=reply)
    await bot.staff_runs("/ticket close 1")
    bot.clock.advance(minutes=3)
    sent = await bot.customer_says("my CSV export failed")
    assert any("ticket **#2**" in m.text for m in sent if m.channel_id != STAFF_CHANNEL), (
        "a ticket about to close as solved is no home for the question: a person hears of it anew"
    )
