"""Erasing a person while a live process is writing work about them kept with its event's claim
(bot/core/owed.py): the writer holds the claim while it writes, and the erasure, which takes the
claims before the files, waits for it and then cleans or deletes what it wrote. A lesson holding
their words being written when they are erased leaves learned.yml without them, and its teacher
hears what was drafted; an export of them being written is deleted with them, the erasure says so.
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.handlers import privacy as privacy_commands
from bot.kb import learned, teach
from tests.handlers.test_erasing_owed_work import ANSWER, _the_next_process_of
from tests.handlers.test_privacy_commands import QUENTIN
from tests.handlers.test_teach_from_gap import THEME, a_gap_about_the_theme
from tests.handlers.test_writes_after_the_commit_kept import ERASURE_WAITS, HeldWrite, next_process
from tests.harness import BotHarness, button

__all__ = ["next_process"]  # the fixture, shared with the kept work's own tests


async def _erased_while_held(
    writer: asyncio.Task[Any], held: HeldWrite, erasing: Callable[[], Any]
) -> tuple[Any, Any]:
    """The erasure started while the write is held, given `ERASURE_WAITS` to finish (before this
    fix it did, the write not done yet); then the write goes on. What the writer and the erasure
    said."""
    await held.reached()
    erasure = asyncio.ensure_future(erasing())
    await asyncio.wait({erasure}, timeout=ERASURE_WAITS)
    held.let_go()
    return await writer, await erasure


async def test_a_lesson_being_written_when_its_customer_is_erased_is_cleaned_of_their_words(
    bot: BotHarness, next_process: BotHarness, kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = await a_gap_about_the_theme(bot)  # console:C10, C11 and C12 asked THEME's questions
    gap = report.delivery.message.buttons[0].value
    await bot.bot.dispatcher.keep_owing()  # its next tick: what it posted is no longer owed
    _the_next_process_of(bot, next_process)
    (question,) = await next_process.staff_runs("/support privacy erase console:C10")

    held = HeldWrite()
    monkeypatch.setattr(teach, "publish", held.around(teach.publish))
    teaching = asyncio.create_task(
        bot.staff_runs(f"/support kb teach {gap} draft Change the dashboard theme | {ANSWER}")
    )
    told, erased = await _erased_while_held(
        teaching,
        held,
        lambda: next_process.click(next_process.staff, button(question, "Erase"), on=question),
    )

    assert THEME[0] not in (kb / "learned.yml").read_text(), "C10's words were written after their erasure"
    stored = learned.read(kb / "learned.yml")
    assert sorted(p.text for p in stored.phrasings) == sorted(THEME[1:]), "C11's and C12's stay"
    (drafted,) = told
    assert drafted.delivery.message.private_to == bot.staff
    assert drafted.text.startswith(f"Drafted `change-the-dashboard-theme` from gap `{gap}`"), drafted.text
    (said,) = erased
    assert said.text.startswith("Erased console:C10:"), said.text
    assert "learned.yml 1 question" in said.text, "the erasure waited for the lesson, then cleaned it"


async def test_an_export_being_written_when_its_subject_is_erased_is_deleted_with_them(
    bot: BotHarness, next_process: BotHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bot.says(QUENTIN, "can I talk to a human? my quokkaville export keeps failing")
    await bot.bot.dispatcher.keep_owing()
    _the_next_process_of(bot, next_process)
    (question,) = await next_process.staff_runs(f"/support privacy erase {QUENTIN.key}")

    held = HeldWrite()
    monkeypatch.setattr(privacy_commands, "_write_new", held.around(privacy_commands._write_new))
    exporting = asyncio.create_task(bot.staff_runs(f"/support privacy export {QUENTIN.key}"))
    told, erased = await _erased_while_held(
        exporting,
        held,
        lambda: next_process.click(next_process.staff, button(question, "Erase"), on=question),
    )

    assert list((tmp_path / "privacy-exports").iterdir()) == [], "a copy of their data outlived them"
    (said,) = erased
    assert said.text.startswith(f"Erased {QUENTIN.key}:"), said.text
    assert ", 1 export deleted;" in said.text, "the erasure waited for the export, then deleted it"
    # Written before the erasure, it was told as written: staff then hear it is deleted.
    (exported,) = told
    assert exported.text.startswith(f"Exported what is stored about {QUENTIN.key}"), exported.text
