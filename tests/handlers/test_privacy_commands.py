"""`/support privacy export` and `/support privacy erase`: staff only, answered privately; the export is
written under the data folder, the erasure waits for a click on a button that survives a restart."""

from __future__ import annotations

import json
from pathlib import Path

from bot.core.events import Actor, ButtonStyle, Platform
from storage.db import Database
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
