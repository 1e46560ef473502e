"""`/support report [days]`: the figures of a conversation as docs/REPORTS.md defines them, for staff
only, with no customer's name or id and customers' words clipped and inert. SQLite and PostgreSQL."""

from __future__ import annotations

import re

from bot.core.events import Conversation, Platform
from tests.fake_adapter import SentMessage
from tests.harness import STAFF_CHANNEL, BotHarness, button


def fields(report: SentMessage) -> dict[str, str]:
    return {field.name: field.value for field in report.delivery.message.fields}


async def a_week_of_support(bot: BotHarness) -> None:
    """Casey's answer solves it; Robin's does not (a ticket, answered in 10 minutes, closed and
    rated 5); Casey's question the KB cannot answer becomes a ticket that is claimed but never
    answered; Casey asks about an incident."""
    (answer,) = await bot.customer_says("my csv export failed")
    await bot.click(bot.customer, button(answer, "That solved it"), on=answer)
    bot.clock.advance(minutes=1)
    (other,) = await bot.says(bot.other_customer, "why did my data export fail?")
    sent = await bot.click(bot.other_customer, button(other, "I still need help"), on=other)
    card = next(m for m in sent if m.channel_id == STAFF_CHANNEL)
    bot.clock.advance(minutes=10)
    await bot.says(bot.staff, "Try again now please", conversation=bot.staff_room, thread=card.ref.message_id)
    sent = await bot.staff_runs("/ticket close 1")
    question = next(m for m in sent if m.channel_id == "community")
    sent = await bot.click(bot.other_customer, button(question, "Yes"), on=question)
    rating = next(m for m in sent if m.delivery.message.buttons)
    await bot.click(bot.other_customer, button(rating, "5"), on=rating)
    bot.clock.advance(minutes=1)
    await bot.customer_dms("do you sponsor football clubs in Lisbon?")
    await bot.staff_runs("/ticket claim 2")  # a claim tells the customer, but it is not an answer
    bot.clock.advance(minutes=1)
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.customer_says("are payments down?")
    # A team member trying the bot is not a customer.
    staff_dm = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D-S1", is_direct=True)
    await bot.says(bot.staff, "my csv export failed", conversation=staff_dm)
    bot.clock.advance(hours=5)


async def test_the_report_shows_a_conversations_figures_as_defined(bot: BotHarness) -> None:
    await a_week_of_support(bot)
    (report,) = await bot.staff_runs("/support report")
    assert report.delivery.message.private_to == bot.staff
    assert report.delivery.message.title == "Support report: last 7 days"
    shown = fields(report)
    assert shown["Questions"] == "3 (new vs 0)"
    assert shown["Answered by the bot"] == "2 (new vs 0); 67% of 3 questions"
    assert shown["Confirmed solved"] == "1 (new vs 0)"
    # Robin's answer was followed by their own ticket; Casey's is less than a day old.
    assert shown["Deflected"] == "1 (new vs 0); 33% of 3 questions (1 answered in the last 24 h)"
    assert shown["Escalations"] == "not sure 1 · still needed help 1"
    assert shown["Tickets"] == "2 opened (new vs 0) · 1 closed · 0 reopened"
    # Bot messages and a claim never count as a response: ticket 2 has none, and is past its target.
    assert shown["First response p50 / p90"] == "normal 10 min / 10 min · 1 not answered yet"
    assert shown["SLA met"] == "50% of 2 tickets due"
    assert shown["Resolution p50 / p90"] == "10 min / 10 min (1 closed)"
    assert shown["CSAT"].startswith("5.0 / 5 from 1 of 1 asked (100%)")
    assert shown["By platform"] == "console 3 questions, 2 answered, 2 tickets"
    assert shown["Incidents"] == "1 on; 1 question about them, 1 settled by the status answer"
    assert shown["Knowledge gaps"].startswith("none (1 unanswered question;")


async def test_trends_compare_with_the_window_before(bot: BotHarness) -> None:
    await bot.customer_says("my csv export failed")
    bot.clock.advance(days=3)
    await bot.customer_says("how do I download an invoice")
    await bot.says(bot.other_customer, "where are my invoices")
    bot.clock.advance(hours=1)
    (report,) = await bot.staff_runs("/support report 2")
    assert report.delivery.message.title == "Support report: last 2 days"
    assert fields(report)["Questions"] == "2 (+100% vs 1)"


