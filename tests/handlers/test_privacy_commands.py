"""`/support privacy export` and `/support privacy erase`: staff only, answered privately; the export is
written under the data folder, the erasure waits for a click on a button that survives a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.events import Actor, ButtonStyle, Platform
from bot.kb import learned
from bot.kb.knowledge_base import KnowledgeBaseHolder
from storage.db import Database
from tests.adapters.slack.test_erasure_killed import _learned_folder_locked
from tests.harness import BotHarness, button, make_settings

QUENTIN = Actor(platform=Platform.CONSOLE, id="U7QZERA", display_name="Quentin Zephyrine")


async def _quentin_asks_for_help(bot: BotHarness) -> None:
    await bot.says(QUENTIN, "can I talk to a human? my quokkaville export keeps failing")


async def test_staff_export_a_person_to_a_file_under_the_data_folder(bot: BotHarness, tmp_path: Path) -> None:
    await _quentin_asks_for_help(bot)

    (reply,) = await bot.staff_runs("/support privacy export console:U7QZERA")

    assert reply.delivery.message.private_to == bot.staff
    assert reply.text.startswith("Exported what is stored about console:U7QZERA")
    (file,) = (tmp_path / "privacy-exports").iterdir()
    assert f"`{file.resolve()}`" in reply.text and file.name.startswith("console_U7QZERA-")
    document = json.loads(file.read_text())
    assert "quokkaville" in document["tickets_opened"][0]["summary"]


async def test_a_second_export_in_the_same_second_gets_a_file_of_its_own(
    bot: BotHarness, tmp_path: Path
) -> None:
    await _quentin_asks_for_help(bot)

    (first,) = await bot.staff_runs("/support privacy export console:U7QZERA")
    (second,) = await bot.staff_runs("/support privacy export console:U7QZERA")

    assert second.text.startswith("Exported what is stored about console:U7QZERA"), second.text
    files = sorted((tmp_path / "privacy-exports").iterdir())
    assert len(files) == 2
    assert all(f"`{file.resolve()}`" in (first.text + second.text) for file in files)


async def test_erasing_a_person_deletes_the_exports_of_them_it_named_first(
    bot: BotHarness, tmp_path: Path
) -> None:
    await _quentin_asks_for_help(bot)
    await bot.customer_says("can I talk to a human? my invoices are wrong")
    (exported,) = await bot.staff_runs("/support privacy export console:U7QZERA")
    assert "Send it to them securely, then delete it; erasing them deletes it too." in exported.text
    (quentins,) = (tmp_path / "privacy-exports").iterdir()
    await bot.staff_runs(f"/support privacy export {bot.customer.key}")
    (caseys,) = set((tmp_path / "privacy-exports").iterdir()) - {quentins}

    (question,) = await bot.staff_runs("/support privacy erase console:U7QZERA")
    assert (
        f"Their export on the bot's server is deleted with them (send it first): `{quentins.resolve()}`."
        in question.text
    ), question.text
    (done,) = await bot.click(bot.staff, button(question, "Erase"), on=question)

    assert done.text.startswith("Erased console:U7QZERA: ") and ", 1 export deleted;" in done.text, done.text
    assert list((tmp_path / "privacy-exports").iterdir()) == [caseys], "Casey was not erased"


async def test_staff_erase_a_person_after_clicking_the_button(bot: BotHarness) -> None:
    await _quentin_asks_for_help(bot)

    (question,) = await bot.staff_runs("/support privacy erase console:U7QZERA")
    assert question.delivery.message.private_to == bot.staff
    assert question.text.startswith("Erase everything about console:U7QZERA?")
    erase = button(question, "Erase console:U7QZERA")
    assert erase.style == ButtonStyle.DANGER
    (still,) = await bot.staff_runs("/support privacy export console:U7QZERA")
    assert still.text.startswith("Exported"), "nothing is erased before the click"

    (done,) = await bot.click(bot.staff, erase, on=question)
    assert done.text.startswith("Erased console:U7QZERA: ") and "they are now `erased:" in done.text
    assert done.delivery.message.private_to == bot.staff
    (gone,) = await bot.staff_runs("/support privacy export console:U7QZERA")
    assert gone.text == "Nothing is stored about `console:U7QZERA`."
    (again,) = await bot.click(bot.staff, erase, on=question)
    assert again.text == "Nothing is stored about `console:U7QZERA` (erased already?)."


async def test_the_erase_button_works_after_a_restart(
    bot: BotHarness, database: Database, tmp_path: Path
) -> None:
    await _quentin_asks_for_help(bot)
    (question,) = await bot.staff_runs("/support privacy erase console:U7QZERA")
    await bot.close()

    restarted = await BotHarness.create(make_settings(tmp_path), database=database)
    try:
        (done,) = await restarted.click(restarted.staff, button(question, "Erase"), on=question)
    finally:
        await restarted.close()
    assert done.text.startswith("Erased console:U7QZERA")


async def test_customers_can_neither_export_nor_erase(bot: BotHarness) -> None:
    await _quentin_asks_for_help(bot)
    (question,) = await bot.staff_runs("/support privacy erase console:U7QZERA")

    for line in ("/support privacy export console:U7QZERA", "/support privacy erase console:U7QZERA"):
        (refused,) = await bot.customer_runs(line)
        assert refused.text.startswith("That's for the support team only.")
    (refused,) = await bot.click(bot.customer, button(question, "Erase"), on=question)
    assert refused.text.startswith("That's for the support team only.")
    (still,) = await bot.staff_runs("/support privacy export console:U7QZERA")
    assert still.text.startswith("Exported")


async def test_bad_privacy_requests_say_what_to_type(bot: BotHarness) -> None:
    cases = {
        "/support privacy": "Export or erase?",
        "/support privacy forget console:U1": "Export or erase?",
        "/support privacy export": "Whose data? Name the person as platform:user_id.",
        "/support privacy erase U7QZERA": "`U7QZERA` is not platform:user_id (e.g. slack:U0123ABCD).",
        "/support privacy export irc:U7QZERA": "`irc` is not a platform (slack, discord, console)",
        "/support privacy export console:NOBODY9": "Nothing is stored about `console:NOBODY9`.",
        "/support privacy erase console:NOBODY9": "Nothing is stored about `console:NOBODY9`.",
    }
    for line, says in cases.items():
        (reply,) = await bot.staff_runs(line)
        assert reply.text.startswith(says), (line, reply.text)
        if "Usage" in reply.text:
            assert "Usage: `/support privacy " in reply.text


# -- what staff taught the bot from their questions ----------------------------------------------

ASHA = Actor(platform=Platform.CONSOLE, id="C11", display_name="Asha Penhallow")
BRAM = Actor(platform=Platform.CONSOLE, id="C12", display_name="Bram Tollervey")
ASHAS = "how do I change the colour of the dashboard theme?"
BRAMS = "can I change the dashboard theme colour to dark?"


async def _taught_from_their_gap(bot: BotHarness, lesson: str) -> None:
    """Asha and Bram ask about the dashboard theme; staff teach the gap (`lesson` is a button of
    its offer): their questions are in learned.yml, word for word."""
    for who, question in ((ASHA, ASHAS), (BRAM, BRAMS)):
        await bot.says(who, question)
        bot.clock.advance(minutes=5)
    (report,) = await bot.staff_runs("/support report")
    (offer,) = await bot.click(bot.staff, button(report, "Teach gap 1"), on=report)
    (taught,) = await bot.click(bot.staff, button(offer, lesson), on=offer)
    assert taught.text.startswith(("Declined gap", "Taught `")) and "2 questions" in taught.text, taught.text


async def _erase(bot: BotHarness, subject: str) -> str:
    (question,) = await bot.staff_runs(f"/support privacy erase {subject}")
    (done,) = await bot.click(bot.staff, button(question, f"Erase {subject}"), on=question)
    return done.text


def _kb_questions(bot: BotHarness) -> set[str]:
    """Every question the KB in service matches against: articles' and declined topics'."""
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    return {question.casefold() for entry in holder.current.matched_entries for question in entry.questions}


async def test_erasing_a_person_removes_their_words_from_a_declined_topic(bot: BotHarness, kb: Path) -> None:
    await _taught_from_their_gap(bot, "Not ours")
    assert sorted(learned.read(kb / "learned.yml").declined[0].questions) == sorted([ASHAS, BRAMS])

    done = await _erase(bot, "console:C11")

    assert done.startswith("Erased console:C11: ") and ", learned.yml 1 question;" in done, done
    (topic,) = learned.read(kb / "learned.yml").declined
    assert topic.questions == (BRAMS,), "Bram was not erased: his question stays"
    assert ASHAS not in (kb / "learned.yml").read_text()
    assert ASHAS.casefold() not in _kb_questions(bot) and BRAMS.casefold() in _kb_questions(bot)

    done = await _erase(bot, "console:C12")
    assert ", learned.yml 1 question;" in done
    assert learned.read(kb / "learned.yml").declined == (), "a topic with no question left goes"


async def test_erasing_a_person_removes_the_phrasing_taught_from_their_question(
    bot: BotHarness, kb: Path
) -> None:
    await _taught_from_their_gap(bot, "Attach to")
    assert ASHAS.casefold() in _kb_questions(bot)

    done = await _erase(bot, "console:C11")

    assert ", learned.yml 1 question;" in done, done
    assert [p.text for p in learned.read(kb / "learned.yml").phrasings] == [BRAMS]
    assert ASHAS.casefold() not in _kb_questions(bot) and BRAMS.casefold() in _kb_questions(bot)


async def test_an_unreadable_learned_file_does_not_stop_the_erasure(
    bot: BotHarness, kb: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _taught_from_their_gap(bot, "Not ours")
    (kb / "learned.yml").write_text("declined: [this is: not, a list of items\n")

    done = await _erase(bot, "console:C11")

    assert done.startswith("Erased console:C11: ") and "they are now `erased:" in done
    assert "learned.yml could not be cleaned of their questions: " in done and "not valid YAML" in done
    assert "not from learned.yml" in caplog.text
    (gone,) = await bot.staff_runs("/support privacy export console:C11")
    assert gone.text == "Nothing is stored about `console:C11`."


async def test_an_erasure_while_learned_yml_stays_busy_erases_nothing_so_a_second_click_can(
    bot: BotHarness, kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds learned.yml's lock past the wait: committed without the file's
    cleaning, the erasure would leave Asha's words there for good (clicked again, nothing is stored)."""
    await _taught_from_their_gap(bot, "Not ours")
    before = (kb / "learned.yml").read_bytes()
    monkeypatch.setattr(learned, "LOCK_WAIT_SECONDS", 0.3)
    (question,) = await bot.staff_runs("/support privacy erase console:C11")
    erase = button(question, "Erase console:C11")

    with _learned_folder_locked(kb):
        (busy,) = await bot.click(bot.staff, erase, on=question)

    assert busy.text == (
        "Nothing was erased: learned.yml is being changed by another process; try again in a minute."
    )
    assert busy.delivery.message.private_to == bot.staff
    assert (kb / "learned.yml").read_bytes() == before
    (still,) = await bot.staff_runs("/support privacy export console:C11")
    assert not still.text.startswith("Nothing is stored"), still.text
    (done,) = await bot.click(bot.staff, erase, on=question)
    assert done.text.startswith("Erased console:C11: ") and ", learned.yml 1 question," in done.text, (
        done.text
    )
    assert ASHAS not in (kb / "learned.yml").read_text()
