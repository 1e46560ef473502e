"""`/support kb reload`: staff load an edited knowledge base without a restart; a broken edit keeps
the previous one."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core.events import Conversation, Platform
from bot.kb import learned, teach
from bot.kb.knowledge_base import KnowledgeBaseHolder
from storage.db import Database
from storage.models import ProcessedEvent
from tests.fake_adapter import SentMessage
from tests.harness import STAFF_CHANNEL, BotHarness, button, make_settings
from tests.tickets.conversation import escalated


async def test_staff_reload_the_knowledge_base_without_a_restart(bot: BotHarness, kb: Path) -> None:
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


async def test_a_broken_edit_keeps_the_previous_knowledge_base(bot: BotHarness, kb: Path) -> None:
    (kb / "broken.yml").write_text("- id: half-written\n  questions: [only one]\n")
    (reply,) = await bot.staff_runs("/support kb reload")
    assert "kept the previous one" in reply.text and "broken.yml:1" in reply.text
    (answer,) = await bot.customer_says("my csv export failed")
    assert answer.delivery.message.title == "An export failed"


async def _claims(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(select(func.count()).select_from(ProcessedEvent))).scalar_one())


async def _claimed_since(database: Database, claims: int) -> None:
    """Until an event more than `claims` has been claimed (its transaction committed)."""
    while True:
        if await _claims(database) > claims:
            return
        await asyncio.sleep(0.05)


def _loading_until(holder: KnowledgeBaseHolder, loaded: threading.Event) -> None:
    """The watcher loading the files (it holds the holder's lock) until `loaded`, 10 s at most."""
    with holder._lock:
        loaded.wait(10)


async def test_a_reload_is_done_after_its_command_committed_not_with_its_transaction_open(
    bot: BotHarness, database: Database
) -> None:
    """A slow load (here: waiting for the watcher's) holds no transaction, nor what it locks."""
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    claims = await _claims(database)
    loaded = threading.Event()
    watcher = threading.Thread(target=_loading_until, args=(holder, loaded))
    watcher.start()
    try:
        reloading = asyncio.create_task(bot.staff_runs("/support kb reload"))
        try:
            await asyncio.wait_for(_claimed_since(database, claims), 5)
        except TimeoutError:
            raise AssertionError("the command's transaction waited for the load") from None
        assert not reloading.done(), "the reply follows the load"
    finally:
        loaded.set()
        watcher.join()
    (summary,) = await reloading
    assert summary.text.startswith("Knowledge base reloaded: 6 entries"), summary.text


async def test_customers_cannot_reload_and_staff_are_told_the_one_subcommand(bot: BotHarness) -> None:
    (refusal,) = await bot.customer_runs("/support kb reload")
    assert refusal.text.startswith("That's for the support team only.")
    (usage,) = await bot.staff_runs("/support kb")
    assert "What should I do with the knowledge base?" in usage.text and "/support kb reload" in usage.text


async def test_staff_approve_a_drafted_article_and_it_answers(bot: BotHarness, kb: Path) -> None:
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    change = teach.draft_change(
        holder.entries,
        title="Change the dashboard theme",
        questions=["How do I change the colour of the dashboard theme?", "Switch to dark mode"],
        answer="Open **Settings → Appearance** and pick a theme.",
    )
    teach.publish(kb, change, taught_by="U1", from_ticket=3)
    (reload,) = await bot.staff_runs("/support kb reload")
    assert "`change-the-dashboard-theme`" not in reload.text  # a draft is not active
    (approved,) = await bot.staff_runs("/support kb approve change-the-dashboard-theme")
    assert approved.text.startswith("Approved `change-the-dashboard-theme`")
    assert "added: `change-the-dashboard-theme`" in approved.text
    (answer,) = await bot.customer_says("how do I change the colour of the dashboard theme?")
    assert answer.delivery.message.title == "Change the dashboard theme"
    (again,) = await bot.staff_runs("/support kb approve change-the-dashboard-theme")
    assert "already approved" in again.text


async def test_staff_forget_a_learned_phrasing(bot: BotHarness, kb: Path) -> None:
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    entry = holder.entries[0]
    change = teach.attach_change(holder.entries, entry_id=entry.id, questions=["zebra <@U999> quux"])
    teach.publish(kb, change, taught_by="U1")
    await bot.staff_runs("/support kb reload")
    assert "zebra <@U999> quux" in holder.get(entry.id).questions  # type: ignore[union-attr]
    (forgot,) = await bot.staff_runs("/support kb forget p1")
    assert forgot.text.startswith("Forgot `p1`") and "<@U999>" not in forgot.text
    assert "zebra <@U999> quux" not in holder.get(entry.id).questions  # type: ignore[union-attr]
    (unknown,) = await bot.staff_runs("/support kb forget p1")
    assert "no learned phrasing" in unknown.text
    (refusal,) = await bot.customer_runs("/support kb forget p1")
    assert refusal.text.startswith("That's for the support team only.")


async def _closed_ticket(bot: BotHarness, question: str) -> SentMessage:
    """A ticket answered by staff and confirmed solved: the staff close card."""
    _reply, card = await escalated(bot, question)
    staff_channel = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id=STAFF_CHANNEL)
    await bot.says(
        bot.staff,
        "Open Settings, then Appearance, and pick a theme.",
        conversation=staff_channel,
        thread=card.ref.message_id,
    )
    sent = await bot.staff_runs("/ticket close 1 answered")
    confirm = next(m for m in sent if m.channel_id == "community")
    sent = await bot.click(bot.customer, button(confirm, "Yes"), on=confirm)
    return next(m for m in sent if m.channel_id == STAFF_CHANNEL and "confirmed ticket #1" in m.text)