async def test_an_empty_database_has_nothing_to_report_and_says_so(bot: BotHarness) -> None:
    (report,) = await bot.staff_runs("/support report 30")
    assert "nothing to report yet" in report.text
    assert report.delivery.message.fields == ()


async def test_the_report_is_for_staff_and_takes_1_to_365_days(bot: BotHarness) -> None:
    (refusal,) = await bot.customer_runs("/support report")
    assert refusal.text.startswith("That's for the support team only.")
    for days in ("0", "366", "forever", "7 days", "²"):
        (usage,) = await bot.staff_runs(f"/support report {days}")
        assert "isn't a number of days (1 to 365)" in usage.text, days
        assert "Usage: `/support report [days]`" in usage.text
    (report,) = await bot.staff_runs("/support report 365")
    assert report.delivery.message.title == "Support report: last 365 days"


async def test_no_name_or_id_and_customers_words_are_clipped_and_inert(bot: BotHarness) -> None:
    long_question = (
        "do you sponsor football clubs? **really** `code` <@U0CASEY> @everyone\n```\nrm -rf /\n```\n"
        + "football sponsor " * 1200
    )
    assert len(long_question) > 20_000
    await bot.customer_dms(long_question)
    bot.clock.advance(minutes=1)
    await bot.says(bot.other_customer, "do you sponsor **football** `teams`? <@U0ROBIN>")
    bot.clock.advance(minutes=1)
    (report,) = await bot.staff_runs("/support report")
    everything = report.text
    for private in ("Casey", "Robin", "console:C1", "console:C2", "U0CASEY", "U0ROBIN"):
        assert private not in everything, private
    assert not re.search(r"\bC[12]\b", everything)
    gaps = fields(report)["Knowledge gaps"]
    (line,) = gaps.splitlines()
    assert line.startswith("1. 2 people, 2 questions: \u201c"), gaps
    quoted = line.split("\u201c", 1)[1].split("\u201d", 1)[0]
    assert len(quoted) <= 90
    assert "`" not in quoted and "**" not in quoted and "<@" not in quoted and "U0ROBIN" not in everything
    assert len(everything) < 3000, "the 20,000 characters are clipped"
    assert report.delivery.message.mentions == ()


async def test_a_link_in_a_customers_question_is_quoted_as_text_not_as_a_link(bot: BotHarness) -> None:
    """A gap's example is quoted in the staff channel: a masked link in it ("claim your refund"
    over any address) must not become a link staff can click there."""
    link = "[claim your refund](https://phish.example/login)"
    await bot.customer_dms(f"do you sponsor football clubs? {link}")
    bot.clock.advance(minutes=1)
    await bot.says(bot.other_customer, f"do you sponsor football teams? {link}")
    bot.clock.advance(minutes=1)
    (report,) = await bot.staff_runs("/support report")
    (line,) = fields(report)["Knowledge gaps"].splitlines()
    assert "claim your refund" in line and "phish.example/login" in line, "the words stay readable"
    assert "](" not in line, line


async def test_a_number_of_days_too_long_to_read_is_refused_politely(bot: BotHarness) -> None:
    """Python will not read a number of more than 4,300 digits: that is a wrong number of days to
    point out, not an error to apologise for."""
    huge = "9" * 5000
    for command in ("report", "questions"):
        (usage,) = await bot.staff_runs(f"/support {command} {huge}")
        assert "isn't a number of days (1 to 365)" in usage.text, usage.text
        assert len(usage.text) < 300, "the number is clipped"


async def test_one_of_each_is_said_in_the_singular(bot: BotHarness) -> None:
    await bot.customer_says("my csv export failed")
    await bot.customer_runs("/ticket my invoice shows the wrong currency")
    bot.clock.advance(hours=5)
    (report,) = await bot.staff_runs("/support report 1")
    assert "Trends compare with the day before." in report.text
    shown = fields(report)
    assert shown["Answered by the bot"] == "1 (new vs 0); 100% of 1 question"
    assert shown["SLA met"] == "0% of 1 ticket due"
    assert shown["By platform"] == "console 1 question, 1 answered, 1 ticket"
