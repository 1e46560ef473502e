"""The files a question was asked with are kept with it (names, links, what the platform fetches them
by) until a ticket opened later brings them to the team: they are the person's, so their export
holds them, and an erasure or the retention period takes them with the question. Runs on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.core import privacy
from bot.core.relayed_files import files_kept
from bot.core.retention import purge_old_text
from storage.models import KBDecision
from tests.harness import BotHarness

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


async def _question_with_a_screenshot(bot: BotHarness) -> str:
    """Casey asks with a screenshot; the bot answers from the knowledge base. Its link."""
    screenshot = bot.adapter.share("quokka-error.png", PNG, "image/png")
    await bot.customer_says("my csv export failed", files=[screenshot])
    return screenshot.link


async def _files_kept(bot: BotHarness) -> list[str | None]:
    async with bot.bot.database.session() as session:
        return list((await session.execute(select(col(KBDecision.files)))).scalars())


async def test_the_export_holds_the_files_asked_with(bot: BotHarness) -> None:
    link = await _question_with_a_screenshot(bot)
    async with bot.bot.database.session() as session:
        document = await privacy.export(session, subject=bot.customer.key, now=bot.clock())
    assert document is not None
    (question,) = document["kb_questions"]
    assert "quokka-error.png" in question["files"] and link in question["files"]


async def test_an_erasure_takes_the_files_asked_with(bot: BotHarness) -> None:
    await _question_with_a_screenshot(bot)
    async with bot.bot.database.transaction() as session:
        assert await privacy.erase(session, subject=bot.customer.key, now=bot.clock()) is not None

    (kept,) = await _files_kept(bot)
    assert kept == privacy.ERASED and files_kept(kept) == (), "no file left to fetch, nor its name"


async def test_the_retention_period_takes_the_files_asked_with(bot: BotHarness) -> None:
    await _question_with_a_screenshot(bot)
    assert await purge_old_text(bot.bot.database, before=bot.clock() + timedelta(days=1)) > 0
    assert await _files_kept(bot) == [None]