async def test_teach_from_the_close_card_drafts_an_article_with_its_replay(bot: BotHarness, kb: Path) -> None:
    question = "talk to a human: how do I change the colour of the dashboard theme?"
    close_card = await _closed_ticket(bot, question)
    (refusal,) = await bot.click(bot.customer, button(close_card, "Teach"), on=close_card)
    assert refusal.text.startswith("That's for the support team only.")

    (offer,) = await bot.click(bot.staff, button(close_card, "Teach"), on=close_card)
    assert offer.delivery.message.title == "Teach the bot from ticket #1"
    assert "This would have answered" in offer.text and "away from other articles" in offer.text
    assert [b.label for b in offer.delivery.message.buttons][-1] == "Draft new article"

    (drafted,) = await bot.click(bot.staff, button(offer, "Draft new article"), on=offer)
    assert drafted.text.startswith("Drafted `talk-to-a-human-how-do-i-change-the-colour-of-the-dashbo` from")
    stored = learned.read(kb / "learned.yml")
    (article,) = stored.pending
    assert (article.from_ticket, article.taught_by) == (1, bot.staff.key)
    assert article.answer == "Open Settings, then Appearance, and pick a theme."
    assert stored.phrasings[0].text == question


async def test_teach_from_the_close_card_attaches_to_the_nearest_article(bot: BotHarness, kb: Path) -> None:
    close_card = await _closed_ticket(bot, "talk to a human please, my csv export broke again")
    (offer,) = await bot.click(bot.staff, button(close_card, "Teach"), on=close_card)
    attach = next(b for b in offer.delivery.message.buttons if b.label.startswith("Attach to "))
    entry_id = attach.label.removeprefix("Attach to ")
    (taught,) = await bot.click(bot.staff, attach, on=offer)
    assert taught.text.startswith(f"Taught `{entry_id}` the question of ticket #1 (phrasing `p1`)")
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    assert "talk to a human please, my csv export broke again" in holder.get(entry_id).questions  # type: ignore[union-attr]
    (again,) = await bot.click(bot.staff, attach, on=offer)
    assert "already has every one of these questions" in again.text


BAD_LEARNED = (
    "phrasings:\n"
    "  - {id: p1, entry: export-failed, taught_by: S1,\n"
    '     text: "why does the frobnicator export stall at ninety percent?"}\n'
    "  - {id: p2, entry: export-failed, taught_by: S1}\n"
    "  - {id: p1, entry: invoice-download, text: where is my zebra receipt, taught_by: S1}\n"
    "  - {id: p4, entry: an-article-the-team-deleted, text: quux, taught_by: S1}\n"
    "articles:\n"
    "  - {id: prices, title: Prices, answer: $20 a month, status: approved, taught_by: S1}\n"
)


