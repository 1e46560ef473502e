"""Editing the KB files changes the bot's answers without a restart; a broken edit changes nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

import bot.kb.knowledge_base as kb_base
from bot.kb.knowledge_base import KnowledgeBaseHolder, request_reload
from bot.kb.loader import KBError
from bot.kb.model import Band

FIXTURE_KB = Path(__file__).resolve().parents[1] / "data" / "kb"
PRICING = """
- id: pricing
  title: Prices
  questions:
    - How much does the product cost?
    - What are your prices?
    - Is there a free plan?
  answer: Plans start at **$20 a month**; the Starter plan is free.
"""
ENTRY = "- id: {id}\n  questions:\n    - How do I {id}?\n    - Where is {id}?\n  answer: Like this.\n"
DEEP = "- id: deep\n  questions: " + "[" * 3000 + "]" * 3000 + "\n  answer: hi\n"  # breaks the YAML parser


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, folder)
    return folder


def _touch_later(path: Path) -> None:
    """Make sure the modification time moves even on file systems with coarse timestamps."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_an_added_entry_is_answered_after_reload(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    assert holder.ask("what are your prices?").band is Band.ESCALATE
    assert holder.reload_if_changed() is None  # nothing changed: no work

    (kb_dir / "pricing.yml").write_text(PRICING)
    summary = holder.reload_if_changed()

    assert summary is not None
    assert summary.added == ("pricing",) and not summary.removed and not summary.changed
    assert "added: `pricing`" in summary.text()
    # The summary says where the reloaded KB answers and what that is expected to give.
    assert "\nanswer >= " in summary.text() and "(default)" in summary.text()
    decision = holder.ask("what are your prices?")
    assert decision.band is Band.ANSWER
    assert decision.best is not None and decision.best.entry.id == "pricing"
    assert holder.get("pricing") is not None


def test_a_broken_edit_keeps_the_previous_kb_and_says_where(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    before = holder.current
    broken = kb_dir / "support.yml"
    broken.write_text(broken.read_text() + "- id: half-written\n  questions: [one]\n")
    _touch_later(broken)

    with pytest.raises(KBError) as caught:
        holder.reload_if_changed()

    assert any(p.startswith(f"{broken}:") for p in caught.value.problems)
    assert holder.current is before
    assert holder.ask("How do I reset my API key?").band is Band.ANSWER
    # The same broken files are not loaded again and again.
    assert holder.reload_if_changed() is None


def test_kb_reload_command_marks_the_folder_for_a_running_bot(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    assert request_reload(kb_dir) == len(holder.entries)
    summary = holder.reload_if_changed()
    assert summary is not None and "no entry changed" in summary.text()


async def test_a_changed_answer_is_reported_as_changed(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    path = kb_dir / "support.yml"
    path.write_text(path.read_text().replace("The old key stops working at once.", "The old key works 24 h."))
    _touch_later(path)
    summary = await holder.reload_async()  # what the staff command calls
    assert summary.changed == ("reset-api-key",)
    assert "24 h" in (holder.get("reset-api-key") or pytest.fail("entry gone")).answer


async def test_the_watcher_reloads_a_running_bot(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    reloaded = asyncio.Event()
    watcher = asyncio.create_task(holder.watch(interval=0.01, on_reload=lambda _: reloaded.set()))
    try:
        (kb_dir / "pricing.yml").write_text(PRICING)
        await asyncio.wait_for(reloaded.wait(), timeout=10)
    finally:
        watcher.cancel()
    assert holder.ask("Is there a free plan?").band is Band.ANSWER


async def test_the_watcher_keeps_reloading_after_an_edit_that_breaks_the_parser(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    reloaded = asyncio.Event()
    watcher = asyncio.create_task(holder.watch(interval=0.01, on_reload=lambda _: reloaded.set()))
    try:
        (kb_dir / "broken.yml").write_text(DEEP)
        await asyncio.sleep(0.5)
        (kb_dir / "broken.yml").write_text(ENTRY.format(id="fixed"))
        await asyncio.wait_for(reloaded.wait(), timeout=5)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert holder.get("fixed") is not None


def test_a_fix_saved_while_a_broken_reload_runs_is_picked_up(
    kb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    (kb_dir / "new.yml").write_text("- id: new\n  questions: []\n  answer: hi\n")  # broken: no question
    real_load = kb_base.load_entries

    def load_then_user_saves_the_fix(path: Path):  # type: ignore[no-untyped-def]
        try:
            return real_load(path)
        finally:
            # The author saves the corrected file while the failed load is being reported.
            (kb_dir / "new.yml").write_text(ENTRY.format(id="new") + "  title: fixed now\n")

    monkeypatch.setattr(kb_base, "load_entries", load_then_user_saves_the_fix)
    with pytest.raises(KBError):
        holder.reload_if_changed()
    monkeypatch.setattr(kb_base, "load_entries", real_load)
    holder.reload_if_changed()
    assert holder.get("new") is not None, "the valid file on disk is never loaded"
