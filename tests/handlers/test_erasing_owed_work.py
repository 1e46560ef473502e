"""Erasing a person while work about them is still owed after its event's commit (kept with the
claim, bot/core/owed.py): a lesson holding their words, written again by the next process's sweep
after the erasure cleaned learned.yml, writes what is left of it without their words, or nothing
when every question was theirs (its teacher hears why); an export of them, written by a process
killed before it told staff where, is deleted with them; a reply quoting them to staff, not
posted yet, is posted without their words. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

from bot.core.events import Platform
from bot.kb import learned
from storage.db import Database
from tests.core.test_owed_replies import PlatformThatNeverAnswers
from tests.handlers.test_privacy_commands import QUENTIN
from tests.handlers.test_teach_from_gap import THEME, a_gap_about_the_theme, customer
from tests.handlers.test_writes_after_the_commit_kept import (
    _dies_after_writing,
    _restarted,
    _swept_after_the_lease,
    next_process,
)
from tests.harness import BotHarness, button

__all__ = ["next_process"]  # the fixture, shared with the kept work's own tests

ANSWER = "Open **Settings → Appearance** and pick one."


def _the_next_process_of(dead: BotHarness, next_process: BotHarness) -> None:
    """`next_process` goes on at the dead one's time, and the platform's event ids go on too."""
    next_process.clock.now = dead.clock.now
    next_process._ids = dead._ids


async def _erased_in_chat(staff: BotHarness, person: str) -> str:
    """Staff ask to erase `person` and click Erase: what the bot says it erased."""
    (question,) = await staff.staff_runs(f"/support privacy erase {person}")
    (erased,) = await staff.click(staff.staff, button(question, "Erase"), on=question)
    assert erased.text.startswith(f"Erased {person}:"), erased.text
    return erased.text


async def test_a_lesson_written_again_after_an_erasure_leaves_out_the_erased_persons_words(
    bot: BotHarness, next_process: BotHarness, database: Database, kb: Path
) -> None:
    report = await a_gap_about_the_theme(bot)  # console:C10, C11 and C12 asked THEME's questions
    gap = report.delivery.message.buttons[0].value
    await bot.bot.dispatcher.keep_owing()  # its next tick: what it posted is no longer owed
    await _dies_after_writing(database)
    assert await bot.staff_runs(f"/support kb teach {gap} draft Change the dashboard theme | {ANSWER}") == []
    await _restarted(database)

    _the_next_process_of(bot, next_process)
    erased = await _erased_in_chat(next_process, "console:C10")
    assert "learned.yml 1 question" in erased and "1 pending lesson cleaned" in erased, erased
    assert await _swept_after_the_lease(bot, next_process) == 1

    stored = learned.read(kb / "learned.yml")
    assert sorted(p.text for p in stored.phrasings) == sorted(THEME[1:]), "C10's words came back"
    assert THEME[0] not in (kb / "learned.yml").read_text()
    drafted = next_process.adapter.sent[-1]
    assert drafted.text.startswith(f"Drafted `change-the-dashboard-theme` from gap `{gap}`"), drafted.text
    assert "1 question left out: erased at the person's request" in drafted.text


async def test_a_declined_topic_whose_every_question_was_erased_is_not_written_and_its_teacher_hears_why(
    bot: BotHarness, next_process: BotHarness, database: Database, kb: Path
) -> None:
    report = await a_gap_about_the_theme(bot)
    gap = report.delivery.message.buttons[0].value
    (offer,) = await bot.staff_runs(f"/support kb teach {gap} decline")
    await bot.bot.dispatcher.keep_owing()
    await _dies_after_writing(database)
    assert await bot.click(bot.staff, button(offer, "Not ours"), on=offer) == []
    await _restarted(database)

    _the_next_process_of(bot, next_process)
    for number in range(3):
        erased = await _erased_in_chat(next_process, customer(number).key)
        assert "1 pending lesson cleaned" in erased, erased
    assert await _swept_after_the_lease(bot, next_process) == 1

    assert learned.read(kb / "learned.yml").declined == (), "a topic of the erased customers' words"
    assert not any(question in (kb / "learned.yml").read_text() for question in THEME)
    told = next_process.adapter.sent[-1]
    assert told.delivery.message.private_to == bot.staff
    assert told.text == (
        f"The declined topic from gap `{gap}` was not written: every question in it was erased at "
        "the person's request."
    )


async def test_an_export_written_before_its_process_died_untold_is_deleted_with_the_person(
    bot: BotHarness, next_process: BotHarness, database: Database, tmp_path: Path
) -> None:
    await bot.says(QUENTIN, "can I talk to a human? my quokkaville export keeps failing")
    await bot.bot.dispatcher.keep_owing()
    await _dies_after_writing(database)
    assert await bot.staff_runs("/support privacy export console:U7QZERA") == []
    (written,) = (tmp_path / "privacy-exports").iterdir()
    await _restarted(database)

    _the_next_process_of(bot, next_process)
    erased = await _erased_in_chat(next_process, QUENTIN.key)
    assert ", 1 export deleted;" in erased, erased
    assert await _swept_after_the_lease(bot, next_process) == 0, "the message saying where is dropped"

    assert not written.exists(), "a copy of their data nobody was told of outlived their erasure"


async def _killed_while_posting(harness: BotHarness, handling: Awaitable[object]) -> None:
    """`handling` commits; the process dies while its first reply is in flight."""
    platform, posting = PlatformThatNeverAnswers(), harness.bot.dispatcher.outbound.adapters
    posting[Platform.CONSOLE], alive = platform, posting[Platform.CONSOLE]
    task = asyncio.ensure_future(handling)
    await asyncio.wait_for(platform.asked.wait(), 10)
    task.cancel()  # a SIGKILL: nothing after this point runs
    await asyncio.gather(task, return_exceptions=True)
    posting[Platform.CONSOLE] = alive


async def test_a_lesson_offer_quoting_an_erased_person_is_posted_without_their_words(
    bot: BotHarness, next_process: BotHarness
) -> None:
    report = await a_gap_about_the_theme(bot)
    await bot.bot.dispatcher.keep_owing()  # its next tick: what it posted is no longer owed
    await _killed_while_posting(bot, bot.click(bot.staff, button(report, "Teach gap 1"), on=report))

    _the_next_process_of(bot, next_process)
    await _erased_in_chat(next_process, "console:C10")
    assert await _swept_after_the_lease(bot, next_process) == 1

    offer = next_process.adapter.sent[-1]
    assert offer.delivery.message.title.startswith("Teach the bot from gap"), offer.delivery.message.title
    assert THEME[0] not in offer.text, "C10's words were posted after their erasure"
    assert "\u201cremoved at the person's request\u201d" in offer.text
    assert f"\u201c{THEME[1]}\u201d" in offer.text, "C11 was not erased"