async def test_a_hand_broken_learned_file_skips_its_bad_items_and_says_where(
    database: Database, tmp_path: Path, kb: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone edited learned.yml badly while the bot was stopped: the bot still starts, answers from
    the team's files and the good learned items, says `file:line` for each bad one, and refuses to
    rewrite the file (which would lose what it could not read) until it is fixed."""
    (kb / "learned.yml").write_text(BAD_LEARNED)
    before = (kb / "learned.yml").read_bytes()
    caplog.set_level(logging.WARNING)
    bot = await BotHarness.create(make_settings(tmp_path, kb_path=str(kb)), database=database)
    try:
        where = kb / "learned.yml"
        assert f"{where}:4: an item has no 'text'" in caplog.text
        (taught,) = await bot.customer_says("why does the frobnicator export stall at ninety percent?")
        assert taught.delivery.message.title == "An export failed"
        (team,) = await bot.says(bot.other_customer, "where can I download my invoices?")
        assert team.delivery.message.title == "Download an invoice"

        (check,) = await bot.staff_runs("/support kb check")
        assert f"{where}:4: an item has no 'text'" in check.text
        assert f"{where}:5: phrasing id 'p1' is already used at line 2" in check.text
        assert f"{where}:6: phrasing `p4` is for `an-article-the-team-deleted`" in check.text
        assert f"{where}:8: article `prices` has no phrasing" in check.text

        (refused,) = await bot.staff_runs("/support kb forget p4")
        assert f"{where}:4: an item has no 'text'" in refused.text
        assert where.read_bytes() == before, "the bot never rewrites a file it could not read in full"
    finally:
        await bot.close()


async def test_clicking_draft_new_article_twice_keeps_one_draft(bot: BotHarness, kb: Path) -> None:
    """A second click (or a second staff member on the same card) must not write the draft twice:
    two articles with one id would leave learned.yml unreadable, and nothing could be taught."""
    close_card = await _closed_ticket(bot, "talk to a human: how do I change the colour of the theme?")
    (offer,) = await bot.click(bot.staff, button(close_card, "Teach"), on=close_card)
    (drafted,) = await bot.click(bot.staff, button(offer, "Draft new article"), on=offer)
    article = drafted.text.split("`")[1]
    (again,) = await bot.click(bot.staff, button(offer, "Draft new article"), on=offer)
    assert again.text == f"`{article}` is already drafted; `/support kb approve {article}` publishes it."
    assert [a.id for a in learned.read(kb / "learned.yml").articles] == [article]
    (approved,) = await bot.staff_runs(f"/support kb approve {article}")
    assert approved.text.startswith(f"Approved `{article}`")


async def test_two_drafts_with_one_title_get_two_ids(bot: BotHarness, kb: Path) -> None:
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    for answer in ("Open Settings, then Appearance.", "Ask your admin to unlock the theme."):
        change = teach.draft_change(
            holder.entries, title="Change the theme", questions=["how do I change the theme?"], answer=answer
        )
        teach.publish(kb, change, taught_by="U1")
    assert [a.id for a in learned.read(kb / "learned.yml").articles] == [
        "change-the-theme",
        "change-the-theme-2",
    ]


async def test_clicking_draft_new_article_again_after_approving_it_drafts_nothing(
    bot: BotHarness, kb: Path
) -> None:
    """Approved, the article is in the knowledge base, so a later click on the same card is given
    the next free id: it must still be known as the same article, not drafted a second time."""
    close_card = await _closed_ticket(bot, "talk to a human: how do I change the colour of the theme?")
    (offer,) = await bot.click(bot.staff, button(close_card, "Teach"), on=close_card)
    (drafted,) = await bot.click(bot.staff, button(offer, "Draft new article"), on=offer)
    article = drafted.text.split("`")[1]
    (approved,) = await bot.staff_runs(f"/support kb approve {article}")
    assert approved.text.startswith(f"Approved `{article}`")
    (again,) = await bot.click(bot.staff, button(offer, "Draft new article"), on=offer)
    assert again.text == f"`{article}` is already an article."
    assert [a.id for a in learned.read(kb / "learned.yml").articles] == [article]
