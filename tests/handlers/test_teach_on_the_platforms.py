"""Teaching from a knowledge gap on Slack and Discord, through the real slack-bolt/slack-sdk and
discord.py against the emulators: `/support report`, its Teach button, the offer with its replay,
the confirmation; the customers' questions quoted in it ping nobody. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.kb import learned
from storage.db import Database
from tests.adapters.discord.harness import DiscordWorld, custom_id, start_bot, stop_bot, text_of
from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, OTHER, STAFF, STAFF_CHANNEL, populate, slack_bot
from tests.emulators.discord import DiscordEmulator
from tests.emulators.slack import Call, SlackEmulator

LOUD = "how do I change the colour of the dashboard theme? @here <!channel> @everyone"
QUIET = ["can I change the dashboard theme colour to dark?", "dark mode for the dashboard theme?"]
PINGS = ("<!channel>", "<!here>", "<!everyone>")


# -- Slack -----------------------------------------------------------------------------------------


async def private_answer(slack: SlackEmulator, containing: str, *, since: int = 0) -> Call:
    return await slack.wait_for(
        "response_url", lambda c: c.params["user"] == STAFF and containing in c.shown, since=since
    )


async def a_gap_in_the_slack_report(slack: SlackEmulator, bot: Any) -> Call:
    """Three people ask what no article answers (one of them loudly); staff run `/support report`."""
    for user, question in zip((CUSTOMER, OTHER, "U0KIM"), [LOUD, *QUIET], strict=True):
        await slack.user_posts(user, COMMUNITY, question)
        await slack.wait_for(
            "chat.postMessage",
            lambda c, q=question: c.params["channel"] == STAFF_CHANNEL and q[:30] in c.shown,
        )
    await bot.settle()
    await slack.slash_command(STAFF, STAFF_CHANNEL, "/support report")
    return await private_answer(slack, "Knowledge gaps")


async def test_on_slack_staff_teach_a_gap_from_the_report(
    database: Database, tmp_path: Path, kb: Path
) -> None:
    async with SlackEmulator(burst=20) as slack:
        populate(slack)
        slack.add_user("U0KIM", "kim", display_name="Kim")
        async with slack_bot(slack, database, tmp_path, kb_path=str(kb)) as bot:
            report = await a_gap_in_the_slack_report(slack, bot)
            shown = {"ts": "1.000001", "blocks": report.params["blocks"]}
            mark = slack.mark()
            await slack.click(STAFF, STAFF_CHANNEL, shown, report.button("Teach gap 1"))
            offer = await private_answer(slack, "Teach the bot from gap", since=mark)
            assert offer.params["response_type"] == "ephemeral"
            assert "This would have answered" in offer.shown and "away from other articles" in offer.shown
            assert not any(ping in offer.shown + offer.params["text"] for ping in PINGS)
            attach = offer.button("Attach to ")
            entry = next(b["text"]["text"] for b in offer.buttons if b["action_id"] == attach).removeprefix(
                "Attach to "
            )

            mark = slack.mark()
            await slack.click(
                STAFF, STAFF_CHANNEL, {"ts": "1.000002", "blocks": offer.params["blocks"]}, attach
            )
            taught = await private_answer(slack, "Taught", since=mark)
            assert f"Taught `{entry}` 3 questions of gap" in taught.shown
            assert {p.text for p in learned.read(kb / "learned.yml").phrasings} >= set(QUIET)


# -- Discord ---------------------------------------------------------------------------------------


async def ephemeral_follow_up(emu: DiscordEmulator, click: dict[str, Any], containing: str) -> dict[str, Any]:
    """The private answer to a click: a follow-up only the clicker sees."""
    await emu.wait_for(
        "POST",
        f"/webhooks/{emu.application_id}/{click['token']}",
        where=lambda c: containing in text_of(c.json or {}),
    )
    return next(m for m in reversed(emu.messages.values()) if containing in text_of(m))


async def a_gap_in_the_discord_report(emu: DiscordEmulator, world: DiscordWorld, kim: Any) -> dict[str, Any]:
    """Three people ask what no article answers (one of them loudly); staff run `/support report`."""
    for user, question in zip((world.casey, world.robin, kim), [LOUD, *QUIET], strict=True):
        await emu.user_says(user, world.help, question)
        await emu.wait_for(
            "POST",
            f"/channels/{world.staff.id}/messages",
            where=lambda c, q=question: q[:30] in text_of(c.json or {}),
        )
    run = await emu.run_command(world.sam, world.staff, "support", "report")
    await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    report = emu.messages[emu.interactions[run["id"]].original_id or ""]
    return report


async def test_on_discord_staff_teach_a_gap_from_the_report(
    database: Database, tmp_path: Path, kb: Path
) -> None:
    async with DiscordEmulator(route_limit=50) as emu:
        world = DiscordWorld.build(emu)
        kim = emu.add_user("kim")
        emu.add_member(world.guild, kim)
        bot, _ = await start_bot(world, database, tmp_path, kb_path=str(kb))
        try:
            report = await a_gap_in_the_discord_report(emu, world, kim)
            assert report["flags"] & 64, "the report is private"
            click = await emu.click(world.sam, report, custom_id(report, "Teach gap 1"))
            offer = await ephemeral_follow_up(emu, click, "Teach the bot from gap")
            assert offer["flags"] & 64
            assert "This would have answered" in text_of(offer)
            assert "@everyone" not in text_of(offer) and "@here" not in text_of(offer)
            confirm = await emu.click(world.sam, offer, custom_id(offer, "Attach to "))
            taught = await ephemeral_follow_up(emu, confirm, "Taught `")
            assert "3 questions of gap" in text_of(taught)
            assert {p.text for p in learned.read(kb / "learned.yml").phrasings} >= set(QUIET)
            created = [c for c in emu.calls if c.method == "POST" and c.json and "allowed_mentions" in c.json]
            assert created and all(c.json["allowed_mentions"].get("parse") == [] for c in created), "no pings"
        finally:
            await stop_bot(bot)


async def test_on_slack_staff_decline_a_gap_and_the_next_such_question_goes_to_the_team(
    database: Database, tmp_path: Path, kb: Path
) -> None:
    async with SlackEmulator(burst=20) as slack:
        populate(slack)
        slack.add_user("U0KIM", "kim", display_name="Kim")
        async with slack_bot(slack, database, tmp_path, kb_path=str(kb)) as bot:
            report = await a_gap_in_the_slack_report(slack, bot)
            mark = slack.mark()
            await slack.click(
                STAFF,
                STAFF_CHANNEL,
                {"ts": "1.000001", "blocks": report.params["blocks"]},
                report.button("Teach gap 1"),
            )
            offer = await private_answer(slack, "Teach the bot from gap", since=mark)
            assert "Not ours (escalate questions like these to the team, always)" in offer.shown
            mark = slack.mark()
            await slack.click(
                STAFF,
                STAFF_CHANNEL,
                {"ts": "1.000002", "blocks": offer.params["blocks"]},
                offer.button("Not ours"),
            )
            declined = await private_answer(slack, "Declined gap", since=mark)
            assert "as topic `n1` (3 questions)" in declined.shown
            assert not any(ping in declined.shown + declined.params["text"] for ping in PINGS)

            await slack.user_posts(CUSTOMER, COMMUNITY, "dark mode for my dashboard theme please?")
            card = await slack.wait_for(
                "chat.postMessage",
                lambda c: c.params["channel"] == STAFF_CHANNEL and "dark mode for my dashboard" in c.shown,
            )
            assert "the team handles questions like this in person" in card.shown


async def test_on_discord_staff_decline_a_gap_and_the_next_such_question_goes_to_the_team(
    database: Database, tmp_path: Path, kb: Path
) -> None:
    async with DiscordEmulator(route_limit=50) as emu:
        world = DiscordWorld.build(emu)
        kim = emu.add_user("kim")
        emu.add_member(world.guild, kim)
        bot, _ = await start_bot(world, database, tmp_path, kb_path=str(kb))
        try:
            report = await a_gap_in_the_discord_report(emu, world, kim)
            click = await emu.click(world.sam, report, custom_id(report, "Teach gap 1"))
            offer = await ephemeral_follow_up(emu, click, "Teach the bot from gap")
            confirm = await emu.click(world.sam, offer, custom_id(offer, "Not ours"))
            declined = await ephemeral_follow_up(emu, confirm, "Declined gap")
            assert declined["flags"] & 64 and "as topic `n1` (3 questions)" in text_of(declined)
            assert [len(t.questions) for t in learned.read(kb / "learned.yml").declined] == [3]

            await emu.user_says(world.casey, world.help, "dark mode for my dashboard theme please?")
            card = await emu.wait_for(
                "POST",
                f"/channels/{world.staff.id}/messages",
                where=lambda c: "dark mode for my dashboard" in text_of(c.json or {}),
            )
            assert "the team handles questions like this in person" in text_of(card.json or {})
        finally:
            await stop_bot(bot)
