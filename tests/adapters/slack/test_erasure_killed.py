"""A privacy erasure whose process is killed mid-way still takes the person's words out of
learned.yml. A real `supportbot run` process on the Slack emulator and a real database: staff click
"Erase" while learned.yml's folder is locked (as `supportbot privacy erase` beside the bot would
hold it), the process is killed while it waits for that lock, and the next process replays the
click from the inbox."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select

from bot.kb import learned, teach
from storage.db import Database
from storage.models import AuditEntry, InboxEntry
from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, STAFF, STAFF_CHANNEL
from tests.bot_process import ROOT, BotProcess, slack_env
from tests.emulators.slack import SlackEmulator

CASEYS = "how do I change the colour of the dashboard theme?"


@contextmanager
def _learned_folder_locked(kb: Path) -> Iterator[None]:
    """learned.yml's folder lock (`bot.kb.learned.locked`), held by this test's process."""
    folder = os.open(kb, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)


async def _waiting_for_the_lock(process: BotProcess, *, since: int) -> None:
    """Until `process` says (after its log line `since`) that it waits for learned.yml's lock."""
    await process.wait_for_log("waiting for learned.yml", since=since, timeout=20)


def _staffed_bot(slack: SlackEmulator, database_url: str, *, kb: Path, cwd: Path) -> BotProcess:
    """A `supportbot run` on the Slack emulator with Sam as staff, on the KB folder `kb`; what a
    killed process leaves is due to the next one 2 s on."""
    env = slack_env(
        database_url,
        slack,
        kb_path=str(kb),
        staff_channel=f"slack:{STAFF_CHANNEL}",
        staff_user_ids=f"slack:{STAFF}",
        inbox_lease_seconds="2",
    )
    return BotProcess("killed", env, cwd=cwd)


async def _replayed(url: str, *, timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Until the inbox holds no request: the killed process's click was replayed and finished."""
    database = Database.from_url(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            async with database.session() as session:
                if not (await session.execute(select(InboxEntry.id))).first():
                    return
            assert time.monotonic() < deadline, "the click was never replayed to its end"
            await asyncio.sleep(0.1)
    finally:
        await database.dispose()


async def _audited_erasures(url: str) -> list[str]:
    database = Database.from_url(url)
    try:
        async with database.session() as session:
            rows = await session.execute(
                select(AuditEntry.detail).where(AuditEntry.action == "privacy.erase")
            )
            return [str(detail) for (detail,) in rows]
    finally:
        await database.dispose()


async def test_an_erasure_killed_before_learned_yml_was_cleaned_cleans_it_after_the_restart(
    slack: SlackEmulator, database_url: str, tmp_path: Path
) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(ROOT / "tests" / "data" / "kb", kb)
    teach.decline(kb, [CASEYS], taught_by=f"slack:{STAFF}")  # staff declined Casey's very words
    process = _staffed_bot(slack, database_url, kb=kb, cwd=tmp_path)
    await process.start()
    try:
        slack.bot_url = process.slack_url
        mark = slack.mark()
        question = slack.message_event(CUSTOMER, COMMUNITY, f"<@{slack.bot_user_id}> {CASEYS}", mention=True)
        assert (await slack.send_event(slack.event_callback(question))).status == 200
        await slack.wait_for("chat.postMessage", since=mark, timeout=20)
        mark = slack.mark()
        await slack.slash_command(STAFF, STAFF_CHANNEL, f"/support privacy erase slack:{CUSTOMER}")
        asked = await slack.wait_for("response_url", lambda c: bool(c.buttons), since=mark, timeout=20)
        confirm = {"ts": slack.next_ts(), "blocks": asked.params["blocks"]}

        with _learned_folder_locked(kb):
            since = len(process.log)
            await slack.click(STAFF, STAFF_CHANNEL, confirm, asked.button("Erase"))
            await _waiting_for_the_lock(process, since=since)
            await process.kill()

        mark, since = slack.mark(), len(process.log)
        await process.start()
        slack.bot_url = process.slack_url
        await process.wait_for_log("replaying a slack action", since=since, timeout=30)
        await _replayed(database_url)
        done = [c.shown for c in slack.calls[mark:] if c.method == "response_url" and "Erased" in c.shown]
    finally:
        await process.stop()
    assert CASEYS not in (kb / "learned.yml").read_text(), "Casey's words outlived her erasure"
    assert learned.read(kb / "learned.yml").declined == ()
    assert len(done) == 1 and "learned.yml 1 question" in done[0], done
    (audited,) = await _audited_erasures(database_url)
    assert audited.endswith("1 learned questions"), audited
