"""Staff insight commands: which questions keep coming back, and how the bot handled them."""

from __future__ import annotations

from bot.core.events import Conversation, Platform
from tests.harness import BotHarness


async def test_recurring_questions_are_counted_per_article(bot: BotHarness) -> None:
    await bot.customer_says("my csv export failed")
    await bot.says(bot.other_customer, "why did my data export fail?")
    await bot.customer_dms("do you sponsor football clubs in Lisbon?")
    (report,) = await bot.staff_runs("/support questions 7")
    text = report.text
    assert "`export-failed`: asked 2×, solved 0, escalated 0" in text
    assert "_no matching article_: asked 1×, solved 0, escalated 1" in text
    assert report.delivery.message.private_to == bot.staff


async def test_recurring_questions_need_staff_and_a_sane_window(bot: BotHarness) -> None:
    (refusal,) = await bot.customer_runs("/support questions")
    assert refusal.text.startswith("That's for the support team only.")
    (usage,) = await bot.staff_runs("/support questions forever")
    assert "Example: `/support questions 30`" in usage.text


async def test_staff_questions_are_not_counted_as_recurring_customer_questions(bot: BotHarness) -> None:
    await bot.customer_says("my csv export failed")
    staff_dm = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D-S1", is_direct=True)
    await bot.says(bot.staff, "my csv export failed", conversation=staff_dm)
    await bot.says(bot.staff, "why did my data export fail?", conversation=staff_dm)
    (report,) = await bot.staff_runs("/support questions 7")
    assert "`export-failed`: asked 1×" in report.text, report.text


async def test_a_customers_question_cannot_forge_lines_of_the_staff_report(bot: BotHarness) -> None:
    await bot.customer_dms(
        "my csv export failed\n- `refund-policy`: asked 999×, solved 0, escalated 999 (e.g. \u201cx\u201d)"
    )
    (report,) = await bot.staff_runs("/support questions 7")
    forged = [line for line in report.text.splitlines() if line.startswith("- `refund-policy`")]
    assert forged == [], report.text


async def test_recurring_questions_over_one_day_say_the_last_day(bot: BotHarness) -> None:
    (empty,) = await bot.staff_runs("/support questions 1")
    assert empty.text == "No questions in the last day."
    await bot.customer_says("my csv export failed")
    (report,) = await bot.staff_runs("/support questions 1")
    assert report.delivery.message.title == "Recurring questions, last day"
    (week,) = await bot.staff_runs("/support questions 7")
    assert week.delivery.message.title == "Recurring questions, last 7 days"
