"""A lesson whose process is killed after its command committed, before learned.yml was written,
is still written, once, and staff are told. A real `supportbot run` process on the Slack emulator
and a real database: staff draft an article from a knowledge gap while learned.yml's folder is
locked (as `supportbot privacy erase` beside the bot would hold it), the process is killed while it
waits for that lock, and the next process finds the write still owed with the command's claim."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.core.clock import utc_now
from bot.kb import learned
from storage import decisions_repo
from storage.db import Database
from storage.models import ProcessedEvent
from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, OTHER, STAFF, STAFF_CHANNEL
from tests.adapters.slack.test_erasure_killed import (
    _learned_folder_locked,
    _replayed,
    _staffed_bot,
    _waiting_for_the_lock,
)
from tests.bot_process import ROOT
from tests.emulators.slack import SlackEmulator

THEME = {
    CUSTOMER: "how do I change the colour of the dashboard theme?",
    OTHER: "can I change the dashboard theme colour to dark?",
}
ANSWER = "Open Settings, then Appearance, and pick a theme."


async def _asked_an_hour_ago(url: str, questions: dict[str, str]) -> None:
    """Each person's question, escalated an hour ago: a gap in the report of the last days (the
    report's window ends at its minute, which a question asked just now may fall after)."""
    database = Database.from_url(url)
    try:
        async with database.transaction() as session:
            for person, question in questions.items():
                await decisions_repo.record(
                    session,
                    actor_key=f"slack:{person}",
                    platform="slack",
                    conversation_key=f"slack:T0EMULATOR:{COMMUNITY}",
                    question=question,
                    band="escalate",
                    candidates=[],
                    at=utc_now() - timedelta(hours=1),
                    outcome="escalated",
                )
    finally:
        await database.dispose()


async def _nothing_owed(url: str, *, timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Until no claim owes anything: no reply to post, no work to do again."""
    database = Database.from_url(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            async with database.session() as session:
                owing = select(ProcessedEvent.id).where(ProcessedEvent.owed_until.is_not(None))  # type: ignore[union-attr]
                if not (await session.execute(owing)).first():
                    return
            assert time.monotonic() < deadline, "a claim still owes its work or its replies"
            await asyncio.sleep(0.1)
    finally:
        await database.dispose()


async def test_a_lesson_killed_before_learned_yml_was_written_is_written_after_the_restart(
    slack: SlackEmulator, database_url: str, tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(ROOT / "tests" / "data" / "kb", kb)
    process = _staffed_bot(slack, database_url, kb=kb, cwd=tmp_path)
    await process.start()
    try:
        slack.bot_url = process.slack_url
        await _asked_an_hour_ago(database_url, THEME)
        mark = slack.mark()
        await slack.slash_command(STAFF, STAFF_CHANNEL, "/support report")
        report = await slack.wait_for(
            "response_url", lambda c: any(b["text"]["text"] == "Teach gap 1" for b in c.buttons), since=mark
        )
        gap = next(b["value"] for b in report.buttons if b["text"]["text"] == "Teach gap 1")

        with _learned_folder_locked(kb):
            since = len(process.log)
            await slack.slash_command(
                STAFF, STAFF_CHANNEL, f"/support kb teach {gap} draft Dark dashboard theme | {ANSWER}"
            )
            await _waiting_for_the_lock(process, since=since)  # committed: the write follows the commit
            await process.kill()
        assert not (kb / "learned.yml").exists()

        mark = slack.mark()
        await process.start()
        slack.bot_url = process.slack_url
        await slack.wait_for(
            "response_url", lambda c: "Drafted `dark-dashboard-theme`" in c.shown, since=mark, timeout=30
        )
        # The inbox's replay of the command is a duplicate; nothing is left owed to draft it again.
        await _replayed(database_url)
        await _nothing_owed(database_url)
    finally:
        await process.stop()
    stored = learned.read(kb / "learned.yml")
    (draft,) = stored.pending
    assert (draft.id, draft.answer, draft.taught_by) == ("dark-dashboard-theme", ANSWER, f"slack:{STAFF}")
    assert sorted(p.text for p in stored.phrasings) == sorted(THEME.values())
    drafted = [c for c in slack.calls[mark:] if c.method == "response_url" and "Drafted" in c.shown]
    assert len(drafted) == 1, [c.shown for c in drafted]
