"""A file written after its event's commit (learned.yml, a privacy export) is kept with the event's
claim until written: a process that died after writing, before recording it done, leaves it to the
next process, which does it again without writing twice (no phrasing added twice, no id issued
again, no second export) and tells staff once. SQLite and PostgreSQL. (A process killed before
writing is tests/adapters/slack/test_lesson_killed.py: a real process, SIGKILLed.)"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select, text

from bot.core import privacy
from bot.handlers import privacy as privacy_commands
from bot.kb import learned, teach
from bot.kb.knowledge_base import KnowledgeBaseHolder
from storage.db import Database
from storage.models import ProcessedEvent
from tests.handlers.test_privacy_commands import QUENTIN
from tests.handlers.test_teach_from_gap import a_gap_about_the_theme
from tests.harness import BotHarness, make_settings

_T = TypeVar("_T")

ANSWER = "Open **Settings → Appearance** and pick one."

_REFUSE_WORK_DONE = {
    "sqlite": [
        "CREATE TRIGGER refuse_work_done BEFORE UPDATE OF work ON processed_events"
        " WHEN NEW.work IS NOT OLD.work BEGIN SELECT RAISE(ABORT, 'the connection dropped'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_work_done() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'the connection dropped'; END $$",
        "CREATE TRIGGER refuse_work_done BEFORE UPDATE OF work ON processed_events"
        " FOR EACH ROW WHEN (NEW.work IS DISTINCT FROM OLD.work) EXECUTE FUNCTION refuse_work_done()",
    ],
}
_ACCEPT_WORK_DONE = {
    "sqlite": ["DROP TRIGGER IF EXISTS refuse_work_done"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS refuse_work_done ON processed_events",
        "DROP FUNCTION IF EXISTS refuse_work_done()",
    ],
}


async def _run(database: Database, statements: dict[str, list[str]]) -> None:
    async with database.engine.begin() as connection:
        for statement in statements[database.dialect]:
            await connection.execute(text(statement))


async def _dies_after_writing(database: Database) -> None:
    """From now on the process cannot record its work done (nor the rest of it, once its file is
    written), as if it died right after the write: what the claim keeps is what a kill between the
    write and that record leaves."""
    await _run(database, _REFUSE_WORK_DONE)


async def _restarted(database: Database) -> None:
    await _run(database, _ACCEPT_WORK_DONE)


async def _work_owed(database: Database) -> int:
    """How many claims still owe their work."""
    async with database.session() as session:
        owing = select(ProcessedEvent.id).where(ProcessedEvent.work.is_not(None))  # type: ignore[union-attr]
        return len((await session.execute(owing)).all())


@pytest.fixture
async def next_process(database: Database, tmp_path: Path, kb: Path) -> AsyncIterator[BotHarness]:
    """The bot started again on the same knowledge base, on its own connections to the database."""
    other = database.another_connection_pool()
    harness = await BotHarness.create(make_settings(tmp_path, kb_path=str(kb)), database=other)
    yield harness
    await harness.close()
    await other.dispose()
    await _restarted(database)  # also when the test failed before it restarted


async def _swept_after_the_lease(dead: BotHarness, next_process: BotHarness) -> int:
    next_process.clock.now = dead.clock.now
    assert await next_process.bot.dispatcher.pay_owed() == 0, "the dead process's lease still runs"
    next_process.clock.advance(seconds=31)
    return await next_process.bot.dispatcher.pay_owed()


async def test_a_draft_written_before_its_process_died_is_written_once_and_told_once(
    bot: BotHarness, next_process: BotHarness, database: Database, kb: Path
) -> None:
    report = await a_gap_about_the_theme(bot)
    gap = report.delivery.message.buttons[0].value
    await bot.bot.dispatcher.keep_owing()  # its next tick: what it posted is no longer owed
    await _dies_after_writing(database)

    told = await bot.staff_runs(f"/support kb teach {gap} draft Change the dashboard theme | {ANSWER}")
    assert told == [], "the dead process said nothing"
    written = (kb / "learned.yml").read_text()
    assert [a.id for a in learned.read(kb / "learned.yml").pending] == ["change-the-dashboard-theme"]
    assert await _work_owed(database) == 1, "the write is still owed with the command's claim"

    await _restarted(database)
    assert await _swept_after_the_lease(bot, next_process) == 1
    (drafted,) = next_process.adapter.sent
    assert drafted.text.startswith(
        f"Drafted `change-the-dashboard-theme` from gap `{gap}`; "
        "`/support kb approve change-the-dashboard-theme` publishes it."
    )
    assert (kb / "learned.yml").read_text() == written, "no second draft, no phrasing twice"
    assert await _work_owed(database) == 0
    await next_process.bot.dispatcher.keep_owing()  # its next tick
    next_process.clock.advance(minutes=5)
    assert await next_process.bot.dispatcher.pay_owed() == 0
    assert len(next_process.adapter.sent) == 1


async def test_an_approval_done_before_its_process_died_is_told_as_done(
    bot: BotHarness, next_process: BotHarness, database: Database, kb: Path
) -> None:
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    change = teach.draft_change(
        holder.entries, title="Change the dashboard theme", questions=["Switch to dark mode"], answer=ANSWER
    )
    teach.publish(kb, change, taught_by="console:S1")
    await _dies_after_writing(database)

    assert await bot.staff_runs("/support kb approve change-the-dashboard-theme") == []
    assert learned.read(kb / "learned.yml").pending == ()

    await _restarted(database)
    assert await _swept_after_the_lease(bot, next_process) == 1
    (approved,) = next_process.adapter.sent
    assert approved.text.startswith("Approved `change-the-dashboard-theme`"), approved.text
    assert "added: `change-the-dashboard-theme`" in approved.text, "the next process loaded it"


async def test_a_forgotten_phrasing_gone_before_its_process_died_is_told_as_forgotten(
    bot: BotHarness, next_process: BotHarness, database: Database, kb: Path
) -> None:
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    entry = holder.entries[0]
    teach.publish(
        kb, teach.attach_change(holder.entries, entry_id=entry.id, questions=["zebra quux"]), taught_by="U1"
    )
    await _dies_after_writing(database)

    assert await bot.staff_runs("/support kb forget p1") == []
    assert learned.read(kb / "learned.yml").phrasings == ()

    await _restarted(database)
    assert await _swept_after_the_lease(bot, next_process) == 1
    (forgot,) = next_process.adapter.sent
    assert forgot.text.startswith("Forgot `p1`."), forgot.text


async def test_an_export_written_before_its_process_died_is_not_written_twice(
    bot: BotHarness, next_process: BotHarness, database: Database, tmp_path: Path
) -> None:
    await bot.says(QUENTIN, "can I talk to a human? my quokkaville export keeps failing")
    await bot.bot.dispatcher.keep_owing()  # its next tick: what it posted is no longer owed
    await _dies_after_writing(database)

    assert await bot.staff_runs("/support privacy export console:U7QZERA") == []
    (written,) = (tmp_path / "privacy-exports").iterdir()

    await _restarted(database)
    assert await _swept_after_the_lease(bot, next_process) == 1
    (exported,) = next_process.adapter.sent
    assert exported.text.startswith("Exported what is stored about console:U7QZERA"), exported.text
    assert f"`{written.resolve()}`" in exported.text
    assert list((tmp_path / "privacy-exports").iterdir()) == [written]
    assert "quokkaville" in json.loads(written.read_text())["tickets_opened"][0]["summary"]


async def test_erasing_a_person_drops_an_export_of_them_still_owed(
    bot: BotHarness, next_process: BotHarness, database: Database
) -> None:
    await bot.says(QUENTIN, "can I talk to a human? my quokkaville export keeps failing")
    await bot.bot.dispatcher.keep_owing()  # its next tick: what it posted is no longer owed
    await _dies_after_writing(database)
    assert await bot.staff_runs("/support privacy export console:U7QZERA") == []
    await _restarted(database)

    async with next_process.bot.database.transaction() as session:
        erasure = await privacy.erase(session, subject=QUENTIN.key, now=next_process.clock())
    assert erasure is not None and erasure.counts.get("processed_events") == 1

    assert await _work_owed(database) == 0
    assert await _swept_after_the_lease(bot, next_process) == 0
    assert next_process.adapter.sent == []


class HeldWrite:
    """A file write held just before it starts (its worker thread waits) until the test lets it go."""

    def __init__(self) -> None:
        self._reached, self._go = threading.Event(), threading.Event()

    def around(self, write: Callable[..., _T]) -> Callable[..., _T]:
        def held(*args: Any, **kwargs: Any) -> _T:
            self._reached.set()
            if not self._go.wait(10):
                raise TimeoutError("the test never let the write go")
            return write(*args, **kwargs)

        return held

    async def reached(self) -> None:
        assert await asyncio.to_thread(self._reached.wait, 10), "the write never started"

    def let_go(self) -> None:
        self._go.set()


ERASURE_WAITS = 0.5
"""How long an erasure is given to get in the way of a write held in progress: one that does not
wait for the write finishes in that time."""


async def test_an_erasure_while_the_export_is_redone_waits_for_it_and_leaves_nothing_owed_about_them(
    bot: BotHarness,
    next_process: BotHarness,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The erasure comes while the next process is writing the export again: the sweep holds the
    claim while it writes, so the erasure waits for it, then drops what it left owed (nothing owed
    naming them is left; the chat's erasure deletes the file too, tests/handlers/
    test_erasing_work_being_written.py)."""
    await bot.says(QUENTIN, "can I talk to a human? my quokkaville export keeps failing")
    await bot.bot.dispatcher.keep_owing()  # its next tick: what it posted is no longer owed
    await _dies_after_writing(database)
    assert await bot.staff_runs("/support privacy export console:U7QZERA") == []
    await _restarted(database)

    held = HeldWrite()
    monkeypatch.setattr(privacy_commands, "_write_new", held.around(privacy_commands._write_new))
    sweeping = asyncio.create_task(_swept_after_the_lease(bot, next_process))
    await held.reached()

    async def erase() -> privacy.Erasure | None:
        async with bot.bot.database.transaction() as session:
            return await privacy.erase(session, subject=QUENTIN.key, now=bot.clock())

    erasing = asyncio.ensure_future(erase())
    done, _ = await asyncio.wait({erasing}, timeout=ERASURE_WAITS)
    assert not done, "the erasure went on while the export was being written"
    held.let_go()
    assert await sweeping == 1
    erasure = await erasing

    assert erasure is not None and erasure.counts.get("processed_events") == 1
    async with database.session() as session:
        owing = (await session.execute(select(ProcessedEvent.owed, ProcessedEvent.work))).all()
    assert [row for row in owing if "U7QZERA" in f"{row.owed}{row.work}"] == []


async def test_an_export_cut_short_by_the_kill_is_finished_in_its_own_file(
    bot: BotHarness, next_process: BotHarness, database: Database, tmp_path: Path
) -> None:
    """Killed while writing the file: the next process finishes that file, and does not leave the
    torn copy of their data beside a second one nobody was told of."""
    await bot.says(QUENTIN, "can I talk to a human? my quokkaville export keeps failing")
    await bot.bot.dispatcher.keep_owing()  # its next tick: what it posted is no longer owed
    await _dies_after_writing(database)
    assert await bot.staff_runs("/support privacy export console:U7QZERA") == []
    (written,) = (tmp_path / "privacy-exports").iterdir()
    whole = written.read_text()
    written.write_text(whole[: len(whole) // 2])  # as far as the killed process got

    await _restarted(database)
    assert await _swept_after_the_lease(bot, next_process) == 1
    (exported,) = next_process.adapter.sent
    assert f"`{written.resolve()}`" in exported.text
    assert list((tmp_path / "privacy-exports").iterdir()) == [written]
    assert written.read_text() == whole
