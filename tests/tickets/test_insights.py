"""Staff insight commands: recurring questions, and reloading the knowledge base without a restart."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.events import Conversation, Platform
from storage.db import Database
from tests.harness import BotHarness, make_settings

FIXTURE_KB = Path(__file__).resolve().parent.parent / "data" / "kb"


@pytest.fixture
async def bot(database: Database, tmp_path: Path) -> AsyncIterator[BotHarness]:
    kb = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, kb)
    harness = await BotHarness.create(make_settings(tmp_path, kb_path=str(kb)), database=database)
    harness.kb_path = kb  # type: ignore[attr-defined]
    yield harness
    await harness.close()


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


async def test_staff_reload_the_knowledge_base_without_a_restart(bot: BotHarness) -> None:
    kb: Path = bot.kb_path  # type: ignore[attr-defined]
    before = await bot.customer_says("how do I change the colour of the dashboard theme?")
    assert all(m.delivery.message.title != "Change the dashboard theme" for m in before)
    (kb / "extra.yml").write_text(
        "- id: dashboard-theme\n  title: Change the dashboard theme\n  questions:\n"
        "    - How do I change the colour of the dashboard theme?\n    - Switch to dark mode\n"
        "    - Change the dashboard colours\n  answer: Open **Settings → Appearance** and pick a theme.\n"
    )
    (summary,) = await bot.staff_runs("/support kb reload")
    assert (
        summary.text.startswith("Knowledge base reloaded: 7 entries") and "`dashboard-theme`" in summary.text
    )
    (after,) = await bot.says(bot.other_customer, "how do I change the colour of the dashboard theme?")
    assert after.delivery.message.title == "Change the dashboard theme"


async def test_a_broken_edit_keeps_the_previous_knowledge_base(bot: BotHarness) -> None:
    kb: Path = bot.kb_path  # type: ignore[attr-defined]
    (kb / "broken.yml").write_text("- id: half-written\n  questions: [only one]\n")
    (reply,) = await bot.staff_runs("/support kb reload")
    assert "kept the previous one" in reply.text and "broken.yml:1" in reply.text
    (answer,) = await bot.customer_says("my csv export failed")
    assert answer.delivery.message.title == "An export failed"
